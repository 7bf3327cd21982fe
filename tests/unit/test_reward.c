// The math verifier: hand-written equal/not-equal cases (tests/data/reward_equal.tsv),
// extraction cases, real data (GSM8K test, MATH-500), and a fuzz-ish pass over random
// bytes and mutated real answers with a time bound per call.
#include <string.h>
#include <time.h>
#include "base/io.h"
#include "base/json.h"
#include "base/rng.h"
#include "reward/math_answer.h"
#include "test.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void case_file(void) {
    io_lines r;
    tm_error err;
    if (io_lines_open(&r, "tests/data/reward_equal.tsv", &err)) { CHECK(0, "open cases: %s", err.msg); return; }
    char *line;
    long n;
    int total = 0, bad = 0;
    while ((n = io_lines_next(&r, &line)) >= 0) {
        if (n < 3 || line[0] == '#') continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || !t2) continue;
        *t1 = *t2 = 0;
        // '=' equal and '!' unequal under both profiles; 'u' refused as unevaluated by
        // the RL default and equal under allow_unevaluated (temper eval / grade)
        char mark = line[0];
        math_equal_opts rl, ev;
        math_equal_opts_default(&rl);
        math_equal_opts_default(&ev);
        ev.allow_unevaluated = 1;
        math_verdict v = math_answer_compare(t1 + 1, t2 + 1, &rl), w = math_answer_compare(t1 + 1, t2 + 1, &ev);
        int good = mark == '=' ? v == MATH_EQUAL && w == MATH_EQUAL
                 : mark == 'u' ? v == MATH_UNEVALUATED && w == MATH_EQUAL
                               : v != MATH_EQUAL && w != MATH_EQUAL;
        total++;
        if (!good) {
            bad++;
            printf("not ok - case line %ld: '%c' pred '%s' gold '%s': default %s, allow-unevaluated %s\n", r.lineno,
                   mark, t1 + 1, t2 + 1, math_verdict_name(v), math_verdict_name(w));
            test_failures_++;
        }
    }
    io_lines_close(&r);
    CHECK(total >= 350 && bad == 0, "hand-written equality cases: %d cases, %d wrong", total, bad);
}

static void ex(const char *text, const char *want) {
    char shown[64];  // one line in the test output
    snprintf(shown, sizeof shown, "%s", text);
    for (char *q = shown; *q; q++)
        if (*q == '\n') *q = '|';
    size_t s, l;
    math_extractor w;
    int found = math_extract(text, strlen(text), NULL, &s, &l, &w);
    if (!want) { CHECK(!found, "extract none from '%.40s'", shown); return; }
    CHECK(found && l == strlen(want) && !memcmp(text + s, want, l), "extract '%s' from '%.50s' (got '%.*s')", want, shown,
          found ? (int)l : 0, found ? text + s : "");
}

