// task/synth: GSM8K-style word problems (see synth.h for the contract).
#include "task/synth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/io.h"

// ---------------------------------------------------------------- names

static const char *const TOOLS[] = {"none", "calculator", "python"};
static const char *const SPLITS[] = {"train", "validation", "test"};

int synth_tools_from_name(const char *s) {
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, TOOLS[i])) return i;
    return -1;
}
const char *synth_tools_name(synth_tools t) { return (unsigned)t < 3 ? TOOLS[t] : "?"; }
int synth_split_from_name(const char *s) {
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, SPLITS[i])) return i;
    return -1;
}
const char *synth_split_name(synth_split s) { return (unsigned)s < 3 ? SPLITS[s] : "?"; }

// FNV-1a, then splitmix64's finalizer so that near-identical keys spread. Fixed forever:
// changing it would move templates between splits.
static uint64_t key_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27; h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

synth_split synth_split_of(const char *key) {
    uint64_t b = key_hash(key) % 10;
    return b < 8 ? SYNTH_TRAIN : b == 8 ? SYNTH_VALIDATION : SYNTH_TEST;
}

// ---------------------------------------------------------------- the world

typedef struct { const char *name, *subj, *Subj, *poss; } person;
static const person PEOPLE[] = {
    {"Ava", "she", "She", "her"},    {"Ben", "he", "He", "his"},     {"Carla", "she", "She", "her"},
    {"David", "he", "He", "his"},    {"Emma", "she", "She", "her"},  {"Farid", "he", "He", "his"},
    {"Grace", "she", "She", "her"},  {"Hugo", "he", "He", "his"},    {"Iris", "she", "She", "her"},
    {"Jamal", "he", "He", "his"},    {"Kate", "she", "She", "her"},  {"Liam", "he", "He", "his"},
    {"Maya", "she", "She", "her"},   {"Noah", "he", "He", "his"},    {"Olivia", "she", "She", "her"},
    {"Pedro", "he", "He", "his"},    {"Rosa", "she", "She", "her"},  {"Sam", "he", "He", "his"},
    {"Tara", "she", "She", "her"},   {"Victor", "he", "He", "his"},  {"Wendy", "she", "She", "her"},
    {"Yusuf", "he", "He", "his"},    {"Zoe", "she", "She", "her"},   {"Omar", "he", "He", "his"},
};
typedef struct { const char *one, *many; } thing;
static const thing THINGS[] = {
    {"apple", "apples"},   {"marble", "marbles"}, {"sticker", "stickers"}, {"pencil", "pencils"},
    {"cookie", "cookies"}, {"book", "books"},     {"shell", "shells"},     {"card", "cards"},
    {"egg", "eggs"},       {"toy car", "toy cars"}, {"candle", "candles"}, {"flower", "flowers"},
    {"balloon", "balloons"}, {"cupcake", "cupcakes"}, {"stamp", "stamps"}, {"orange", "oranges"},
    {"button", "buttons"}, {"bead", "beads"},     {"lemon", "lemons"},     {"kite", "kites"},
};
static const char *const CONTAINERS[] = {"basket", "box", "bag", "jar", "drawer"};
static const char *const ITEMS[] = {"a book", "a toy", "lunch", "a hat", "a game", "a ticket", "a scarf", "a lamp"};
static const int FRACS[][2] = {{1, 2}, {1, 3}, {2, 3}, {1, 4}, {3, 4}, {1, 5}, {2, 5}, {3, 5}};
#define COUNT_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

// ---------------------------------------------------------------- operations

typedef enum { U_COUNT, U_MONEY } unit;
typedef enum { K_SET, K_RATE, K_ADD, K_SUB, K_MUL, K_FRAC, K_DIV, K_PRICE } kind;
typedef struct { const char *say, *ask; } phrasing;
typedef struct {
    const char *id;
    kind k;
    int in, out;        // units; in = -1 for a start
    int last;           // only as the last operation (its result is a share, not the person's total)
    const char *solve;  // the solution sentence ({E}: the computation); NULL: none
    phrasing ph[3];
    int nph;
} op;

