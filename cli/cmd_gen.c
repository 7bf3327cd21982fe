// temper sample / temper eval: generation from a model directory with the KV-cached
// sampler (rollout/), grading with the math verifier (reward/).
//
//   temper sample --model DIR --data F.jsonl --n K [--tools none|calculator|python] [--out F]
//       one JSONL line per sample (the sample row of README's schema): "prompt" (the
//       row's prompt as training data reads it: user content or message list, so sft /
//       dpo / kto render it again to the same ids), "prompt_text" (what the model saw),
//       completion text and ids, per-token log-probs, the mask of model tokens, tool
//       calls, gold "answer" and reference "solution", extracted answer and verdict
//       ("correct" and "label": true/false, so the file is KTO data as it is).
//   temper eval --model DIR --data gsm8k|math500|F.jsonl --n K [--output-dir D]
//       pass@1 (mean over samples), unbiased pass@k, maj@k, mean completion length,
//       the fraction with no extractable answer, per subject and level (MATH-500);
//       summary.json and samples.jsonl in --output-dir; a progress bar with ETA.
//
// Prompt rows: {"prompt": str | messages, "answer"}, GSM8K {"question", "answer": "... #### n"},
// MATH-500 {"problem", "answer", "subject", "level", "unique_id"}.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/io.h"
#include "base/json.h"
#include "base/progress.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "data/builtin.h"
#include "data/data.h"
#include "data/prompt_images.h"
#include "dist/dist.h"
#include "model/lora.h"
#include "model/model.h"
#include "reward/math_answer.h"
#include "rollout/eval_report.h"
#include "rollout/metrics.h"
#include "rollout/rollout.h"
#include "task/grade.h"
#include "task/problems.h"
#include "tokenizer/tokenizer.h"

// ---------------------------------------------------------------- the run

typedef task_problem problem;

typedef struct graded {
    char *completion;
    char *extracted;   // NULL: no answer
    int correct;
} graded;

typedef struct run {
    const char *cmd;
    tok_tokenizer *t;
    problem *ps;
    int np, n, tool, save_ids;
    math_extract_opts eo;
    math_equal_opts qo;
    rollout_traj *trajs;
    graded *gr;
    int *done;
    int next_write;
    FILE *out;
    int g0, g1;  // this rank's prompts (all of them in one process)
    progress pg;
    long finished, correct;
    int failed;
    tm_error err;
} run;

static void put_int_array(sbuf *b, const char *key, const int *v, int n) {
    sbuf_printf(b, ", \"%s\": [", key);
    for (int i = 0; i < n; i++) sbuf_printf(b, i ? ", %d" : "%d", v[i]);
    sbuf_puts(b, "]");
}