static void extraction(void) {
    ex("so \\boxed{\\frac{1}{2}} is it", "\\frac{1}{2}");
    ex("first \\boxed{1} then \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.", "\\left( 3, \\frac{\\pi}{2} \\right)");
    ex("<think>maybe \\boxed{4}</think> final \\boxed{5}", "5");
    ex("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}");
    ex("\\boxed{\\{1,2\\}}", "\\{1,2\\}");
    ex("the answer is \\boxed 5", "5");
    ex("\\fbox{7}", "7");
    ex("\\boxed{3} and this is boxed in English", "3");
    ex("truncated \\boxed{\\frac{1}{", NULL);
    ex("She pays 5+3=8.\n#### 8", "8");
    ex("#### 1,000\n", "1,000");
    ex("#### -3", "-3");
    ex("#### 18\n\nQuestion: what about 5 eggs?", "18");
    ex("The answer is 42.", "42");
    ex("So the final answer is $\\frac{3}{4}$. I hope it is correct.", "$\\frac{3}{4}$");
    ex("Final Answer: The final answer is $5$. I hope it is correct.", "$5$");
    ex("Answer: 3/4", "3/4");
    ex("The answer is 3.5 dollars.", "3.5 dollars");
    ex("```python\nprint(2+2)\n```\n```output\n4\n```\nThe answer is \\boxed{4}.", "4");
    ex("```python\nprint(6*7)\n```\n```output\n42\n```\nSo she has 42 apples.", "42");
    ex("I have no idea.", NULL);
    ex("", NULL);
    // configurable order
    math_extract_opts o;
    CHECK(math_extract_opts_parse(&o, "hash,boxed") == 0 && o.n == 2, "parse extractor order");
    const char *t = "\\boxed{1}\n#### 2";
    size_t s, l;
    math_extractor w;
    CHECK(math_extract(t, strlen(t), &o, &s, &l, &w) && t[s] == '2' && w == MATH_EXTRACT_HASH, "order: hash first");
    CHECK(math_extract_opts_parse(&o, "bogus") == -1, "unknown extractor rejected");
    CHECK(math_extract_opts_parse(&o, "last") == 0 && math_extract("x 12 y 3/4 z", 12, &o, &s, &l, &w) &&
              l == 3 && !strncmp("3/4", "x 12 y 3/4 z" + s, 3),
          "last-number fallback takes a fraction");
    // options
    math_equal_opts eo;
    math_equal_opts_default(&eo);
    CHECK(!math_answer_equal("0.333", "0.33", &eo), "no tolerance by default");
    eo.approx = 1;
    CHECK(math_answer_equal("0.333", "0.33", &eo), "approx: 0.333 within half a unit of 0.33");
    CHECK(math_answer_equal("\\frac13", "0.33", &eo), "approx: 1/3 rounds to 0.33");
    CHECK(!math_answer_equal("0.34", "0.33", &eo), "approx: 0.34 is not 0.33");
    CHECK(math_answer_equal("\\sqrt2", "1.414", &eo), "approx: sqrt 2 rounds to 1.414");
    eo.approx = 0;
    eo.allow_unevaluated = 1;
    CHECK(math_answer_equal("2+3", "5", &eo), "allow_unevaluated: 2+3 = 5");
    CHECK(math_answer_compare("2+3", "5", NULL) == MATH_UNEVALUATED, "2+3 vs 5 is reported as unevaluated");
    CHECK(math_answer_compare("", "5", NULL) == MATH_PARSE_FAIL, "empty pred is a parse failure");
    CHECK(math_answer_compare("2^{999999999}", "2^{999999998}", NULL) == MATH_TOO_LARGE, "huge power is bounded");
    CHECK(math_answer_compare("1000000!", "1000001!", NULL) == MATH_TOO_LARGE, "huge factorial is bounded");
}

// Issue 19's false positive depended on the symbol's name (its sample points were all
// positive, and for some names all above 1): check every letter.
static void whole_real_line(void) {
    int wrong = 0;
    char a[32], b[32];
    for (int k = 0; k < 52; k++) {
        char v = (char)(k < 26 ? 'a' + k : 'A' + k - 26);
        if (v == 'e' || v == 'i') continue;  // constants
        const char *forms[][2] = {{"|%c-1|", "%c-1"}, {"|%c+1|", "%c+1"}, {"|%c|", "%c"}, {"\\sqrt{%c^2}", "%c"}};
        for (int f = 0; f < 4; f++) {
            snprintf(a, sizeof a, forms[f][0], v);
            snprintf(b, sizeof b, forms[f][1], v);
            if (math_answer_equal(a, b, NULL) || math_answer_equal(b, a, NULL)) {
                printf("# %s graded equal to %s\n", a, b);
                wrong++;
            }
        }
        snprintf(a, sizeof a, "|%c-1|", v);
        snprintf(b, sizeof b, "|1-%c|", v);
        if (!math_answer_equal(a, b, NULL)) { printf("# %s graded unequal to %s\n", a, b); wrong++; }
    }
    CHECK(wrong == 0, "|v-1| != v-1, |v+1| != v+1, |v| != v, sqrt(v^2) != v, |v-1| = |1-v| for every letter v (%d wrong)", wrong);
}