// Slots: {P} the person, {S}/{s} subject pronoun, {h} possessive, {N} another person,
// {O}/{o} the objects (plural/singular), {C} a container, {I} an item, {a}/{b} the
// operands, {f} the fraction in words, {E} the step's computation.
static const op OPS[] = {
    {"has", K_SET, -1, U_COUNT, 0, NULL,
     {{"{P} has {a} {O}.", NULL}, {"{P} collected {a} {O} last week.", NULL}, {"There are {a} {O} in {P}'s {C}.", NULL}}, 3},
    {"rate", K_RATE, -1, U_COUNT, 0, "{P} gets {E} {O}.",
     {{"{P} picks {a} {O} every day for {b} days.", "How many {O} does {P} pick in all?"},
      {"{P} buys {b} packs of {O} with {a} {O} in each pack.", "How many {O} does {P} buy?"},
      {"{P} makes {a} {O} an hour for {b} hours.", "How many {O} does {P} make?"}}, 3},
    {"cash", K_SET, -1, U_MONEY, 0, NULL, {{"{P} has ${a} in {h} wallet.", NULL}, {"{P} has saved ${a}.", NULL}}, 2},
    {"wage", K_RATE, -1, U_MONEY, 0, "{P} earns {E} dollars.",
     {{"{P} earns ${a} an hour and works {b} hours.", "How many dollars does {P} earn?"},
      {"{P} sells {b} {O} for ${a} each.", "How many dollars does {P} get?"}}, 2},
    {"add", K_ADD, U_COUNT, U_COUNT, 0, "Now {P} has {E} {O}.",
     {{"Then {s} buys {a} more {O}.", "How many {O} does {P} have now?"},
      {"{N} gives {P} {a} more {O}.", "How many {O} does {P} have now?"},
      {"The next day, {s} finds {a} more {O}.", "How many {O} does {P} have in all?"}}, 3},
    {"sub", K_SUB, U_COUNT, U_COUNT, 0, "{P} has {E} {O} left.",
     {{"{S} gives {a} {O} to {N}.", "How many {O} does {P} have left?"},
      {"{S} loses {a} of the {O}.", "How many {O} does {P} still have?"},
      {"Then {s} sells {a} of the {O}.", "How many {O} are left?"}}, 3},
    {"mul", K_MUL, U_COUNT, U_COUNT, 0, "{P} now has {E} {O}.",
     {{"A month later, {s} has {a} times as many {O}.", "How many {O} does {P} have now?"},
      {"{P}'s collection of {O} grows to {a} times its size.", "How many {O} are in the collection now?"}}, 2},
    {"frac", K_FRAC, U_COUNT, U_COUNT, 0, "{P} keeps {E} {O}.",
     {{"{S} keeps {f} of the {O} and gives the rest away.", "How many {O} does {P} keep?"},
      {"Only {f} of the {O} are good, and {s} throws the rest away.", "How many good {O} are there?"}}, 2},
    {"div", K_DIV, U_COUNT, U_COUNT, 1, "Each share has {E} {O}.",
     {{"{S} puts the {O} into {a} bags with the same number in each.", "How many {O} are in each bag?"},
      {"{S} shares the {O} equally among {a} friends.", "How many {O} does each friend get?"}}, 2},
    {"sell", K_PRICE, U_COUNT, U_MONEY, 0, "{P} gets {E} dollars.",
     {{"{S} sells each {o} for ${a}.", "How many dollars does {P} get?"},
      {"{S} sells all the {O} at ${a} each.", "How many dollars does {P} make?"}}, 2},
    {"earn", K_ADD, U_MONEY, U_MONEY, 0, "{P} has {E} dollars.",
     {{"{N} gives {P} ${a} more.", "How many dollars does {P} have now?"},
      {"{S} also earns ${a} doing chores.", "How many dollars does {P} have in all?"}}, 2},
    {"spend", K_SUB, U_MONEY, U_MONEY, 0, "{P} has {E} dollars left.",
     {{"{S} spends ${a} on {I}.", "How many dollars does {P} have left?"},
      {"{S} pays ${a} for {I}.", "How many dollars are left?"}}, 2},
    {"save", K_FRAC, U_MONEY, U_MONEY, 0, "{P} saves {E} dollars.",
     {{"{S} saves {f} of the money.", "How many dollars does {P} save?"},
      {"{S} puts {f} of the money in the bank.", "How many dollars does {P} put in the bank?"}}, 2},
    {"split", K_DIV, U_MONEY, U_MONEY, 1, "Each share is {E} dollars.",
     {{"{S} splits the money equally among {a} friends.", "How many dollars does each friend get?"},
      {"{S} puts the money into {a} envelopes, the same amount in each.", "How many dollars are in each envelope?"}}, 2},
};
#define NOPS COUNT_OF(OPS)
enum { MAX_VALUE = 999 };

