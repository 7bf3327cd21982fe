// Out of memory, tried at every allocation (SQLite's approach): the tokenizer's load,
// encode, decode, streaming decode and chat rendering, and a rollout with a scripted
// model (stop ids, stop strings, streaming detokenization), run once to count their
// allocations, then again with allocation k failing, for every k, in two modes:
// only the k-th fails (the code must recover or report it) and every one from the
// k-th on fails (the error paths themselves must not need memory).
//
// The policy checked (STYLE.md, base/error.h): each call either returns the same
// result as without the failure, or fails with -1 / NULL and a message containing
// "out of memory"; nothing crashes (the ASan build runs this too) and nothing leaks
// (every block the library allocated during a run is freed by the end of it).
//
// The failures are injected without touching the library: this program is linked
// with -Wl,--wrap=malloc,... (its own rule at the end of the Makefile), so every call
// to malloc/calloc/realloc/strdup/strndup/aligned_alloc from libtemper.a goes
// through the __wrap_ functions below. Allocations inside shared libraries (pcre2,
// utf8proc, libc's stdio) are not counted. free is wrapped too: the blocks the
// wrappers handed out while armed are kept in a pointer set, so a leak is exact in
// both builds (malloc statistics count cached free chunks as in use); the ASan build
// adds LeakSanitizer at exit.
#include <execinfo.h>
#include <stdint.h>
#include <string.h>
#include "test.h"
#include "tok_fixture.h"
#include "rollout/rollout.h"
#include "tokenizer/tokenizer.h"

// ---- the injector ----
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void __real_free(void *p);

static int armed;        // count (and maybe fail) allocations
static long seen;        // allocations since armed
static long fail_at;     // the allocation to fail (1-based), 0 for none
static int sticky;       // fail every allocation from fail_at on
static long failed_n;    // allocations failed since armed
static int trace;        // TEMPER_OOM_TRACE set

// The live blocks allocated while armed: open addressing, with tombstones that a
// rebuild clears when the table gets full.
enum { SET_SIZE = 1 << 14 };
#define TOMB ((void *)1)
static void *set[SET_SIZE], *set_tmp[SET_SIZE];
static long set_live, set_used;

static size_t set_slot(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 48) & (SET_SIZE - 1); }
static void set_add(void *p);
static void set_rebuild(void) {
    memcpy(set_tmp, set, sizeof set);
    memset(set, 0, sizeof set);
    set_live = set_used = 0;
    for (size_t i = 0; i < SET_SIZE; i++)
        if (set_tmp[i] && set_tmp[i] != TOMB) set_add(set_tmp[i]);
}
static void set_add(void *p) {
    if (!p) return;
    if (set_used + 1 > SET_SIZE * 3 / 4) set_rebuild();
    size_t i = set_slot(p);
    while (set[i] && set[i] != TOMB) i = (i + 1) & (SET_SIZE - 1);
    if (!set[i]) set_used++;
    set[i] = p;
    set_live++;
}
static void set_del(void *p) {  // a block not in the set (allocated elsewhere) is ignored
    if (!p) return;
    for (size_t i = set_slot(p); set[i]; i = (i + 1) & (SET_SIZE - 1))
        if (set[i] == p) { set[i] = TOMB; set_live--; return; }
}

static int fail_now(void) {
    if (!armed) return 0;
    long k = ++seen;
    int f = fail_at && (k == fail_at || (sticky && k > fail_at));
    failed_n += f;
    if (f && trace) {  // TEMPER_OOM_TRACE=1: where each injected failure lands
        void *bt[16];
        backtrace_symbols_fd(bt, backtrace(bt, 16), 2);
    }
    return f;
}
static void *track(void *p) {
    if (armed) set_add(p);
    return p;
}
void *__wrap_malloc(size_t n) { return fail_now() ? NULL : track(__real_malloc(n)); }
void *__wrap_calloc(size_t n, size_t m) { return fail_now() ? NULL : track(__real_calloc(n, m)); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : track(__real_strdup(s)); }
char *__wrap_strndup(const char *s, size_t n) { return fail_now() ? NULL : track(__real_strndup(s, n)); }
void *__wrap_aligned_alloc(size_t a, size_t n) { return fail_now() ? NULL : track(__real_aligned_alloc(a, n)); }
void *__wrap_realloc(void *p, size_t n) {
    if (fail_now()) return NULL;  // p stays allocated, as realloc leaves it
    void *q = __real_realloc(p, n);
    if (q) { set_del(p); track(q); }
    return q;
}
void __wrap_free(void *p) {
    set_del(p);
    __real_free(p);
}

