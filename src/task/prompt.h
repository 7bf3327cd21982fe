// task/prompt: prompt styles, few-shot exemplars, and THE PROMPT RULE, the one way a
// prompt row becomes the text a model sees (sft, dpo, kto, sample, eval, grpo,
// rehearsal and `data inspect` all go through it):
//
//   - a string prompt (a question, with the style's suffix) is one user message rendered
//     by the chat template with the generation prompt, when a chat template is in use
//     (the tokenizer has one, or --chat-template names one, and --no-chat-template is
//     not given); otherwise it is the text itself, with nothing added (no "\n");
//   - a message-list prompt is rendered by the chat template (an error without one);
//   - the few-shot styles (gsm8k-fewshot, minerva) are plain-text continuations and
//     never use a chat template.
#pragma once
#include "base/error.h"
#include "base/json.h"
#include "tokenizer/tokenizer.h"

typedef enum {
    TASK_STYLE_BOXED,          // question + "\nPlease reason step by step, and put your final answer within \boxed{}."
    TASK_STYLE_PLAIN,          // the question as it is
    TASK_STYLE_TORA,           // the question as it is (the python tool is on by default)
    TASK_STYLE_GSM8K_FEWSHOT,  // Wei et al.'s 8 chain-of-thought exemplars, "Q: ...\nA:"
    TASK_STYLE_MINERVA,        // Minerva's 4-shot MATH prompt, "Problem:\n...\n\nSolution:"
} task_style;

int task_style_from_name(const char *name);  // -1 if unknown
const char *task_style_name(task_style st);
// 0 for the few-shot styles: their prompt is plain text whatever the tokenizer has.
int task_style_uses_chat(task_style st);
// Stop strings a style needs (few-shot: the next exemplar's header); returns the count
// written to out (at most 2).
int task_style_stops(task_style st, const char **out);

// The user content of question q under style st, with suffix (NULL: none) after the
// style's own suffix. Appends to out (check it with sbuf_check).
void task_prompt_content(task_style st, const char *q, size_t qn, const char *suffix, sbuf *out);

// THE PROMPT RULE for user content: chat ? render(user message, generation prompt) :
// the content unchanged. Appends to out.
int task_prompt_render(const tok_chat *chat, const char *content, size_t n, sbuf *out, tm_error *err);
// A message-list prompt: chat template with the generation prompt (an error without one).
int task_prompt_render_messages(const tok_chat *chat, const tok_chat_msg *m, int n, sbuf *out, tm_error *err);

// A JSON message list ([{"role", "content"[, "reasoning_content"]}]) as messages; the
// strings point into v. *out is malloc'd (free it). field names the list in errors.
// A content that is a list of parts (TRL's vision format: {"type": "text", "text": ...},
// {"type": "image"}) is flattened as Qwen2-VL's chat template renders it: an image part
// becomes <|vision_start|><|image_pad|><|vision_end|>, a text part its text (held in *out).
int task_messages(const json *v, const char *field, tok_chat_msg **out, int *n, tm_error *err);