// ---------------------------------------------------------------- a problem's plan

typedef struct {
    int op, ph;         // OPS index and phrasing
    long x, a, b, y;    // input, operands (FRAC: a/b), result
} step;

typedef struct {
    int nsteps;
    step s[SYNTH_MAX_LEVEL + 1];
    int person, other, thing, container, item;
} plan;

static long draw(rng *r, long lo, long hi) { return hi < lo ? lo : lo + (long)rng_below(r, (uint64_t)(hi - lo + 1)); }

// The template: a start, then operations until `level` arithmetic operations. Returns
// the id (written to id).
static void draw_template(rng *r, int level, plan *p, char *id, size_t cap) {
    int starts[4] = {0, 1, 2, 3};
    const op *st = &OPS[starts[rng_below(r, 4)]];
    p->nsteps = 0;
    step *s = &p->s[p->nsteps++];
    memset(s, 0, sizeof *s);
    s->op = (int)(st - OPS);
    s->ph = (int)rng_below(r, (uint64_t)st->nph);
    int ops = st->k == K_RATE, u = st->out;
    size_t len = (size_t)snprintf(id, cap, "%s%d", st->id, s->ph);
    while (ops < level) {
        int cand[NOPS], nc = 0;
        for (int i = 0; i < NOPS; i++)
            if (OPS[i].in == u && (!OPS[i].last || ops == level - 1)) cand[nc++] = i;
        const op *o = &OPS[cand[rng_below(r, (uint64_t)nc)]];
        s = &p->s[p->nsteps++];
        memset(s, 0, sizeof *s);
        s->op = (int)(o - OPS);
        s->ph = (int)rng_below(r, (uint64_t)o->nph);
        if (len < cap) len += (size_t)snprintf(id + len, cap - len, ".%s%d", o->id, s->ph);
        u = o->out;
        ops++;
    }
}