static void write_group(run *R, int g) {
    problem *p = &R->ps[g];
    sbuf b;
    sbuf_init(&b);
    for (int s = 0; s < R->n; s++) {
        rollout_traj *tr = &R->trajs[(size_t)g * R->n + s];
        graded *gd = &R->gr[(size_t)g * R->n + s];
        sbuf_clear(&b);
        sbuf_printf(&b, "{\"index\": %d, \"sample\": %d, \"prompt\": ", g, s);
        sbuf_puts(&b, p->prompt_json);  // the row's prompt for training: user content or message list
        sbuf_puts(&b, ", \"prompt_text\": ");
        sbuf_json_str(&b, p->text, strlen(p->text));
        sbuf_puts(&b, ", \"completion\": ");
        sbuf_json_str(&b, gd->completion, strlen(gd->completion));
        sbuf_puts(&b, ", \"answer\": ");
        if (p->answer) sbuf_json_str(&b, p->answer, strlen(p->answer)); else sbuf_puts(&b, "null");
        sbuf_puts(&b, ", \"extracted\": ");
        if (gd->extracted) sbuf_json_str(&b, gd->extracted, strlen(gd->extracted)); else sbuf_puts(&b, "null");
        if (p->answer) sbuf_printf(&b, ", \"correct\": %s, \"label\": %s", gd->correct ? "true" : "false", gd->correct ? "true" : "false");
        if (p->solution) { sbuf_puts(&b, ", \"solution\": "); sbuf_json_str(&b, p->solution, strlen(p->solution)); }
        if (p->subject) { sbuf_puts(&b, ", \"subject\": "); sbuf_json_str(&b, p->subject, strlen(p->subject)); }
        if (p->level >= 0) sbuf_printf(&b, ", \"level\": %d", p->level);
        sbuf_printf(&b, ", \"finish_reason\": \"%s\", \"num_tokens\": %d", rollout_finish_name(tr->finish), tr->len);
        if (R->tool != ROLLOUT_TOOL_NONE) {
            sbuf_puts(&b, ", \"tool_calls\": [");
            for (int c = 0; c < tr->ncalls; c++) {
                rollout_call *cl = &tr->calls[c];
                sbuf_puts(&b, c ? ", {\"code\": " : "{\"code\": ");
                sbuf_json_str(&b, cl->code ? cl->code : "", cl->code ? strlen(cl->code) : 0);
                sbuf_puts(&b, ", \"output\": ");
                sbuf_json_str(&b, cl->output ? cl->output : "", cl->output ? strlen(cl->output) : 0);
                sbuf_printf(&b, ", \"status\": %d, \"start\": %d, \"len\": %d}", cl->status, cl->start, cl->len);
            }
            sbuf_puts(&b, "]");
        }
        if (p->n_images) {  // TRL's column: the prompt's images (prompt_input_ids hold their expanded pads)
            sbuf_puts(&b, ", \"images\": [");
            for (int k = 0; k < p->n_images; k++) {  // absolute: the output may live in another folder
                char *abs = realpath(p->images[k], NULL);
                const char *w = abs ? abs : p->images[k];
                if (k) sbuf_puts(&b, ", ");
                sbuf_json_str(&b, w, strlen(w));
                free(abs);
            }
            sbuf_puts(&b, "]");
        }
        if (R->save_ids) {
            put_int_array(&b, "prompt_input_ids", p->ids, p->len);
            put_int_array(&b, "completion_input_ids", tr->ids, tr->len);
            sbuf_puts(&b, ", \"completion_logprobs\": [");
            for (int i = 0; i < tr->len; i++) { if (i) sbuf_puts(&b, ", "); sbuf_json_float(&b, tr->logp[i]); }
            sbuf_puts(&b, "]");
            if (R->tool != ROLLOUT_TOOL_NONE) {
                sbuf_puts(&b, ", \"completion_mask\": [");
                for (int i = 0; i < tr->len; i++) sbuf_puts(&b, i ? (tr->mask[i] ? ", 1" : ", 0") : (tr->mask[i] ? "1" : "0"));
                sbuf_puts(&b, "]");
            }
        }
        sbuf_puts(&b, "}\n");
        if (sbuf_check(&b, &R->err)) { R->failed = 1; break; }
        fputs(b.data, R->out);
    }
    sbuf_free(&b);
    fflush(R->out);
}

static void on_group(void *ud, int local, rollout_traj *trajs) {
    run *R = ud;
    int g = R->g0 + local;
    problem *p = &R->ps[g];
    for (int s = 0; s < R->n; s++) {
        rollout_traj *tr = &trajs[s];
        graded *gd = &R->gr[(size_t)g * R->n + s];
        sbuf txt;
        sbuf_init(&txt);
        tm_error e;
        if (tok_decode(R->t, tr->ids, (size_t)tr->len, 1, &txt, &e)) { R->failed = 1; snprintf(R->err.msg, sizeof R->err.msg, "%s", e.msg); }
        gd->completion = txt.data ? txt.data : strdup("");
        if (!gd->completion) { R->failed = 1; snprintf(R->err.msg, sizeof R->err.msg, "out of memory"); return; }
        task_grade_result gr;
        if (task_grade(gd->completion, strlen(gd->completion), p->answer, &R->eo, &R->qo, &gr, &e)) {
            R->failed = 1;
            snprintf(R->err.msg, sizeof R->err.msg, "%s", e.msg);
            return;
        }
        gd->extracted = gr.extracted;
        gd->correct = gr.correct;
        R->correct += gd->correct;
    }
    R->done[g] = 1;
    R->finished += R->n;
    while (R->next_write < R->g1 && R->done[R->next_write]) write_group(R, R->next_write++);
    progress_set_extra(&R->pg, "acc %.1f%%", 100.0 * R->correct / (double)R->finished);
    progress_update(&R->pg, R->finished);
}

// ---------------------------------------------------------------- shared command

typedef struct gen_args {
    const char *chat_kwargs;
    const char *model_dir, *data, *tools, *style, *chat_name, *stop, *stop_ids, *extract, *out, *output_dir, *from_samples;
    const char *base_model;  // --base-model: the base of an adapter --model (model/lora.h)
    int n, top_k, max_new, seed, batch, max_turns, limit, no_chat, save_ids, chunk, ignore_eos, allow_uneval;
    double temperature, top_p, min_p, tool_timeout;
} gen_args;

static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\\' && r[1] == 'n') { *w++ = '\n'; r++; }
        else if (*r == '\\' && r[1] == 't') { *w++ = '\t'; r++; }
        else *w++ = *r;
    }
    *w = 0;
}