static void arm(long k, int st) {
    armed = 1; seen = 0; failed_n = 0; fail_at = k; sticky = st;
    memset(set, 0, sizeof set);
    set_live = set_used = 0;
}
static void disarm(void) { armed = 0; fail_at = 0; }

// ---- the scenario ----
typedef struct fixture {
    const char *name;
    const char *json, *config;   // paths; config may be NULL
    const char *text;            // to encode
    int add_special;
} fixture;

// What one run produced; a stage that failed leaves its fields empty.
typedef struct outcome {
    int load, enc1, enc2, dec, stream, chat;   // 0 ok, -1 failed (with "out of memory"), 1 absent
    tok_ids ids1, ids2;
    sbuf text, streamed, chat_text;
} outcome;

static void outcome_free(outcome *o) {
    tok_ids_free(&o->ids1);
    tok_ids_free(&o->ids2);
    sbuf_free(&o->text);
    sbuf_free(&o->streamed);
    sbuf_free(&o->chat_text);
    memset(o, 0, sizeof *o);
}

static char bad_detail[512];   // the first violation seen
static int bad_count;

static void violation(const fixture *fx, long k, int st, const char *what, const char *msg) {
    if (!bad_count++)
        snprintf(bad_detail, sizeof bad_detail, "%s, allocation %ld%s: %s (%s)", fx->name, k, st ? " on" : "", what, msg);
}

// A failed call must say "out of memory".
static int failed_ok(const fixture *fx, long k, int st, const char *what, const tm_error *err) {
    if (!strstr(err->msg, "out of memory")) violation(fx, k, st, what, err->msg);
    return -1;
}

// Runs every stage once. ref_ids: the ids to decode (the reference encoding, so that
// decoding is tried even when encoding failed); NULL on the reference run itself.
static void run(const fixture *fx, long k, int st, const tok_ids *ref_ids, outcome *o) {
    memset(o, 0, sizeof *o);
    o->enc1 = o->enc2 = o->dec = o->stream = o->chat = 1;
    tm_error err = {0};
    tok_tokenizer *t = tok_load_files(fx->json, fx->config, &err);
    if (!t) { o->load = failed_ok(fx, k, st, "tok_load_files", &err); return; }
    const char *text = fx->text;
    size_t len = strlen(text);
    err.msg[0] = 0;
    o->enc1 = tok_encode(t, text, len, fx->add_special, &o->ids1, &err) ? failed_ok(fx, k, st, "tok_encode", &err) : 0;
    err.msg[0] = 0;  // the second time the words come from the cache the first run filled
    o->enc2 = tok_encode(t, text, len, fx->add_special, &o->ids2, &err) ? failed_ok(fx, k, st, "tok_encode (cached)", &err) : 0;
    const tok_ids *dec_ids = ref_ids ? ref_ids : &o->ids1;
    err.msg[0] = 0;
    o->dec = tok_decode(t, dec_ids->v, dec_ids->n, 0, &o->text, &err) ? failed_ok(fx, k, st, "tok_decode", &err) : 0;
    tok_stream ts;
    tok_stream_init(&ts, 0);
    o->stream = 0;
    size_t nstream = dec_ids->n < 24 ? dec_ids->n : 24;  // each step decodes twice: keep the count of runs down
    for (size_t i = 0; i < nstream && !o->stream; i++) {
        err.msg[0] = 0;
        if (tok_stream_step(t, &ts, dec_ids->v[i], &o->streamed, &err)) o->stream = failed_ok(fx, k, st, "tok_stream_step", &err);
    }
    tok_stream_free(&ts);
    if (fx->config) {
        tok_chat ch;
        tok_chat_msg m[2] = {{"user", "hello", 5, NULL, 0}, {"assistant", "world 12", 8, NULL, 0}};
        tok_chat_render r = {0};
        err.msg[0] = 0;
        if (tok_chat_for(t, NULL, &ch, &err) || tok_chat_apply(&ch, m, 2, 1, &r, &err)) o->chat = failed_ok(fx, k, st, "tok_chat_apply", &err);
        else {
            o->chat = 0;
            int was = armed;
            armed = 0;  // the test's own copy is not the library's allocation
            sbuf_put(&o->chat_text, r.text.data, r.text.len);
            armed = was;
        }
        tok_chat_render_free(&r);
    }
    // Whatever failed above, the tokenizer (its word cache included) must still encode
    // right once memory is back.
    if (armed && ref_ids) {
        long saved = fail_at;
        fail_at = 0;
        tok_ids again = {0};
        err.msg[0] = 0;
        if (tok_encode(t, text, len, fx->add_special, &again, &err) || again.n != ref_ids->n ||
            memcmp(again.v, ref_ids->v, again.n * sizeof *again.v))
            violation(fx, k, st, "encoding after the failure differs", err.msg);
        tok_ids_free(&again);
        fail_at = saved;
    }
    tok_free(t);
}