// Numbers for the template: 0, or -1 when this draw failed a constraint (try again).
static int draw_numbers(rng *r, plan *p, char *nums, size_t cap) {
    long x = 0;
    size_t len = 0;
    nums[0] = 0;
    for (int i = 0; i < p->nsteps; i++) {
        step *s = &p->s[i];
        const op *o = &OPS[s->op];
        int money = o->out == U_MONEY;
        s->x = x;
        s->b = 0;
        switch (o->k) {
        case K_SET: s->a = money ? draw(r, 10, 99) : draw(r, 5, 60); s->y = s->a; break;
        case K_RATE: s->a = draw(r, 2, 12); s->b = draw(r, 2, 9); s->y = s->a * s->b; break;
        case K_ADD: s->a = money ? draw(r, 5, 60) : draw(r, 2, 40); s->y = x + s->a; break;
        case K_SUB:
            if (x < 3) return -1;
            s->a = draw(r, 2, x - 1); s->y = x - s->a; break;
        case K_MUL: s->a = draw(r, 2, 4); s->y = x * s->a; break;
        case K_PRICE: s->a = draw(r, 2, 9); s->y = x * s->a; break;
        case K_FRAC: {
            int ok[COUNT_OF(FRACS)], n = 0;
            for (int f = 0; f < COUNT_OF(FRACS); f++)
                if (x % FRACS[f][1] == 0) ok[n++] = f;
            if (!n) return -1;
            int f = ok[rng_below(r, (uint64_t)n)];
            s->a = FRACS[f][0]; s->b = FRACS[f][1]; s->y = x * s->a / s->b;
            break;
        }
        case K_DIV: {
            long ok[8];
            int n = 0;
            for (long d = 2; d <= 9; d++)
                if (x % d == 0 && x / d >= 2) ok[n++] = d;
            if (!n) return -1;
            s->a = ok[rng_below(r, (uint64_t)n)]; s->y = x / s->a;
            break;
        }
        }
        if (s->y < 1 || s->y > MAX_VALUE) return -1;
        x = s->y;
        if (len < cap) {
            const char *sep = i ? "," : "";
            if (o->k == K_FRAC) len += (size_t)snprintf(nums + len, cap - len, "%s%ld/%ld", sep, s->a, s->b);
            else if (o->k == K_RATE) len += (size_t)snprintf(nums + len, cap - len, "%s%ld,%ld", sep, s->a, s->b);
            else len += (size_t)snprintf(nums + len, cap - len, "%s%ld", sep, s->a);
        }
    }
    return 0;
}

// ---------------------------------------------------------------- rendering

// The computation of step s: display "12 * 3/4" and calculator body "12*3/4".
static void expression(const step *s, kind k, sbuf *disp, sbuf *calc) {
    switch (k) {
    case K_SET: sbuf_printf(disp, "%ld", s->a); sbuf_printf(calc, "%ld", s->a); break;
    case K_RATE: sbuf_printf(disp, "%ld * %ld", s->a, s->b); sbuf_printf(calc, "%ld*%ld", s->a, s->b); break;
    case K_ADD: sbuf_printf(disp, "%ld + %ld", s->x, s->a); sbuf_printf(calc, "%ld+%ld", s->x, s->a); break;
    case K_SUB: sbuf_printf(disp, "%ld - %ld", s->x, s->a); sbuf_printf(calc, "%ld-%ld", s->x, s->a); break;
    case K_MUL:
    case K_PRICE: sbuf_printf(disp, "%ld * %ld", s->x, s->a); sbuf_printf(calc, "%ld*%ld", s->x, s->a); break;
    case K_FRAC: sbuf_printf(disp, "%ld * %ld/%ld", s->x, s->a, s->b); sbuf_printf(calc, "%ld*%ld/%ld", s->x, s->a, s->b); break;
    case K_DIV: sbuf_printf(disp, "%ld / %ld", s->x, s->a); sbuf_printf(calc, "%ld/%ld", s->x, s->a); break;
    }
}

