// temper data inspect F.jsonl --model DIR --format FMT: counts, length percentiles,
// truncations at --max-length, boundary differences, and one example rendered with
// its trained tokens marked (and, with --show-ids, its prompt ids). Prompts are rendered
// by the one rule of task/prompt.h, as sft, sample, eval and grpo render them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "data/data.h"
#include "tokenizer/tokenizer.h"

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void percentiles(const char *what, int *v, int n) {
    if (!n) return;
    qsort(v, (size_t)n, sizeof *v, cmp_int);
    long sum = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    printf("  %-16s min %d  p50 %d  p90 %d  p99 %d  max %d  mean %.1f  total %ld\n", what, v[0], v[n / 2],
           v[(int)(n * 0.9)], v[(int)(n * 0.99)], v[n - 1], (double)sum / n, sum);
}

// The example's text token by token; trained spans between [[ ]] (or in color on a terminal).
static int render(const tok_tokenizer *t, const data_seq *s, int color, tm_error *err) {
    const char *on = color ? "\x1b[1;32m" : "[[", *off = color ? "\x1b[0m" : "]]";
    int in = 0;
    sbuf b;
    sbuf_init(&b);
    for (int i = 0; i <= s->len; i++) {
        int m = i < s->len ? s->mask[i] : 0;
        if (m != in) { fputs(m ? on : off, stdout); in = m; }
        if (i == s->len) break;
        // decode one token at a time; a byte-level piece of a character shows as U+FFFD
        sbuf_clear(&b);
        if (tok_decode(t, &s->ids[i], 1, 0, &b, err)) { sbuf_free(&b); return -1; }  // checks b too
        fwrite(b.data, 1, b.len, stdout);
    }
    fputs("\n", stdout);
    sbuf_free(&b);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "inspect")) {
        if (argc >= 2 && !strcmp(argv[1], "--help")) {
            printf("usage: temper data inspect F.jsonl --model DIR --format dpo|kto|sft|step|trajectory|prompts\n");
            return 0;
        }
        return cli_fail("data", "usage: temper data inspect F.jsonl --model DIR --format FMT (see temper data inspect --help)"), 2;
    }
    const char *model = NULL, *fmt = "sft", *tmpl = NULL, *bad = "error", *suffix = NULL, *kwargs = NULL;
    const char *style = NULL;
    int max_len = 0, example = 1, no_chat = 0, no_eos = 0, show_ids = 0;
    flag flags[] = {
        {"model", FLAG_STR, &model, "model (or tokenizer) directory (required)"},
        {"format", FLAG_STR, &fmt, "sft|dpo|kto|step|trajectory|prompts"},
        {"chat-template", FLAG_STR, &tmpl, "chatml|qwen2.5|qwen3|llama3|llama3-base|gemma (default: from tokenizer_config.json)"},
        {"chat-template-kwargs", FLAG_STR, &kwargs, "a JSON object of extra chat template variables"},
        {"max-length", FLAG_INT, &max_len, "count (and cut) sequences longer than this"},
        {"on-bad-line", FLAG_STR, &bad, "error|skip"},
        {"example", FLAG_INT, &example, "which example to render (1-based; 0 for none)"},
        {"no-chat-template", FLAG_BOOL, &no_chat, "string prompts/completions as plain text even if the tokenizer has a template"},
        {"prompt-style", FLAG_STR, &style, "prompts format: boxed|plain|tora|gsm8k-fewshot|minerva, as sample/eval (default plain)"},
        {"show-ids", FLAG_BOOL, &show_ids, "also print the example's prompt_input_ids (compare with temper sample's)"},
        {"no-eos", FLAG_BOOL, &no_eos, "do not append EOS to string completions"},
        {"prompt-suffix", FLAG_STR, &suffix, "text appended to questions (prompts format)"},
    };
    char *pos[4];
    int npos = 4;
    int rc = flags_parse("data inspect", "temper data inspect F.jsonl --model DIR --format FMT", flags,
                         (int)(sizeof flags / sizeof flags[0]), argc - 1, argv + 1, pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (npos != 1) return cli_fail("data", "inspect takes one JSONL file"), 2;
    if (!model) return cli_fail("data", "--model DIR is required"), 2;
    int f = data_format_from_name(fmt);
    if (f < 0) return cli_fail("data", "unknown --format '%s' (sft, dpo, kto, step, trajectory, prompts)", fmt), 2;
    if (strcmp(bad, "error") && strcmp(bad, "skip")) return cli_fail("data", "--on-bad-line must be error or skip"), 2;

    tm_error err = {0};
    tok_tokenizer *t = tok_load(model, &err);
    if (!t) return cli_fail("data", "%s", err.msg);
    if (tok_set_chat_kwargs(t, kwargs, &err)) { tok_free(t); return cli_fail("data", "%s", err.msg); }
    tok_chat chat;
    // the prompt rule (task/prompt.h): the template when there is one, unless --no-chat-template
    int have_chat = !no_chat && tok_chat_for(t, tmpl, &chat, &err) == 0;
    if (tmpl && !no_chat && !have_chat) { tok_free(t); return cli_fail("data", "%s", err.msg); }
    data_opts o;
    data_opts_default(&o);
    o.format = (data_format)f;
    o.chat = have_chat ? &chat : NULL;
    o.prompt_style = style;
    o.append_eos = !no_eos;
    o.max_length = max_len;
    o.on_bad_line = !strcmp(bad, "skip") ? DATA_BAD_SKIP : DATA_BAD_ERROR;
    o.prompt_suffix = suffix;
    o.check_boundary = 1;
    data_set ds;
    if (data_load(t, pos[0], &o, &ds, &err)) { tok_free(t); return cli_fail("data", "%s", err.msg); }

    printf("%s: format %s, chat template %s\n", pos[0], fmt, have_chat ? tok_chat_family_name(chat.family) : "none");
    printf("  lines %ld, examples %d, skipped %ld\n", ds.lines, ds.n, ds.skipped);
    if (ds.skipped) printf("  first skipped: %s\n", ds.first_skip);
    int *pl = malloc(((size_t)ds.n + 1) * sizeof *pl), *sl = malloc(((size_t)ds.n * 2 + 1) * sizeof *sl),
        *tl = malloc(((size_t)ds.n * 2 + 1) * sizeof *tl);
    if (!pl || !sl || !tl) {
        free(pl); free(sl); free(tl);
        data_set_free(&ds);
        tok_free(t);
        return cli_fail("data", "out of memory for the statistics of %d examples", ds.n);
    }
    int ns = 0, bdiff = 0, labels[2] = {0, 0}, notrain = 0;
    for (int i = 0; i < ds.n; i++) {
        data_example *e = &ds.ex[i];
        pl[i] = e->prompt_len;
        bdiff += e->boundary_diff;
        if (e->label >= 0) labels[e->label]++;
        for (int k = 0; k < e->nseq; k++) {
            int tr = 0;
            for (int j = 0; j < e->seq[k].len; j++) tr += e->seq[k].mask[j];
            if (!tr && f != DATA_PROMPTS) notrain++;
            sl[ns] = e->seq[k].len;
            tl[ns++] = tr;
        }
    }
    percentiles("prompt tokens", pl, ds.n);
    if (f != DATA_PROMPTS) {
        percentiles("sequence tokens", sl, ns);
        percentiles("trained tokens", tl, ns);
    }
    if (labels[0] + labels[1]) printf("  labels: %d desirable, %d undesirable\n", labels[1], labels[0]);
    printf("  truncated at --max-length %d: %ld examples\n", max_len, ds.truncated);
    if (notrain) printf("  sequences with no trained token: %d\n", notrain);
    printf("  sequences whose whole-text tokenization differs at a piece boundary: %d\n", bdiff);
    int status = 0;
    if (example > 0 && example <= ds.n) {
        data_example *e = &ds.ex[example - 1];
        int color = isatty(1);
        printf("\nexample %d (line %ld), prompt %d tokens%s:\n", example, e->line, e->prompt_len,
               color ? ", trained tokens in green" : ", trained tokens between [[ ]]");
        for (int k = 0; k < e->nseq; k++) {
            if (e->nseq == 2) printf("--- %s (%d tokens)\n", k ? "rejected" : "chosen", e->seq[k].len);
            if (render(t, &e->seq[k], color, &err)) { status = cli_fail("data", "example %d: %s", example, err.msg); break; }
        }
        if (!status && e->answer) printf("--- answer: %s\n", e->answer);
        if (!status && show_ids) {
            printf("prompt_input_ids: [");
            for (int i = 0; i < e->prompt_len; i++) printf(i ? ", %d" : "%d", e->seq[0].ids[i]);
            printf("]\n");
        }
    }
    free(pl); free(sl); free(tl);
    data_set_free(&ds);
    tok_free(t);
    return status;
}