static int ids_same(const tok_ids *a, const tok_ids *b) {
    return a->n == b->n && (!a->n || !memcmp(a->v, b->v, a->n * sizeof *a->v));
}
static int text_same(const sbuf *a, const sbuf *b) {
    return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

// Stages that succeeded under failure must agree with the reference.
static void compare(const fixture *fx, long k, int st, const outcome *ref, const outcome *o) {
    if (o->load) return;
    if (!o->enc1 && !ids_same(&o->ids1, &ref->ids1)) violation(fx, k, st, "tok_encode succeeded with other ids", "");
    if (!o->enc2 && !ids_same(&o->ids2, &ref->ids1)) violation(fx, k, st, "tok_encode (cached) succeeded with other ids", "");
    if (!o->dec && !text_same(&o->text, &ref->text)) violation(fx, k, st, "tok_decode succeeded with other text", o->text.data ? o->text.data : "");
    if (!o->stream && !text_same(&o->streamed, &ref->streamed)) violation(fx, k, st, "streamed decoding succeeded with other text", "");
    if (!o->chat && !text_same(&o->chat_text, &ref->chat_text)) violation(fx, k, st, "chat rendering succeeded with other text", "");
}

static void try_fixture(const fixture *fx) {
    outcome ref;
    arm(0, 0);  // count only
    run(fx, 0, 0, NULL, &ref);
    long n = seen;
    disarm();
    CHECK(ref.load == 0 && ref.enc1 == 0 && ref.enc2 == 0 && ref.dec == 0 && ref.stream == 0 && ref.chat != -1 &&
              ids_same(&ref.ids1, &ref.ids2) && ref.ids1.n > 0 && ref.streamed.len > 0 && ref.streamed.len <= ref.text.len &&
              !memcmp(ref.streamed.data, ref.text.data, ref.streamed.len),
          "%s: the reference run succeeds (%zu ids, %ld allocations)", fx->name, ref.ids1.n, n);
    // The wrapper must see the library's allocations, or this test proves nothing.
    CHECK(n >= 20, "%s: the injector sees the library's allocations (%ld)", fx->name, n);
    for (int st = 0; st < 2; st++) {
        bad_count = 0;
        bad_detail[0] = 0;
        int fails[6] = {0}, leaks = 0;
        long leaked_at = 0;
        for (long k = 1; k <= n; k++) {
            outcome o;
            if (trace) fprintf(stderr, "%s k=%ld%s\n", fx->name, k, st ? " on" : "");
            arm(k, st);
            run(fx, k, st, &ref.ids1, &o);
            compare(fx, k, st, &ref, &o);
            fails[0] += o.load < 0, fails[1] += o.enc1 < 0 || o.enc2 < 0, fails[2] += o.dec < 0;
            fails[3] += o.stream < 0, fails[4] += o.chat < 0;
            outcome_free(&o);
            disarm();
            if (set_live && !leaks++) leaked_at = k;
        }
        const char *mode = st ? "every allocation from the k-th on fails" : "the k-th allocation fails";
        CHECK(bad_count == 0, "%s, %s (k = 1..%ld): each call gives the reference result or -1 with \"out of memory\" (%d violations%s%s)",
              fx->name, mode, n, bad_count, bad_count ? ": " : "", bad_detail);
        CHECK(leaks == 0, "%s, %s: no leak (%d runs leaked, first at k = %ld)", fx->name, mode, leaks, leaked_at);
        // Each stage was reached by a failure at least once: the counts are not vacuous.
        CHECK(fails[0] > 0 && fails[1] > 0 && fails[2] > 0 && fails[3] > 0 && (!fx->config || fails[4] > 0),
              "%s, %s: failures reached load %d, encode %d, decode %d, stream %d, chat %d times", fx->name, mode, fails[0],
              fails[1], fails[2], fails[3], fails[4]);
    }
    outcome_free(&ref);
}

// ---- rollout: a scripted model (each trajectory "generates" its script), stop ids
// and stop strings, streaming detokenization, slots reused across prompts ----
enum { NPROMPT = 3 };
typedef struct script { int V; tok_ids tok[NPROMPT]; int cur[NPROMPT]; } script;
static int sc_reserve(void *ctx, int nslots, const int *caps, int max_rows, int max_logit_rows, tm_error *err) { return 0; }
static void sc_release(void *ctx) {}
static int sc_forward(void *ctx, const kv_batch *b, const int *tag, float *logits, tm_error *err) {
    script *s = ctx;
    for (int i = 0; i < b->n; i++) {
        int r = b->logit_row[i];
        if (r < 0) continue;
        int t = tag[r] >= 0 ? tag[r] : -tag[r] - 1;  // n = 1: trajectory = prompt
        float *z = logits + (size_t)r * s->V;
        for (int j = 0; j < s->V; j++) z[j] = -10.0f;
        int k = s->cur[t]++;
        z[k < (int)s->tok[t].n ? s->tok[t].v[k] : 0] = 10.0f;
    }
    return 0;
}

static int traj_same(const rollout_traj *a, const rollout_traj *b) {
    return a->len == b->len && a->finish == b->finish && !memcmp(a->ids, b->ids, sizeof(int) * (size_t)a->len) &&
           !memcmp(a->mask, b->mask, (size_t)a->len) && !memcmp(a->logp, b->logp, sizeof(float) * (size_t)a->len);
}

// -1 (with "out of memory" checked) or 0 with out[] filled.
static int rollout_once(tok_tokenizer *t, script *sc, const tok_ids *prompt, rollout_traj *out, tm_error *err) {
    memset(sc->cur, 0, sizeof sc->cur);
    memset(out, 0, sizeof(rollout_traj) * NPROMPT);
    rollout_backend be = {sc, sc->V, sc_reserve, sc_forward, sc_release, NULL, NULL, NULL, NULL, 0};
    const int *pp[NPROMPT];
    int pl[NPROMPT];
    for (int i = 0; i < NPROMPT; i++) pp[i] = prompt->v, pl[i] = (int)prompt->n;
    rollout_opts o;
    rollout_opts_default(&o);
    o.n = 1;
    o.batch = 2;
    o.max_new_tokens = 64;
    o.sp.temperature = 0;
    int32_t eos = tok_eos_id(t);
    int stop_ids[1] = {eos};
    o.stop_ids = stop_ids;
    o.nstop_ids = 1;
    const char *stops[1] = {"STOP"};
    o.stop_strs = stops;
    o.nstop_strs = 1;
    return rollout_run(&be, t, pp, pl, NPROMPT, &o, out, err);
}

static void try_rollout(const char *dir) {
    tm_error err = {0};
    tok_tokenizer *t = tok_load(dir, &err);
    if (!t) { CHECK(0, "rollout: the fixture tokenizer loads (%s)", err.msg); return; }
    const char *scripts[NPROMPT] = {"hello world 12 hello STOP and more", "hello\n\nworld 1212<|im_end|>", "Cafe\xcc\x81 12 STO"};
    script sc = {tok_vocab_size(t), {{0}}, {0}};
    tok_ids prompt = {0};
    for (int i = 0; i < NPROMPT; i++) tok_encode(t, scripts[i], strlen(scripts[i]), 0, &sc.tok[i], &err);
    tok_encode(t, "<|im_start|>user\nQ<|im_end|>\n", 27, 0, &prompt, &err);
    rollout_traj ref[NPROMPT], out[NPROMPT];
    arm(0, 0);
    int rc = rollout_once(t, &sc, &prompt, ref, &err);
    long n = seen;
    disarm();
    CHECK(rc == 0 && ref[0].finish == FINISH_STOP_STRING && ref[1].finish == FINISH_STOP && ref[2].finish == FINISH_LENGTH,
          "rollout: the reference run succeeds (%ld allocations; finishes %s %s %s)", n, rollout_finish_name(ref[0].finish),
          rollout_finish_name(ref[1].finish), rollout_finish_name(ref[2].finish));
    for (int st = 0; st < 2; st++) {
        bad_count = 0;
        bad_detail[0] = 0;
        int fails = 0, leaks = 0;
        long leaked_at = 0;
        fixture fx = {"rollout", NULL, NULL, NULL, 0};
        for (long k = 1; k <= n; k++) {
            arm(k, st);
            err.msg[0] = 0;
            rc = rollout_once(t, &sc, &prompt, out, &err);
            if (rc) { fails++; failed_ok(&fx, k, st, "rollout_run", &err); }
            else
                for (int i = 0; i < NPROMPT; i++)
                    if (!traj_same(&out[i], &ref[i])) violation(&fx, k, st, "rollout_run succeeded with another trajectory", "");
            for (int i = 0; i < NPROMPT; i++) rollout_traj_free(&out[i]);
            disarm();
            if (set_live && !leaks++) leaked_at = k;
        }
        const char *mode = st ? "every allocation from the k-th on fails" : "the k-th allocation fails";
        CHECK(bad_count == 0 && fails > 0, "rollout, %s (k = 1..%ld): the same trajectories or -1 with \"out of memory\" (%d failed, %d violations%s%s)",
              mode, n, fails, bad_count, bad_count ? ": " : "", bad_detail);
        CHECK(leaks == 0, "rollout, %s: no leak (%d runs leaked, first at k = %ld)", mode, leaks, leaked_at);
    }
    char *pre = NULL, *suf = NULL;
    tok_chat ch;
    tok_chat_for(t, NULL, &ch, &err);
    int bad = 0, nf = 0;
    for (long k = 1; k <= 8; k++) {
        arm(k, 1);
        err.msg[0] = 0;
        if (rollout_obs_wrapper(&ch, &pre, &suf, &err)) { nf++; bad += !strstr(err.msg, "out of memory") || pre || suf; }
        free(pre); free(suf);
        pre = suf = NULL;
        disarm();
        bad += set_live != 0;
    }
    CHECK(bad == 0 && nf > 0, "rollout_obs_wrapper: -1 with \"out of memory\" and nothing leaked (%d of 8 failed)", nf);
    for (int i = 0; i < NPROMPT; i++) { rollout_traj_free(&ref[i]); tok_ids_free(&sc.tok[i]); }
    tok_ids_free(&prompt);
    tok_free(t);
}

static void write_json(const char *path, const char *js) {
    tm_error err = {0};
    if (io_write_file_atomic(path, js, strlen(js), &err)) printf("# %s\n", err.msg);
}

int main(void) {
    printf("# injected out of memory: tokenizer\n");  // stdio allocates its buffer before any count
    trace = getenv("TEMPER_OOM_TRACE") != NULL;
    const char *dir = fixture_dir();
    char tj[512], tc[512];
    io_join(tj, sizeof tj, dir, "tokenizer.json");
    io_join(tc, sizeof tc, dir, "tokenizer_config.json");
    // Long enough for every growable array to grow: more than 64 split pieces, an
    // added token inside the text, NFC work, words that repeat (the cache).
    static char text[4096];
    text[0] = 0;
    for (int i = 0; i < 12; i++) strcat(text, i % 3 ? "hello world<|im_end|> Cafe\xcc\x81 12\n\n" : "hello  helloworld 1212, ");
    for (int i = 0; i < 70; i++) strcat(text, " x");  // one piece of more than 64 splits

    // sentencepiece-style: Prepend/Replace normalizers, byte fallback, unk, four decoders
    const char *sp_path = "/tmp/temper-oom-sp.json";
    write_json(sp_path,
        "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false}],"
        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]},"
        "\"pre_tokenizer\":null,"
        "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
        "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true,\"fuse_unk\":true,"
        "\"vocab\":{\"<unk>\":0,\"<0xC3>\":1,\"<0xA9>\":2,\"\\u2581\":3,\"a\":4,\"b\":5,\"\\u2581a\":6,\"ab\":7,\"\\u2581ab\":8},"
        "\"merges\":[\"\\u2581 a\",\"a b\",\"\\u2581a b\"]}}");
    // Digits + Metaspace pre-tokenizers, Lowercase, a continuing-subword prefix, a
    // normalized added token with lstrip/rstrip, the Metaspace decoder
    const char *ms_path = "/tmp/temper-oom-ms.json";
    write_json(ms_path,
        "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
        "{\"id\":9,\"content\":\"<x>\",\"special\":false,\"normalized\":true,\"lstrip\":true,\"rstrip\":true}],"
        "\"normalizer\":{\"type\":\"Lowercase\"},"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},"
        "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\",\"split\":true}]},"
        "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\"},"
        "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":\"##\","
        "\"vocab\":{\"<unk>\":0,\"\\u2581\":1,\"a\":2,\"##b\":3,\"##a\":4,\"1\":5,\"2\":6,\"\\u2581a\":7,\"##\\u2581\":8},\"merges\":[]}}");
    // byte-level with add_prefix_space and a TemplateProcessing post-processor
    const char *bl_path = "/tmp/temper-oom-bl.json";
    write_json(bl_path,
        "{\"added_tokens\":[{\"id\":5,\"content\":\"<s>\",\"special\":true,\"normalized\":false}],"
        "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true},"
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
        "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[5],\"tokens\":[\"<s>\"]}}},"
        "\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"\\u0120\":0,\"h\":1,\"i\":2,\"\\u0120h\":3,\"\\u0120hi\":4},\"merges\":[\"\\u0120 h\",\"\\u0120h i\"]}}");

    fixture fx[] = {
        {"byte-level fixture", tj, tc, text, 0},
        {"sentencepiece-style", sp_path, NULL, "ab \xc3\xa9z ab ab b a", 0},
        {"metaspace + digits", ms_path, NULL, "AB ab<x> 12 ba abab <x>a", 0},
        {"byte-level + post-processor", bl_path, NULL, "hi hi hi hih", 1},
    };
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) try_fixture(&fx[i]);
    try_rollout(dir);
    unlink(sp_path);
    unlink(ms_path);
    unlink(bl_path);
    fixture_cleanup(dir);
    return test_done();
}