static void expand(const char *fmt, const plan *p, const step *s, synth_tools tools, sbuf *out) {
    const person *P = &PEOPLE[p->person], *N = &PEOPLE[p->other];
    const thing *T = &THINGS[p->thing];
    for (const char *c = fmt; *c; c++) {
        if (c[0] != '{' || !c[1] || c[2] != '}') { sbuf_put(out, c, 1); continue; }
        switch (c[1]) {
        case 'P': sbuf_puts(out, P->name); break;
        case 'S': sbuf_puts(out, P->Subj); break;
        case 's': sbuf_puts(out, P->subj); break;
        case 'h': sbuf_puts(out, P->poss); break;
        case 'N': sbuf_puts(out, N->name); break;
        case 'O': sbuf_puts(out, T->many); break;
        case 'o': sbuf_puts(out, T->one); break;
        case 'C': sbuf_puts(out, CONTAINERS[p->container]); break;
        case 'I': sbuf_puts(out, ITEMS[p->item]); break;
        case 'a': sbuf_printf(out, "%ld", s->a); break;
        case 'b': sbuf_printf(out, "%ld", s->b); break;
        case 'f':
            if (s->a == 1 && s->b == 2) sbuf_puts(out, "half");
            else sbuf_printf(out, "%ld/%ld", s->a, s->b);
            break;
        case 'E': {
            sbuf d, k;
            sbuf_init(&d); sbuf_init(&k);
            expression(s, OPS[s->op].k, &d, &k);
            sbuf_put(out, d.data ? d.data : "", d.len);
            if (tools == SYNTH_TOOLS_CALC) sbuf_printf(out, " = <<%s=%ld>>%ld", k.data ? k.data : "", s->y, s->y);
            else sbuf_printf(out, " = %ld", s->y);
            sbuf_free(&d); sbuf_free(&k);
            break;
        }
        default: sbuf_put(out, c, 3); break;
        }
        c += 2;
    }
}

static void python_code(const plan *p, sbuf *out) {
    for (int i = 0; i < p->nsteps; i++) {
        const step *s = &p->s[i];
        const op *o = &OPS[s->op];
        const char *v = o->out == U_MONEY ? "money" : "count", *in = o->in == U_MONEY ? "money" : "count";
        switch (o->k) {
        case K_SET: sbuf_printf(out, "%s = %ld\n", v, s->a); break;
        case K_RATE: sbuf_printf(out, "%s = %ld * %ld\n", v, s->a, s->b); break;
        case K_ADD: sbuf_printf(out, "%s = %s + %ld\n", v, in, s->a); break;
        case K_SUB: sbuf_printf(out, "%s = %s - %ld\n", v, in, s->a); break;
        case K_MUL:
        case K_PRICE: sbuf_printf(out, "%s = %s * %ld\n", v, in, s->a); break;
        case K_FRAC: sbuf_printf(out, "%s = %s * %ld // %ld\n", v, in, s->a, s->b); break;
        case K_DIV: sbuf_printf(out, "%s = %s // %ld\n", v, in, s->a); break;
        }
    }
    sbuf_printf(out, "print(%s)\n", OPS[p->s[p->nsteps - 1].op].out == U_MONEY ? "money" : "count");
}

static char *take(sbuf *b) {
    char *s = b->data ? b->data : strdup("");
    sbuf_init(b);
    return s;
}

