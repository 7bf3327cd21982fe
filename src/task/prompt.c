// task/prompt: styles, exemplars and the prompt rule (see prompt.h).
#include "task/prompt.h"
#include <stdlib.h>
#include <string.h>

static const char *STYLE_NAMES[] = {"boxed", "plain", "tora", "gsm8k-fewshot", "minerva"};

static const char *BOXED_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}.";

// Chain-of-thought exemplars of Wei et al. (2022), as in lm-evaluation-harness gsm8k-cot.
static const char *GSM8K_SHOTS[][2] = {
    {"There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6."},
    {"If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."},
    {"Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39."},
    {"Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8."},
    {"Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9."},
    {"There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29."},
    {"Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33."},
    {"Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8."},
};

// The 4-shot prompt of Minerva (Lewkowycz et al. 2022) for MATH.
static const char *MINERVA_SHOTS[][2] = {
    {"Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}",
     "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it is correct."},
    {"If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
     "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct."},
    {"Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many times must Terrell lift them in order to lift the same total weight?",
     "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$:\n\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The final answer is $16$. I hope it is correct."},
    {"If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution $(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ is nonzero.",
     "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we also know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\nFinal Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct."},
};

int task_style_from_name(const char *name) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, STYLE_NAMES[i])) return i;
    return -1;
}

const char *task_style_name(task_style st) { return (unsigned)st < 5 ? STYLE_NAMES[st] : "?"; }

int task_style_uses_chat(task_style st) { return st != TASK_STYLE_GSM8K_FEWSHOT && st != TASK_STYLE_MINERVA; }

int task_style_stops(task_style st, const char **out) {
    if (st == TASK_STYLE_GSM8K_FEWSHOT) { out[0] = "\n\nQ:"; out[1] = "\nQ:"; return 2; }
    if (st == TASK_STYLE_MINERVA) { out[0] = "\n\nProblem:"; out[1] = "\nProblem:"; return 2; }
    return 0;
}

void task_prompt_content(task_style st, const char *q, size_t qn, const char *suffix, sbuf *out) {
    if (st == TASK_STYLE_GSM8K_FEWSHOT) {
        for (size_t i = 0; i < sizeof GSM8K_SHOTS / sizeof GSM8K_SHOTS[0]; i++)
            sbuf_printf(out, "Q: %s\nA: %s\n\n", GSM8K_SHOTS[i][0], GSM8K_SHOTS[i][1]);
        sbuf_puts(out, "Q: ");
    } else if (st == TASK_STYLE_MINERVA) {
        for (size_t i = 0; i < sizeof MINERVA_SHOTS / sizeof MINERVA_SHOTS[0]; i++)
            sbuf_printf(out, "Problem:\n%s\n\nSolution:\n%s\n\n", MINERVA_SHOTS[i][0], MINERVA_SHOTS[i][1]);
        sbuf_puts(out, "Problem:\n");
    }
    sbuf_put(out, q, qn);
    if (st == TASK_STYLE_BOXED) sbuf_puts(out, BOXED_SUFFIX);
    if (suffix) sbuf_puts(out, suffix);
    if (st == TASK_STYLE_GSM8K_FEWSHOT) sbuf_puts(out, "\nA:");
    if (st == TASK_STYLE_MINERVA) sbuf_puts(out, "\n\nSolution:");
}

int task_prompt_render(const tok_chat *chat, const char *content, size_t n, sbuf *out, tm_error *err) {
    if (!chat) {
        sbuf_put(out, content, n);  // plain text: nothing added, so what sft trains on is what eval feeds
        return 0;
    }
    tok_chat_msg m = {"user", content, n, NULL, 0};
    return task_prompt_render_messages(chat, &m, 1, out, err);
}

int task_prompt_render_messages(const tok_chat *chat, const tok_chat_msg *m, int n, sbuf *out, tm_error *err) {
    if (!chat) return tm_fail(err, "message lists need a chat template (the tokenizer has none; pass --chat-template)");
    tok_chat_render r = {0};
    int rc = tok_chat_apply(chat, m, n, 1, &r, err);
    if (!rc) sbuf_put(out, r.text.data, r.text.len);
    tok_chat_render_free(&r);
    return rc;
}

// A content-part list's flattened length (parts as Qwen2-VL's chat template renders them), or -1.
#define TASK_VISION_PART "<|vision_start|><|image_pad|><|vision_end|>"
static long parts_len(const json *c) {
    long n = 0;
    for (int k = 0; k < c->n; k++) {
        const json *p = &c->items[k], *ty = json_get(p, "type"), *tx = json_get(p, "text");
        if (p->type != JSON_OBJECT || !ty || ty->type != JSON_STRING) return -1;
        if (!strcmp(ty->str, "image")) n += (long)strlen(TASK_VISION_PART);
        else if (!strcmp(ty->str, "text") && tx && tx->type == JSON_STRING) n += (long)tx->len;
        else return -1;
    }
    return n;
}

int task_messages(const json *v, const char *field, tok_chat_msg **out, int *n, tm_error *err) {
    if (!v || v->type != JSON_ARRAY) return tm_fail(err, "%s: expected a list of messages", field);
    // content-part lists are flattened into text stored after the messages, in the same block
    size_t extra = 0;
    for (int i = 0; i < v->n; i++) {
        const json *c = json_get(&v->items[i], "content");
        if (c && c->type == JSON_ARRAY) {
            long l = parts_len(c);
            if (l < 0)
                return tm_fail(err, "%s[%d]: \"content\" parts must be {\"type\": \"text\", \"text\": ...} or {\"type\": \"image\"}", field, i);
            extra += (size_t)l + 1;
        }
    }
    size_t head = ((size_t)v->n + 1) * sizeof(tok_chat_msg);
    tok_chat_msg *m = calloc(1, head + extra);
    if (!m) return tm_fail(err, "out of memory");
    char *text = (char *)m + head;
    for (int i = 0; i < v->n; i++) {
        const json *o = &v->items[i];
        const json *role = json_get(o, "role"), *c = json_get(o, "content"), *r = json_get(o, "reasoning_content");
        if (o->type != JSON_OBJECT || !role || role->type != JSON_STRING) {
            free(m);
            return tm_fail(err, "%s[%d]: a message needs a string \"role\"", field, i);
        }
        if (!c || (c->type != JSON_STRING && c->type != JSON_ARRAY)) {
            free(m);
            return tm_fail(err, "%s[%d]: \"content\" must be a string or a list of parts", field, i);
        }
        m[i].role = role->str;
        if (c->type == JSON_STRING) {
            m[i].content = c->str;
            m[i].content_len = c->len;
        } else {
            // Qwen2-VL's template: an image part is its placeholder, a text part its text, nothing between
            char *at = text;
            for (int k = 0; k < c->n; k++) {
                const json *p = &c->items[k], *ty = json_get(p, "type");
                if (!strcmp(ty->str, "image")) memcpy(at, TASK_VISION_PART, strlen(TASK_VISION_PART)), at += strlen(TASK_VISION_PART);
                else { const json *tx = json_get(p, "text"); memcpy(at, tx->str, tx->len); at += tx->len; }
            }
            *at = 0;
            m[i].content = text;
            m[i].content_len = (size_t)(at - text);
            text = at + 1;
        }
        if (r && r->type == JSON_STRING) { m[i].reasoning = r->str; m[i].reasoning_len = r->len; }
    }
    *out = m;
    *n = v->n;
    return 0;
}
