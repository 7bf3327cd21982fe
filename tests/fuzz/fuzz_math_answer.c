// libFuzzer target: the math verifier (reward/math_answer.h). The first byte picks the
// extractor order and the equality options; the rest is a model output, and after a
// NUL byte (if any) a gold answer. Extraction and equality must never crash, hang
// (scripts/run-tests passes -timeout) or leak, and must return documented values:
// the extracted span lies inside the text, verdicts are in math_verdict, a verdict is
// deterministic, and equality is reflexive: an answer compared with itself is
// never a mismatch (it is equal, or refused as unparseable/empty or too large).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "reward/math_answer.h"

// MATH_ERROR (out of memory) is a verdict too, but never expected here.
static int verdict_ok(math_verdict v) { return v >= MATH_UNEVALUATED && v <= MATH_EQUAL; }

static void check_self(const char *a, const math_equal_opts *o) {
    math_verdict v = math_answer_compare(a, a, o);
    if (!verdict_ok(v) || v == MATH_MISMATCH || v == MATH_UNEVALUATED) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 8192) return 0;
    uint8_t sel = data[0];
    // text = data[1..nul), gold = data(nul..size), both NUL-terminated copies
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    const uint8_t *nul = memchr(body, 0, n);
    size_t tlen = nul ? (size_t)(nul - body) : n;
    char *text = malloc(tlen + 1), *gold = NULL;
    memcpy(text, body, tlen);
    text[tlen] = 0;
    if (nul) {
        size_t glen = n - tlen - 1;
        gold = malloc(glen + 1);
        memcpy(gold, nul + 1, glen);
        gold[glen] = 0;
    }

    math_extract_opts xo;
    math_extract_opts_default(&xo);
    if (sel & 1) {  // a rotated order with the last-number fallback
        static const char *specs[] = {"last", "tool,hash,answer,boxed,last", "hash,boxed", "answer,last,tool"};
        if (math_extract_opts_parse(&xo, specs[(sel >> 1) & 3])) abort();
    }
    math_equal_opts eo;
    math_equal_opts_default(&eo);
    eo.approx = (sel >> 3) & 1;
    eo.allow_unevaluated = (sel >> 4) & 1;
    eo.seed ^= (uint64_t)(sel >> 5);

    size_t start = 0, alen = 0;
    math_extractor which = MATH_EXTRACT_BOXED;
    char *ans = NULL;
    // the extractor takes an explicit length: give it the whole body, NULs included
    if (math_extract((const char *)body, n, &xo, &start, &alen, &which)) {
        if (start > n || alen > n - start) abort();
        if ((unsigned)which > MATH_EXTRACT_LAST_NUMBER) abort();
        ans = malloc(alen + 1);
        memcpy(ans, body + start, alen);
        ans[alen] = 0;
    }
    if (ans) {
        if (memchr(ans, 0, alen)) abort();  // a span with a NUL is refused, never returned
        check_self(ans, &eo);
    }
    if (gold) {
        check_self(gold, &eo);
        const char *pred = ans ? ans : text;
        math_verdict v1 = math_answer_compare(pred, gold, &eo);
        math_verdict v2 = math_answer_compare(pred, gold, &eo);
        if (!verdict_ok(v1) || v1 != v2) abort();
        if (math_answer_equal(pred, gold, &eo) != (v1 == MATH_EQUAL)) abort();
        if (!verdict_ok(math_answer_compare(gold, pred, NULL))) abort();
    } else {
        check_self(text, &eo);
    }
    free(ans);
    free(text);
    free(gold);
    return 0;
}