static int render(const plan *p, int level, synth_tools tools, int steps, synth_problem *out, tm_error *err) {
    sbuf q, sol, t0, t1;
    sbuf_init(&q); sbuf_init(&sol); sbuf_init(&t0); sbuf_init(&t1);
    const step *last = &p->s[p->nsteps - 1];
    for (int i = 0; i < p->nsteps; i++) {
        if (i) sbuf_puts(&q, " ");
        expand(OPS[p->s[i].op].ph[p->s[i].ph].say, p, &p->s[i], tools, &q);
    }
    sbuf_puts(&q, " ");
    expand(OPS[last->op].ph[last->ph].ask, p, last, tools, &q);
    char ans[32];
    snprintf(ans, sizeof ans, "%ld", last->y);
    int py = tools == SYNTH_TOOLS_PYTHON && level >= 4;
    if (py) {
        sbuf_puts(&t0, "Let's compute it with Python.\n```python\n");
        python_code(p, &t0);
        sbuf_puts(&t0, "```");
        sbuf_printf(&t1, "The answer is %s.\n#### %s", ans, ans);
        sbuf_printf(&sol, "%s\n```output\n%s\n```\n%s", t0.data ? t0.data : "", ans, t1.data ? t1.data : "");
    } else {
        synth_tools t = tools == SYNTH_TOOLS_CALC ? SYNTH_TOOLS_CALC : SYNTH_TOOLS_NONE;
        if (steps) sbuf_puts(&sol, "Let's think step by step.\n");
        for (int i = 0, k = 1; i < p->nsteps; i++) {
            const char *solve = OPS[p->s[i].op].solve;
            if (!solve) continue;
            if (steps) sbuf_printf(&sol, "Step %d: ", k++);
            expand(solve, p, &p->s[i], t, &sol);
            sbuf_puts(&sol, "\n");
        }
        sbuf_printf(&sol, "#### %s", ans);
    }
    int rc = sbuf_check(&q, err) || sbuf_check(&sol, err) || sbuf_check(&t0, err) || sbuf_check(&t1, err) ? -1 : 0;
    if (!rc) {
        out->question = take(&q);
        out->solution = take(&sol);
        out->answer = strdup(ans);
        if (py) {
            out->nturns = 3;
            out->turns[0] = take(&t0);
            out->turns[2] = take(&t1);
            sbuf o;
            sbuf_init(&o);
            sbuf_printf(&o, "```output\n%s\n```", ans);
            out->turns[1] = sbuf_check(&o, err) ? NULL : take(&o);
            sbuf_free(&o);
        } else {
            out->nturns = 1;
            out->turns[0] = out->solution ? strdup(out->solution) : NULL;
        }
        for (int i = 0; i < out->nturns; i++)
            if (!out->turns[i]) rc = -1;
        if (!out->question || !out->solution || !out->answer) rc = -1;
        if (rc) tm_fail(err, "out of memory");
    }
    sbuf_free(&q); sbuf_free(&sol); sbuf_free(&t0); sbuf_free(&t1);
    return rc;
}

// ---------------------------------------------------------------- generation

int synth_generate(rng *r, int level, synth_split split, synth_tools tools, int step_labels, synth_problem *p,
                   tm_error *err) {
    memset(p, 0, sizeof *p);
    if (level < 1 || level > SYNTH_MAX_LEVEL) return tm_fail(err, "synth: level %d is not in 1..%d", level, SYNTH_MAX_LEVEL);
    if ((unsigned)split > SYNTH_TEST) return tm_fail(err, "synth: unknown split %d", (int)split);
    if ((unsigned)tools > SYNTH_TOOLS_PYTHON) return tm_fail(err, "synth: unknown tools %d", (int)tools);
    plan pl;
    // Rejection sampling: about 1 in 10 templates and 1 in 10 number draws belong to a
    // held-out split, and some templates fail a divisibility often; these bounds are
    // never reached in practice (the test generates thousands per split and level).
    for (int t = 0; t < 20000; t++) {
        draw_template(r, level, &pl, p->template_id, sizeof p->template_id);
        if (synth_split_of(p->template_id) != split) continue;
        for (int k = 0; k < 400; k++) {
            if (draw_numbers(r, &pl, p->numbers, sizeof p->numbers)) continue;
            if (synth_split_of(p->numbers) != split) continue;
            pl.person = (int)rng_below(r, COUNT_OF(PEOPLE));
            pl.other = (pl.person + 1 + (int)rng_below(r, COUNT_OF(PEOPLE) - 1)) % COUNT_OF(PEOPLE);
            pl.thing = (int)rng_below(r, COUNT_OF(THINGS));
            pl.container = (int)rng_below(r, COUNT_OF(CONTAINERS));
            pl.item = (int)rng_below(r, COUNT_OF(ITEMS));
            p->level = level;
            p->split = split;
            p->tools = tools;
            if (render(&pl, level, tools, step_labels, p, err)) { synth_problem_free(p); return -1; }
            return 0;
        }
    }
    return tm_fail(err, "synth: no %s problem of level %d found (this is a bug)", synth_split_name(split), level);
}