// The error-policy entry point, and answers that hold a NUL (issue 10).
static void api(void) {
    math_verdict v = MATH_MISMATCH;
    tm_error err;
    CHECK(math_answer_check("\\frac12", "0.5", NULL, &v, &err) == 0 && v == MATH_EQUAL, "math_answer_check: 0 and a verdict");
    static const char boxed_nul[] = "so \\boxed{1\0002}";
    size_t s, l;
    CHECK(!math_extract(boxed_nul, sizeof boxed_nul - 1, NULL, &s, &l, NULL), "a boxed answer with a NUL inside is no answer");
    static const char hash_nul[] = "#### 1\0002\n";
    CHECK(!math_extract(hash_nul, sizeof hash_nul - 1, NULL, &s, &l, NULL), "a #### answer with a NUL inside is no answer");
}

static void gsm8k(void) {
    io_lines r;
    tm_error err;
    if (io_lines_open(&r, "data/gsm8k/test.jsonl", &err)) {  // ships with the project: missing is a failure
        CHECK(0, "gsm8k data: %s", err.msg);
        return;
    }
    char *line;
    long n;
    int total = 0, hit = 0;
    double worst = 0;
    while ((n = io_lines_next(&r, &line)) >= 0) {
        json_doc *d = json_parse(line, (size_t)n, &err);
        if (!d) continue;
        const char *ans = json_get_str(json_root(d), "answer", "");
        // gold by the official rule: the text after "#### ", commas removed
        const char *h = strstr(ans, "#### ");
        char gold[64] = {0};
        if (h) {
            size_t k = 0;
            for (const char *q = h + 5; *q && *q != '\n' && k < 63; q++)
                if (*q != ',') gold[k++] = *q;
        }
        size_t s, l;
        double t0 = now();
        int ok = 0;
        if (math_extract(ans, strlen(ans), NULL, &s, &l, NULL)) {
            char pred[256];
            snprintf(pred, sizeof pred, "%.*s", (int)l, ans + s);
            ok = math_answer_equal(pred, gold, NULL);
        }
        double dt = now() - t0;
        if (dt > worst) worst = dt;
        total++;
        hit += ok;
        if (!ok) printf("# gsm8k miss line %ld: gold '%s'\n", r.lineno, gold);
        json_doc_free(d);
    }
    io_lines_close(&r);
    printf("# gsm8k test: %d/%d gold solutions extract to their gold answer (%.2f%%), worst call %.3f ms\n", hit, total,
           100.0 * hit / (total ? total : 1), worst * 1e3);
    CHECK(total == 1319 && hit == total, "gsm8k test: %d/%d", hit, total);
}

static void math500(void) {
    io_lines r;
    tm_error err;
    if (io_lines_open(&r, "data/math500/test.jsonl", &err)) {  // ships with the project: missing is a failure
        CHECK(0, "math500 data: %s", err.msg);
        return;
    }
    char *line;
    long n;
    int total = 0, hit = 0, perturbed = 0, wrapped = 0;
    double worst = 0;
    while ((n = io_lines_next(&r, &line)) >= 0) {
        json_doc *d = json_parse(line, (size_t)n, &err);
        if (!d) continue;
        const char *sol = json_get_str(json_root(d), "solution", "");
        const char *gold = json_get_str(json_root(d), "answer", "");
        size_t s, l;
        double t0 = now();
        int ok = 0;
        char *pred = NULL;
        if (math_extract(sol, strlen(sol), NULL, &s, &l, NULL)) {
            pred = strndup(sol + s, l);
            ok = math_answer_equal(pred, gold, NULL);
        }
        double dt = now() - t0;
        if (dt > worst) worst = dt;
        total++;
        hit += ok;
        if (!ok) printf("# math500 miss line %ld: extracted '%s' gold '%s'\n", r.lineno, pred ? pred : "(none)", gold);
        // perturbed forms of the gold: spaces removed, wrapped in $...$ with a period
        size_t gl = strlen(gold);
        char *sq = malloc(gl + 1), *wr = malloc(gl + 16);
        size_t k = 0;
        for (size_t i = 0; i < gl; i++)
            if (gold[i] != ' ' || (i && gold[i - 1] == '\\')) sq[k++] = gold[i];
        sq[k] = 0;
        snprintf(wr, gl + 16, "$%s$.", gold);
        if (math_answer_equal(sq, gold, NULL)) perturbed++;
        else printf("# math500 squeezed miss line %ld: '%s'\n", r.lineno, gold);
        if (math_answer_equal(wr, gold, NULL)) wrapped++;
        free(sq);
        free(wr);
        free(pred);
        json_doc_free(d);
    }
    io_lines_close(&r);
    printf("# math500: %d/%d gold solutions extract to their gold answer (%.2f%%); squeezed %d/%d; wrapped %d/%d; worst call %.3f ms\n",
           hit, total, 100.0 * hit / (total ? total : 1), perturbed, total, wrapped, total, worst * 1e3);
    CHECK(total == 500 && hit == total, "math500: %d/%d", hit, total);
    CHECK(perturbed == total && wrapped == total, "math500 perturbed golds: %d and %d of %d", perturbed, wrapped, total);
}