static int gen_main(const char *cmd, gen_args *A, int is_eval) {
    tm_error err;
    model m;
    if (!A->model_dir || !A->data) return cli_fail(cmd, "--model and --data are required (see temper %s --help)", cmd) + 1;
    int st = task_style_from_name(A->style);
    if (st < 0) return cli_fail(cmd, "unknown --prompt-style '%s' (boxed, plain, tora, gsm8k-fewshot, minerva)", A->style) + 1;
    if (!A->tools) A->tools = st == TASK_STYLE_TORA ? "python" : "none";
    int tool = rollout_tool_from_name(A->tools);
    if (tool < 0) return cli_fail(cmd, "unknown --tools '%s' (none, calculator, python)", A->tools) + 1;
    if (A->n < 1 || A->max_new < 1 || A->batch < 1 || A->max_turns < 1)
        return cli_fail(cmd, "--n, --max-new-tokens, --batch and --max-turns must be >= 1") + 1;
    sample_params sp = {A->temperature, A->top_p, A->top_k, A->min_p};
    if (sample_params_check(&sp, &err)) return cli_fail(cmd, "%s", err.msg) + 1;  // before any work
    char pathbuf[4096];
    const char *path = data_builtin_path(A->data, pathbuf, sizeof pathbuf, &err);
    if (!path) return cli_fail(cmd, "%s", err.msg);
    lora_set_base_override(A->base_model);
    if (model_load(&m, A->model_dir, &err)) return cli_fail(cmd, "%s", err.msg);
    // a PEFT adapter directory may come without tokenizer files: then its base's
    tok_tokenizer *t = tok_load(m.lora && !lora_has_tokenizer(A->model_dir) ? m.source_dir : A->model_dir, &err);
    if (!t) { model_free(&m); return cli_fail(cmd, "%s", err.msg); }
    if (tok_set_chat_kwargs(t, A->chat_kwargs, &err)) { tok_free(t); model_free(&m); return cli_fail(cmd, "%s", err.msg); }
    tok_chat chat;
    int have_chat = 0;
    if (!A->no_chat && task_style_uses_chat((task_style)st)) {
        if (tok_chat_for(t, A->chat_name, &chat, &err) == 0) have_chat = 1;
        else if (A->chat_name) { tok_free(t); model_free(&m); return cli_fail(cmd, "%s", err.msg); }
    }
    problem *ps = NULL;
    int np = 0, status = 0;
    data_prompt_images *pim = NULL;
    kv_images *kim = NULL;
    task_prompt_opts po = {(task_style)st, NULL, have_chat ? &chat : NULL, m.cfg.vocab};
    if (task_problems_load(t, path, &po, A->limit, &ps, &np, &err)) {
        status = cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    if (np == 0) { status = cli_fail(cmd, "%s: no prompts", path); goto out; }
    // prompts with images (Qwen2.5-VL): their pixels through the model's processor, each pad
    // expanded to its image's token count; the sampler prefills the tower's output there
    int any_images = 0;
    for (int i = 0; i < np; i++) any_images |= ps[i].n_images > 0;
    if (any_images) {
        img_qwen2vl_config icfg;
        img_qwen2vl_defaults(&icfg);
        char pp[4096];
        io_join(pp, sizeof pp, A->model_dir, "preprocessor_config.json");
        if (m.vis && io_exists(pp) && img_qwen2vl_load_config(&icfg, pp, &err)) { status = cli_fail(cmd, "%s", err.msg); goto out; }
        if (!(pim = calloc((size_t)np, sizeof *pim)) || !(kim = calloc((size_t)np, sizeof *kim))) { status = cli_fail(cmd, "out of memory"); goto out; }
        for (int i = 0; i < np; i++) {
            if (data_prompt_images_load(t, m.vis ? &icfg : NULL, m.cfg.image_token_id, &ps[i], &pim[i], &err)) {
                status = cli_fail(cmd, "%s:%ld: %s", path, ps[i].line, err.msg);
                goto out;
            }
            if (!pim[i].n_images) continue;
            free(ps[i].ids);
            ps[i].ids = pim[i].ids, ps[i].len = pim[i].len;
            pim[i].ids = NULL;
            kim[i] = (kv_images){pim[i].n_images, pim[i].pixel_values, pim[i].grid_thw};
        }
    }

    // stops: EOS ids and end-of-turn tokens; the style's and the user's strings
    int stop_ids[64];
    int nsid = tok_stop_ids(t, m.cfg.eos_token_id, m.cfg.vocab, stop_ids, 16);
    if (A->stop_ids) {
        for (char *s = (char *)A->stop_ids; *s && nsid < 60;) {
            char *e;
            long v = strtol(s, &e, 10);
            if (e == s || v < 0 || v >= m.cfg.vocab) { status = cli_fail(cmd, "bad --stop-token-ids '%s'", A->stop_ids); goto out; }
            stop_ids[nsid++] = (int)v;
            s = *e == ',' ? e + 1 : e;
        }
    }
    const char *stops[8];
    int nss = task_style_stops((task_style)st, stops);
    char *user_stop = A->stop ? strdup(A->stop) : NULL;
    if (A->stop && !user_stop) { status = cli_fail(cmd, "out of memory"); goto out; }
    if (user_stop) { unescape(user_stop); stops[nss++] = user_stop; }
    if (tool == ROLLOUT_TOOL_PYTHON) stops[nss++] = "```output";

    rollout_opts o;
    rollout_opts_default(&o);
    o.n = A->n;
    o.batch = A->batch;
    o.max_new_tokens = A->max_new;
    o.prefill_chunk = A->chunk;
    o.sp.temperature = A->temperature;
    o.sp.top_p = A->top_p;
    o.sp.top_k = A->top_k;
    o.sp.min_p = A->min_p;
    o.seed = (uint64_t)A->seed;
    o.stop_ids = stop_ids;
    o.nstop_ids = A->ignore_eos ? 0 : nsid;
    o.stop_strs = stops;
    o.nstop_strs = nss;
    o.tool = (rollout_tool)tool;
    o.max_turns = A->max_turns;
    o.py.timeout_s = A->tool_timeout;
    char *pre = NULL, *suf = NULL;
    if (tool == ROLLOUT_TOOL_PYTHON && have_chat && rollout_obs_wrapper(&chat, &pre, &suf, &err)) {
        status = cli_fail(cmd, "%s", err.msg);
        free(user_stop);
        goto out;
    }
    o.obs_prefix = pre;
    o.obs_suffix = suf;

    run R;
    memset(&R, 0, sizeof R);
    R.cmd = cmd;
    R.t = t;
    R.ps = ps;
    R.np = np;
    R.n = A->n;
    R.tool = tool;
    R.save_ids = A->save_ids || !is_eval;
    // under mpirun (dist.h) each rank samples a contiguous block of the prompts with the
    // seeds of their global indices; rank 0 gathers the lines in rank order = prompt order
    int world = dist_size(), rank = dist_rank();
    R.g0 = (int)((int64_t)np * rank / world);
    R.g1 = (int)((int64_t)np * (rank + 1) / world);
    R.next_write = R.g0;
    char *shard_buf = NULL;
    size_t shard_len = 0;
    FILE *final_out = NULL;
    if (math_extract_opts_parse(&R.eo, A->extract)) { status = cli_fail(cmd, "bad --extract '%s'", A->extract) + 1; goto out2; }
    math_equal_opts_default(&R.qo);
    R.qo.allow_unevaluated = A->allow_uneval;  // eval: mathematical equality; sample (rewards): strict
    R.trajs = calloc((size_t)np * A->n, sizeof *R.trajs);
    R.gr = calloc((size_t)np * A->n, sizeof *R.gr);
    R.done = calloc((size_t)np, sizeof *R.done);
    if (!R.trajs || !R.gr || !R.done) { status = cli_fail(cmd, "out of memory for %d x %d samples", np, A->n); goto out2; }
    char outpath[1200];
    FILE *dest = NULL;  // where the lines go (rank 0's, under mpirun)
    if (rank == 0) {
        if (is_eval) {
            if (A->output_dir) {
                if (io_mkdirs(A->output_dir, &err)) { status = cli_fail(cmd, "%s", err.msg); goto out2; }
                dest = fopen(io_join(outpath, sizeof outpath, A->output_dir, "samples.jsonl"), "w");
            } else dest = fopen("/dev/null", "w");
        } else dest = !A->out || !strcmp(A->out, "-") ? stdout : fopen(A->out, "w");
        if (!dest) { status = cli_fail(cmd, "cannot write the output"); goto out2; }
    }
    if (world > 1) {
        final_out = dest;
        R.out = open_memstream(&shard_buf, &shard_len);
    } else R.out = dest;
    if (!R.out) { status = cli_fail(cmd, "cannot write the output"); goto out2; }
    int **pp = malloc(sizeof(int *) * (size_t)np), *pl = malloc(sizeof(int) * (size_t)np);
    if (!pp || !pl) { free(pp); free(pl); status = cli_fail(cmd, "out of memory"); goto out3; }
    for (int i = 0; i < np; i++) pp[i] = ps[i].ids, pl[i] = ps[i].len;
    o.on_group = on_group;
    o.ud = &R;
    rollout_backend be;
    rollout_model_ctx mctx;
    rollout_backend_model(&be, &mctx, &m);
    progress_start(&R.pg, cmd, (int64_t)np * A->n, "samples");
    double t0 = now_seconds();
    o.group_base = R.g0;
    o.images = kim ? kim + R.g0 : NULL;
    int rc = R.g1 > R.g0 ? rollout_run(&be, t, (const int *const *)pp + R.g0, pl + R.g0, R.g1 - R.g0, &o, R.trajs + (size_t)R.g0 * A->n, &err)
                         : 0;
    if (world > 1 && !rc && !R.failed) {
        fclose(R.out);  // shard_buf holds this rank's lines
        R.out = NULL;
        char *all = NULL;
        size_t *lens = calloc((size_t)world, sizeof *lens);
        rc = lens ? dist_gather_bytes(shard_buf ? shard_buf : "", shard_len, &all, lens, &err) : tm_fail(&err, "out of memory");
        if (!rc && rank == 0) {
            size_t total = 0;
            for (int r = 0; r < world; r++) total += lens[r];
            if (fwrite(all, 1, total, final_out) != total || fflush(final_out)) rc = tm_fail(&err, "cannot write the output");
        }
        free(all);
        free(lens);
        // and every sample's verdict, extracted answer and length, for the summary:
        // "correct len bytes:" + the answer's bytes (bytes -1: none), in prompt order
        sbuf rec;
        sbuf_init(&rec);
        for (size_t k = (size_t)R.g0 * A->n; k < (size_t)R.g1 * A->n; k++) {
            const char *x = R.gr[k].extracted;
            sbuf_printf(&rec, "%d %d %ld:", R.gr[k].correct, R.trajs[k].len, x ? (long)strlen(x) : -1L);
            if (x) sbuf_puts(&rec, x);
        }
        all = NULL;
        if (!rc && !(rc = sbuf_check(&rec, &err)) && !(rc = dist_gather_bytes(rec.data ? rec.data : "", rec.len, &all, NULL, &err)) &&
            rank == 0) {
            const char *p = all;
            for (size_t k = 0; k < (size_t)np * A->n && !rc; k++) {
                int correct, len, used;
                long nb;
                if (sscanf(p, "%d %d %ld:%n", &correct, &len, &nb, &used) != 3) { rc = tm_fail(&err, "internal: bad gathered record"); break; }
                p += used;
                if (k >= (size_t)R.g0 * A->n && k < (size_t)R.g1 * A->n) { p += nb > 0 ? nb : 0; continue; }  // rank 0's own
                R.gr[k].correct = correct;
                R.trajs[k].len = len;  // no ids: rollout_traj_free frees nothing more
                if (nb >= 0) {
                    if (!(R.gr[k].extracted = strndup(p, (size_t)nb))) { rc = tm_fail(&err, "out of memory"); break; }
                    p += nb;
                }
            }
        }
        free(all);
        sbuf_free(&rec);
    }
    double secs = now_seconds() - t0;
    progress_finish(&R.pg);
    free(pp);
    free(pl);
    if (rc) { status = cli_fail(cmd, "%s", err.msg); goto out3; }
    if (R.failed) { status = cli_fail(cmd, "%s", R.err.msg); goto out3; }

    // metrics
    long gen_tok = 0;
    eval_problem *ep = calloc((size_t)np, sizeof *ep);
    eval_sample *es = calloc((size_t)np * A->n, sizeof *es);
    if (!ep || !es) { free(ep); free(es); status = cli_fail(cmd, "out of memory"); goto out3; }
    for (int g = 0; g < np; g++) {
        ep[g] = (eval_problem){ps[g].answer, ps[g].subject, ps[g].level};
        for (int s = 0; s < A->n; s++) {
            size_t k = (size_t)g * A->n + s;
            es[k] = (eval_sample){R.gr[k].correct, R.gr[k].extracted, R.trajs[k].len};
            for (int i = 0; R.trajs[k].mask && i < R.trajs[k].len; i++) gen_tok += R.trajs[k].mask[i];  // (another rank's: no mask here)
        }
    }
    sbuf js;
    sbuf_init(&js);
    sbuf_puts(&js, "{");
    rc = eval_report_json(ep, np, A->n, es, task_answers_equal, &R.qo, &js, &err);
    double pass1 = 0;
    int graded_np = 0;
    for (int g = 0; g < np; g++)
        if (ps[g].answer) {
            graded_np++;
            for (int s = 0; s < A->n; s++) pass1 += (double)es[(size_t)g * A->n + s].correct / A->n;
        }
    free(ep);
    free(es);
    if (!rc && world > 1) {  // rank 0 has every verdict (gathered above); the token count is a sum
        double sum = (double)gen_tok;
        rc = dist_allreduce_sum_f64(&sum, 1, &err);
        gen_tok = (long)sum;
    }
    if (rc) { sbuf_free(&js); status = cli_fail(cmd, "%s", err.msg); goto out3; }
    sbuf_puts(&js, ",\n  \"seconds\": ");
    sbuf_json_float(&js, secs);
    sbuf_puts(&js, ",\n  \"generated_tokens_per_second\": ");
    sbuf_json_float(&js, secs > 0 ? gen_tok / secs : 0.0);
    sbuf_puts(&js, ",\n  \"settings\": {\"model\": ");
    sbuf_json_str(&js, A->model_dir, strlen(A->model_dir));
    sbuf_puts(&js, ", \"data\": ");
    sbuf_json_str(&js, path, strlen(path));
    sbuf_printf(&js, ", \"n\": %d, \"temperature\": ", A->n);
    sbuf_json_float(&js, A->temperature);
    sbuf_puts(&js, ", \"top_p\": ");
    sbuf_json_float(&js, A->top_p);
    sbuf_printf(&js, ", \"top_k\": %d, \"min_p\": ", A->top_k);
    sbuf_json_float(&js, A->min_p);
    sbuf_printf(&js, ", \"max_new_tokens\": %d, \"seed\": %d, \"prompt_style\": \"%s\", \"tools\": \"%s\", \"max_turns\": %d, "
                     "\"chat_template\": \"%s\", \"limit\": %d, \"extract\": ",
                A->max_new, A->seed, A->style, A->tools, A->max_turns, have_chat ? tok_chat_family_name(chat.family) : "none", A->limit);
    sbuf_json_str(&js, A->extract, strlen(A->extract));
    sbuf_puts(&js, "}\n}\n");
    if (sbuf_check(&js, &err)) { sbuf_free(&js); status = cli_fail(cmd, "%s", err.msg); goto out3; }
    if (rank > 0) {
        // rank 0 reports
    } else if (is_eval) {
        if (!flags_quiet || !A->output_dir) fprintf(stderr, "%s", js.data);  // the result itself when not saved
        if (A->output_dir &&
            io_write_file_atomic(io_join(outpath, sizeof outpath, A->output_dir, "summary.json"), js.data, js.len, &err))
            status = cli_fail(cmd, "%s", err.msg);
    } else if (!flags_quiet) {
        fprintf(stderr, "temper sample: %ld samples of %d prompts, %.1f%% correct, %.0f tok/s\n", (long)np * A->n, np,
                graded_np ? 100.0 * pass1 / graded_np : 0.0, secs > 0 ? gen_tok / secs : 0.0);
    }
    sbuf_free(&js);
out3:
    if (R.out && R.out != stdout) fclose(R.out);
    if (final_out && final_out != stdout) fclose(final_out);
    free(shard_buf);
out2:
    for (long i = 0; i < (long)np * A->n; i++) {
        if (R.trajs) rollout_traj_free(&R.trajs[i]);
        if (R.gr) { free(R.gr[i].completion); free(R.gr[i].extracted); }
    }
    free(R.trajs);
    free(R.gr);
    free(R.done);
    free(pre);
    free(suf);
    free(user_stop);
out:
    for (int i = 0; pim && i < np; i++) data_prompt_images_free(&pim[i]);
    free(pim);
    free(kim);
    task_problems_free(ps, np);
    tok_free(t);
    model_free(&m);
    return status;
}

// `temper eval --from-samples F`: the summary of an earlier eval's samples.jsonl,
// regraded by today's verifier (each line's completion against its answer).
static int eval_from_samples(const char *cmd, const gen_args *A) {
    tm_error err;
    io_lines r;
    if (io_lines_open(&r, A->from_samples, &err)) return cli_fail(cmd, "%s", err.msg);
    math_extract_opts eo;
    math_equal_opts qo;
    if (math_extract_opts_parse(&eo, A->extract)) { io_lines_close(&r); return cli_fail(cmd, "bad --extract '%s'", A->extract) + 1; }
    math_equal_opts_default(&qo);
    qo.allow_unevaluated = A->allow_uneval;
    typedef struct { int g, s, ntok, level; char *gold, *subject, *extracted; int correct; } row;
    row *rows = NULL;
    int nr = 0, cap = 0, np = 0, n = 0, status = 0;
    char *line;
    long len;
    while ((len = io_lines_next(&r, &line)) >= 0) {
        if (len == 0) continue;
        json_doc *d = json_parse(line, (size_t)len, &err);
        if (!d) { status = cli_fail(cmd, "%s:%ld: %s", A->from_samples, r.lineno, err.msg); break; }
        const json *o = json_root(d);
        const char *comp = json_get_str(o, "completion", NULL), *subj = json_get_str(o, "subject", NULL);
        int g = (int)json_get_int(o, "index", -1), sm = (int)json_get_int(o, "sample", -1);
        if (!comp || g < 0 || sm < 0 || g > 10000000 || sm > 100000) {
            json_doc_free(d);
            status = cli_fail(cmd, "%s:%ld: a samples.jsonl line needs index, sample and completion", A->from_samples, r.lineno);
            break;
        }
        if (nr == cap) {
            row *nw = realloc(rows, sizeof *rows * (size_t)(cap = cap ? 2 * cap : 256));
            if (!nw) { json_doc_free(d); status = cli_fail(cmd, "out of memory"); break; }
            rows = nw;
        }
        row *w = &rows[nr++];
        memset(w, 0, sizeof *w);
        w->g = g, w->s = sm, w->level = (int)json_get_int(o, "level", -1);
        w->ntok = (int)json_get_int(o, "num_tokens", 0);
        w->subject = subj ? strdup(subj) : NULL;
        task_grade_result gr;
        if (task_row_gold(o, &w->gold, &err) ||
            task_grade(comp, strlen(comp), w->gold, &eo, &qo, &gr, &err)) {
            json_doc_free(d);
            status = cli_fail(cmd, "%s:%ld: %s", A->from_samples, r.lineno, err.msg);
            break;
        }
        w->extracted = gr.extracted;
        w->correct = gr.correct;
        json_doc_free(d);
        if (g + 1 > np) np = g + 1;
        if (sm + 1 > n) n = sm + 1;
    }
    io_lines_close(&r);
    eval_problem *ep = NULL;
    eval_sample *es = NULL;
    char *have = NULL;
    if (!status && nr == 0) status = cli_fail(cmd, "%s: no samples", A->from_samples);
    if (!status) {
        ep = calloc((size_t)np, sizeof *ep), es = calloc((size_t)np * n, sizeof *es), have = calloc((size_t)np * n, 1);
        if (!ep || !es || !have) status = cli_fail(cmd, "out of memory");
    }
    for (int i = 0; !status && i < nr; i++) {
        size_t k = (size_t)rows[i].g * n + rows[i].s;
        if (have[k]) { status = cli_fail(cmd, "%s: index %d sample %d appears twice", A->from_samples, rows[i].g, rows[i].s); break; }
        have[k] = 1;
        es[k] = (eval_sample){rows[i].correct, rows[i].extracted, rows[i].ntok};
        ep[rows[i].g] = (eval_problem){rows[i].gold, rows[i].subject, rows[i].level};
    }
    for (size_t k = 0; !status && k < (size_t)np * n; k++)
        if (!have[k]) status = cli_fail(cmd, "%s: index %zu has no sample %zu (every problem needs the same n samples)",
                                        A->from_samples, k / (size_t)n, k % (size_t)n);
    if (!status) {
        sbuf js;
        sbuf_init(&js);
        sbuf_puts(&js, "{");
        if (eval_report_json(ep, np, n, es, task_answers_equal, &qo, &js, &err)) status = cli_fail(cmd, "%s", err.msg);
        else {
            sbuf_puts(&js, ",\n  \"settings\": {\"from_samples\": ");
            sbuf_json_str(&js, A->from_samples, strlen(A->from_samples));
            sbuf_puts(&js, ", \"extract\": ");
            sbuf_json_str(&js, A->extract, strlen(A->extract));
            sbuf_puts(&js, "}\n}\n");
            char outpath[1200];
            if (!flags_quiet || !A->output_dir) fprintf(stderr, "%s", js.data);
            if (A->output_dir && (io_mkdirs(A->output_dir, &err) ||
                                  io_write_file_atomic(io_join(outpath, sizeof outpath, A->output_dir, "summary.json"), js.data, js.len, &err)))
                status = cli_fail(cmd, "%s", err.msg);
        }
        sbuf_free(&js);
    }
    for (int i = 0; i < nr; i++) free(rows[i].gold), free(rows[i].subject), free(rows[i].extracted);
    free(rows), free(ep), free(es), free(have);
    return status;
}

#define GEN_FLAGS(A)                                                                                                    \
    {"model", FLAG_STR, &A.model_dir, "model directory (Hugging Face layout, with tokenizer files), or a PEFT adapter directory"}, \
    {"base-model", FLAG_STR, &A.base_model, "the base of an adapter --model, instead of its base_model_name_or_path"}, \
    {"data", FLAG_STR, &A.data, "JSONL of prompts ({prompt, answer}, GSM8K, MATH-500 rows), or gsm8k | math500"},     \
    {"n", FLAG_INT, &A.n, "samples per prompt"},                                                                       \
    {"temperature", FLAG_FLOAT, &A.temperature, "sampling temperature (0 = greedy)"},                                 \
    {"top-p", FLAG_FLOAT, &A.top_p, "nucleus sampling mass (1 = off)"},                                                \
    {"top-k", FLAG_INT, &A.top_k, "keep the k most likely tokens (0 = off)"},                                          \
    {"min-p", FLAG_FLOAT, &A.min_p, "keep tokens with p >= min_p * p_max (0 = off)"},                                   \
    {"max-new-tokens", FLAG_INT, &A.max_new, "tokens after the prompt (model and tool tokens together)"},              \
    {"seed", FLAG_INT, &A.seed, "random seed (sample s of prompt i has its own stream)"},                              \
    {"batch", FLAG_INT, &A.batch, "sequences decoded at once (KV cache slots)"},                                       \
    {"prefill-chunk", FLAG_INT, &A.chunk, "prompt tokens prefilled per step next to the decoding rows"},                \
    {"stop", FLAG_STR, &A.stop, "a stop string (\\n for newline)"},                                                    \
    {"stop-token-ids", FLAG_STR, &A.stop_ids, "extra stop token ids, comma separated (EOS and end-of-turn are always)"}, \
    {"tools", FLAG_STR, &A.tools, "none | calculator | python (default python for --prompt-style tora, else none)"},   \
    {"max-turns", FLAG_INT, &A.max_turns, "python tool calls per trajectory"},                                         \
    {"tool-timeout", FLAG_FLOAT, &A.tool_timeout, "seconds per python call"},                                          \
    {"prompt-style", FLAG_STR, &A.style, "boxed | plain | tora | gsm8k-fewshot | minerva"},                            \
    {"chat-template", FLAG_STR, &A.chat_name, "override the tokenizer's chat template (chatml, qwen3, llama3, gemma, ...)"}, \
    {"no-chat-template", FLAG_BOOL, &A.no_chat, "prompts as plain text even if the tokenizer has a template"},          \
    {"chat-template-kwargs", FLAG_STR, &A.chat_kwargs, "a JSON object of extra chat template variables"},              \
    {"extract", FLAG_STR, &A.extract, "answer extractors in order: boxed,answer,hash,tool,last"},                       \
    {"limit", FLAG_INT, &A.limit, "only the first N prompts"},                                                         \
    {"ignore-eos", FLAG_BOOL, &A.ignore_eos, "do not stop at EOS / end-of-turn tokens (benchmarks)"}

static void gen_defaults(gen_args *A, int is_eval) {
    memset(A, 0, sizeof *A);
    A->n = 1;
    A->temperature = is_eval ? 0.6 : 1.0;
    A->top_p = 1.0;
    A->max_new = 1024;
    A->batch = 16;
    A->chunk = 256;
    A->max_turns = 6;
    A->tool_timeout = 10.0;
    A->style = "boxed";
    A->extract = "boxed,answer,hash,tool";
}

int cmd_sample(int argc, char **argv) {
    gen_args A;
    gen_defaults(&A, 0);
    A.out = "-";
    flag flags[] = {GEN_FLAGS(A), {"out", FLAG_STR, &A.out, "output JSONL (- for stdout)"}};
    int rc = flags_parse("sample", "temper sample --model DIR --data F.jsonl --n K [flags]", flags,
                         sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    return gen_main("sample", &A, 0);
}

int cmd_eval(int argc, char **argv) {
    gen_args A;
    gen_defaults(&A, 1);
    A.allow_uneval = 1;
    flag flags[] = {GEN_FLAGS(A), {"output-dir", FLAG_STR, &A.output_dir, "write summary.json and samples.jsonl here"},
                    {"allow-unevaluated", FLAG_BOOL, &A.allow_uneval,
                     "grade by mathematical equality: 7! counts as 5040 (default true; =false refuses it as RL rewards do)"},
                    {"save-ids", FLAG_BOOL, &A.save_ids, "samples.jsonl also gets token ids and log-probs"},
                    {"from-samples", FLAG_STR, &A.from_samples, "no sampling: regrade an earlier samples.jsonl and summarize it"}};
    int rc = flags_parse("eval", "temper eval --model DIR --data gsm8k|math500|F.jsonl --n K [flags]", flags,
                         sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (A.from_samples) return dist_rank() == 0 ? eval_from_samples("eval", &A) : 0;  // no sampling: rank 0 alone
    return gen_main("eval", &A, 1);
}