void synth_problem_free(synth_problem *p) {
    free(p->question);
    free(p->answer);
    free(p->solution);
    for (int i = 0; i < 3; i++) free(p->turns[i]);
    memset(p, 0, sizeof *p);
}

void synth_row_json(const synth_problem *p, long index, sbuf *out) {
    static const char *const roles[3] = {"assistant", "user", "assistant"};
    sbuf_puts(out, "{\"prompt\": ");
    sbuf_json_str(out, p->question, strlen(p->question));
    sbuf_puts(out, ", \"completion\": ");
    if (p->nturns == 1) sbuf_json_str(out, p->turns[0], strlen(p->turns[0]));
    else {
        sbuf_puts(out, "[");
        for (int i = 0; i < p->nturns; i++) {
            sbuf_printf(out, "%s{\"role\": \"%s\", \"content\": ", i ? ", " : "", roles[i]);
            sbuf_json_str(out, p->turns[i], strlen(p->turns[i]));
            sbuf_puts(out, "}");
        }
        sbuf_puts(out, "]");
    }
    sbuf_puts(out, ", \"answer\": ");
    sbuf_json_str(out, p->answer, strlen(p->answer));
    sbuf_printf(out, ", \"level\": %d, \"split\": \"%s\", \"tools\": \"%s\", \"template\": ", p->level,
                synth_split_name(p->split), synth_tools_name(p->tools));
    sbuf_json_str(out, p->template_id, strlen(p->template_id));
    sbuf_puts(out, ", \"numbers\": ");
    sbuf_json_str(out, p->numbers, strlen(p->numbers));
    sbuf_printf(out, ", \"id\": \"synth-%s-%ld\"}", synth_split_name(p->split), index);
}

// Problem i's generator: a function of (seed, split, i) alone, so a file's first rows do
// not depend on n and the tools variant has the same questions.
static void problem_rng(rng *r, uint64_t seed, synth_split split, long i) {
    rng s;
    rng_seed(&s, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(split + 1)));
    uint64_t a = rng_u64(&s);
    rng_seed(r, a + 0xd1b54a32d192ed03ull * (uint64_t)i);
}

int synth_write(const synth_opts *o, tm_error *err) {
    if (o->level_lo < 1 || o->level_hi > SYNTH_MAX_LEVEL || o->level_lo > o->level_hi)
        return tm_fail(err, "--level %d..%d is not within 1..%d", o->level_lo, o->level_hi, SYNTH_MAX_LEVEL);
    if (o->n < 1) return tm_fail(err, "--n must be at least 1 (got %ld)", o->n);
    int to_stdout = !strcmp(o->out, "-");  // io_atomic writes a device or /dev/stdout in place
    io_atomic w = {0};
    if (to_stdout) w.f = stdout;
    else if (io_atomic_open(&w, o->out, err)) return -1;
    sbuf line;
    sbuf_init(&line);
    int rc = 0, nl = o->level_hi - o->level_lo + 1;
    for (long i = 0; i < o->n && !rc; i++) {
        rng r;
        problem_rng(&r, o->seed, o->split, i);
        synth_problem p;
        if (synth_generate(&r, o->level_lo + (int)(i % nl), o->split, o->tools, o->step_labels, &p, err)) { rc = -1; break; }
        sbuf_clear(&line);
        synth_row_json(&p, i, &line);
        sbuf_puts(&line, "\n");
        synth_problem_free(&p);
        if (sbuf_check(&line, err)) { rc = -1; break; }
        if (fwrite(line.data, 1, line.len, w.f) != line.len) rc = tm_fail(err, "%s: write failed", o->out);
    }
    sbuf_free(&line);
    if (to_stdout) return rc || fflush(stdout) ? (rc ? -1 : tm_fail(err, "stdout: write failed")) : 0;
    if (rc) { io_atomic_abort(&w); return -1; }
    return io_atomic_commit(&w, err);
}