static void fuzz(void) {
    rng r;
    rng_seed(&r, 5);
    static const char *frags[] = {"\\frac", "{", "}", "\\sqrt", "^", "_", "(", ")", "[", "]", "\\{", "\\}", ",", "x",
                                  "2", "9999999", "\\pi", "!", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\",
                                  "\\left(", "\\right)", "=", "<", "\\le", "\\pm", "\\cup", "|", "\\text{", "-",
                                  ".", "e", "i", "\\infty", "%", "$", "\\boxed{", "####", "\\lfloor", "\\binom"};
    double worst = 0;
    int calls = 0;
    char a[512], b[512];
    for (int it = 0; it < 6000; it++) {
        size_t na = 0, nb = 0;
        int mode = it % 3;
        size_t len = rng_below(&r, 120);
        for (size_t k = 0; k < len && na < 400; k++) {
            if (mode == 0) a[na++] = (char)(1 + rng_below(&r, 255));
            else {
                const char *f = frags[rng_below(&r, sizeof frags / sizeof frags[0])];
                size_t fl = strlen(f);
                memcpy(a + na, f, fl);
                na += fl;
            }
        }
        a[na] = 0;
        len = rng_below(&r, 60);
        for (size_t k = 0; k < len && nb < 400; k++) {
            const char *f = frags[rng_below(&r, sizeof frags / sizeof frags[0])];
            size_t fl = strlen(f);
            memcpy(b + nb, f, fl);
            nb += fl;
        }
        b[nb] = 0;
        double t0 = now();
        math_answer_compare(a, b, NULL);
        math_answer_compare(b, a, NULL);
        size_t s, l;
        math_extract(a, na, NULL, &s, &l, NULL);
        double dt = now() - t0;
        if (dt > worst) worst = dt;
        calls++;
    }
    printf("# fuzz: %d random inputs, worst call %.3f ms\n", calls, worst * 1e3);
    // A bound against blow-ups (exponential backtracking, huge expansions), not a speed
    // test: generous enough for ASan on a loaded 2-core machine. Speed is `make bench`'s.
    CHECK(worst < 5.0, "fuzz: %d random byte/fragment inputs, no crash, worst %.3f ms (bound 5 s)", calls, worst * 1e3);
}

static void speed(void) {
    const char *pairs[][2] = {{"\\frac{3}{8}", "0.375"}, {"(x+1)^2", "x^2+2x+1"}, {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac\\pi2)"},
                              {"1,234", "1234"}, {"2\\sqrt2", "\\sqrt8"}};
    int n = 0;
    double t0 = now();
    while (now() - t0 < 0.3)
        for (int k = 0; k < 5; k++, n++) math_answer_equal(pairs[k][0], pairs[k][1], NULL);
    double rate = n / (now() - t0);
    printf("# speed: %.0f comparisons/s on mixed pairs (information; make bench measures speed)\n", rate);
}

int main(void) {
    case_file();
    whole_real_line();
    api();
    extraction();
    gsm8k();
    math500();
    fuzz();
    speed();
    return test_done();
}
