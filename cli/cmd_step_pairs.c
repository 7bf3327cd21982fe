// temper step-pairs: Step-DPO pairs mined from the policy's own wrong solutions (see
// src/train/step_pairs.h). The first wrong step is located by the verifier on sampled
// continuations, not by the paper's GPT-4 judge.
#include <stdio.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "train/step_pairs.h"

int cmd_step_pairs(int argc, char **argv) {
    step_pairs_args a;
    step_pairs_args_default(&a);
    flag flags[] = {
        {"model", FLAG_STR, &a.model, "policy model directory: it writes the solutions, continuations and corrections"},
        {"data", FLAG_STR, &a.data, "problems JSONL: {\"prompt\"|\"question\"|\"problem\", \"answer\"}"},
        {"out", FLAG_STR, &a.out, "Step-DPO pairs JSONL for temper dpo --step-wise"},
        {"chat-template", FLAG_STR, &a.chat_template, "as given to temper dpo (default: recognized from the tokenizer)"},
        {"prompt-suffix", FLAG_STR, &a.prompt_suffix, "appended to each question (kept in the rows' \"prompt\")"},
        {"step-opener", FLAG_STR, &a.o.opener, "text that starts the answer, ending with the first step label"},
        {"rep", FLAG_INT, &a.o.rep, "solutions sampled per problem (paper: 2)"},
        {"max-per-question", FLAG_INT, &a.o.max_per_question, "wrong solutions examined per problem (paper: 1)"},
        {"num-locate", FLAG_INT, &a.o.num_locate, "continuations per step prefix to locate the first wrong step"},
        {"num-correct", FLAG_INT, &a.o.num_correct, "continuations from the prefix before the wrong step (paper: 20)"},
        {"max-steps", FLAG_INT, &a.o.max_steps, "solutions with more steps are skipped"},
        {"max-new-tokens", FLAG_INT, &a.o.max_new_tokens, "tokens per solution or continuation"},
        {"batch", FLAG_INT, &a.o.batch, "trajectories in flight"},
        {"temperature", FLAG_FLOAT, &a.o.sp.temperature, "sampling temperature (paper: 0.8)"},
        {"top-p", FLAG_FLOAT, &a.o.sp.top_p, "nucleus sampling (paper: 0.95)"},
        {"top-k", FLAG_INT, &a.o.sp.top_k, "top-k sampling (0: off)"},
        {"limit", FLAG_INT, &a.limit, "first N problems only (0: all)"},
        {"seed", FLAG_INT, &a.seed, "sampling seed"},
        {"quiet", FLAG_BOOL, &a.quiet, "no progress bar"},
    };
    int rc = flags_parse("step-pairs",
                         "--model DIR --data problems.jsonl --out pairs.jsonl [flags]\n"
                         "Step-DPO's data pipeline (paper §3.2) with the exact verifier as the judge in place of GPT-4:\n"
                         "wrong self-generated solutions, the first wrong step located by sampling continuations from\n"
                         "each step prefix (the first prefix none of whose continuations is correct ends with it),\n"
                         "corrections sampled from the prefix before it",
                         flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!a.model || !a.data || !a.out) return cli_fail("step-pairs", "--model, --data and --out are required (see temper step-pairs --help)") + 1;
    if (a.limit < 0) return cli_fail("step-pairs", "--limit must be at least 0 (got %d)", a.limit) + 1;
    tm_error err;
    step_pairs_stats st;
    if (step_pairs_run(&a, &st, &err)) return cli_fail("step-pairs", "%s", err.msg);
    fprintf(stderr, "temper step-pairs: %ld problems, %ld solutions, %ld wrong; %ld examined: %ld first wrong steps located, "
                    "%ld unsolvable (no correct continuation from the start), %ld with too many steps, %ld without a distinct "
                    "correction; %ld pairs (%ld continuations sampled) -> %s\n",
            st.problems, st.solutions, st.wrong, st.examined, st.located, st.unsolvable, st.too_many_steps, st.no_correction,
            st.pairs, st.rollouts, a.out);
    return 0;
}
