// temper: post-training for math reasoning. The command table.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/omp_wait.h"
#include "base/version.h"
#include "dist/dist.h"
#include <fcntl.h>
#include <unistd.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"init", cmd_init, "write a randomly initialized model directory"},
    {"score", cmd_score, "log-probs of completions under a model"},
    {"demo", cmd_demo, "issue 18 pipeline: synthetic word problems, tokenizer, tiny model, curriculum SFT, then each post-training method from the SFT model, report (--quick)"},
    {"sft", cmd_sft, "supervised fine-tuning on completions or conversations"},
    {"dpo", cmd_dpo, "preference optimization: DPO and its loss types, Step-DPO, multi-turn"},
    {"kto", cmd_kto, "KTO on unpaired desirable/undesirable completions"},
    {"reward-model", cmd_reward_model, "Bradley-Terry reward model on preference pairs (a sequence-classification directory)"},
    {"grpo", cmd_grpo, "online GRPO: sample groups from the current weights, verifier rewards, clipped policy loss"},
    {"ppo", cmd_ppo, "online PPO with a critic (shared value head or value model), GAE, verifier and/or reward-model scores"},
    {"online-dpo", cmd_online_dpo, "iterative online DPO / KTO: sample, grade, pair, train, for --rounds (M-DPO, M-KTO, --tools)"},
    {"rehearsal", cmd_rehearsal, "DPH-RL: sample the initial policy, split prompts into solved / unsolved, store correct samples"},
    {"critical-tokens", cmd_critical_tokens, "cDPO: score each token by contrastive estimation between two models"},
    {"sample", cmd_sample, "generate n completions per prompt (KV cache, tools), with log-probs and verdicts"},
    {"eval", cmd_eval, "pass@1, pass@k, maj@k on GSM8K, MATH-500 or a prompts file"},
    {"pairs", cmd_pairs, "preference pairs (correct vs incorrect of a prompt) from temper sample output"},
    {"step-pairs", cmd_step_pairs, "Step-DPO pairs: first wrong step of own wrong solutions located by the verifier, corrections"},
    {"filter", cmd_filter, "keep samples by per-prompt pass rate, correct only (rejection-sampled SFT data)"},
    {"merge", cmd_merge, "fold a PEFT LoRA adapter into its base: a plain Hugging Face directory"},
    {"perturb", cmd_perturb, "Vision Matters image perturbations: concat, mixup, rotate, noise, blur, crop"},
    {"plot", cmd_plot, "draw metrics.jsonl as an SVG chart"},
    {"tokenize", cmd_tokenize, "text to token ids and back with a model's tokenizer"},
    {"data", cmd_data, "inspect a dataset: counts, lengths, a rendered example"},
    {"grade", cmd_grade, "extract answers and compare them with gold answers"},
    {"tool", cmd_tool, "run one tool call (python sandbox, calculator) for debugging"},
    {"task", cmd_task, "built-in tasks: task synth (GSM8K-style word problems: levels, tools, disjoint splits), task visual (dots, bar charts, clocks)"},
    {"tokenizer", cmd_tokenizer, "train a byte-level BPE tokenizer on JSONL text (tokenizer train): a Hugging Face directory"},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

// Under mpirun, ranks other than 0 are silent (their progress and metrics lines would
// repeat rank 0's) except for errors, which go to the real stderr, named by rank.
static FILE *err_out;

char cli_last_error[512];

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = snprintf(cli_last_error, sizeof cli_last_error, "temper %s: ", cmd);
    if (n > 0 && n < (int)sizeof cli_last_error) vsnprintf(cli_last_error + n, sizeof cli_last_error - (size_t)n, fmt, ap2);
    va_end(ap2);
    FILE *f = err_out ? err_out : stderr;
    if (dist_size() > 1) fprintf(f, "[rank %d] ", dist_rank());
    fprintf(f, "temper %s: ", cmd);
    vfprintf(f, fmt, ap);
    fprintf(f, "\n");
    fflush(f);
    va_end(ap);
    return 1;
}

// Starts MPI when launched by mpirun (dist.h: never otherwise) and quiets ranks > 0.
static int dist_start(void) {
    tm_error e;
    if (dist_init(&e)) return cli_fail("mpi", "%s", e.msg);
    if (dist_rank() > 0) {
        int keep = dup(2), null = open("/dev/null", O_WRONLY);
        if (keep >= 0 && null >= 0) {
            err_out = fdopen(keep, "w");
            dup2(null, 2);
        }
        if (null >= 0) close(null);
    }
    return 0;
}

// A failed rank ends the whole job (the others would wait in their next collective).
static int dist_stop(int rc) {
    if (rc && dist_size() > 1) {
        fflush(NULL);
        dist_abort(rc);
    }
    dist_finalize();
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: temper <command> [flags]   (temper <command> --help; temper --version)\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    omp_wait_default(argv);  // may re-exec this program: first, before anything else
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") || !strcmp(argv[1], "version")) {
        printf("temper %s\n", TEMPER_VERSION);
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            if (dist_start()) return dist_stop(1);
            // N copies of a command that is not data parallel would write the same files
            static const char *parallel[] = {"sft", "dpo", "kto", "reward-model", "grpo", "ppo", "online-dpo", "sample", "eval"};
            int ok = dist_size() == 1;
            for (int k = 0; k < (int)(sizeof parallel / sizeof *parallel); k++) ok |= !strcmp(argv[1], parallel[k]);
            if (!ok)
                return dist_stop(cli_fail(argv[1], "does not run under mpirun yet (%d processes); data parallel: sft, dpo, kto, "
                                                   "reward-model, grpo, ppo, online-dpo, sample, eval. Run it as one process", dist_size()));
            return dist_stop(commands[i].run(argc - 1, argv + 1));
        }
    fprintf(stderr, "temper: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
