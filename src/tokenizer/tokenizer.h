// tokenizer: Hugging Face tokenizer.json (model type BPE) and chat templates.
//
// What is supported, byte-exact with the Rust `tokenizers` library:
//   - byte-level BPE (GPT-2, Llama-3, Qwen2/Qwen3): Split pre-tokenizers with the
//     families' regexes (PCRE2, Unicode classes), ByteLevel pre-tokenizer/decoder,
//     `ignore_merges` (Llama-3);
//   - sentencepiece-style BPE (Llama-2, Gemma): `▁` for spaces through the Replace /
//     Prepend normalizers or the Metaspace pre-tokenizer, `byte_fallback` to
//     `<0xNN>` tokens, `unk` with `fuse_unk`, and the Replace/ByteFallback/Fuse/Strip
//     decoders;
//   - added tokens (special or not) matched before normalization (leftmost-longest,
//     with lstrip/rstrip/single_word), including special-token strings written
//     inside user text, exactly as Hugging Face does (they become the special id);
//   - normalizers NFC/NFKC/NFD/NFKD (utf8proc), Replace (string), Prepend, Lowercase,
//     Sequence; post-processor TemplateProcessing (single sequence) for
//     `add_special`.
// Anything else in a tokenizer.json is refused at load time with a message naming
// the unsupported component, never silently ignored.
//
// Ids are int32_t. A tok_tokenizer is read-only after loading except for an
// internal word cache, so one tokenizer must not be used by two threads at once.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "base/json.h"

typedef struct tok_tokenizer tok_tokenizer;

// A growable array of ids. Zero-initialize; free with tok_ids_free. As sbuf: a failed
// allocation sets failed and later appends do nothing; tok_encode reports it.
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
    int failed;
} tok_ids;
void tok_ids_push(tok_ids *a, int32_t id);
void tok_ids_append(tok_ids *a, const int32_t *ids, size_t n);
void tok_ids_free(tok_ids *a);

// Qwen2-VL / Qwen2.5-VL images (tok_image.c): the chat template writes one <|image_pad|>
// (pad_id) per image, between <|vision_start|> and <|vision_end|> (for a {"type": "image"}
// content part); each becomes n_tokens[i] pads, image i's embedding count
// grid_t * grid_h * grid_w / merge^2, as transformers' Qwen2_5_VLProcessor expands them.
// ids are appended to out. Errors when the placeholders and the images do not pair up.
int tok_expand_image_pads(const int32_t *ids, size_t n, int32_t pad_id, const int *n_tokens, int n_images, tok_ids *out,
                          tm_error *err);

// Loads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json (bos/eos
// tokens, chat_template). Returns NULL and fills err on failure.
tok_tokenizer *tok_load(const char *dir, tm_error *err);
// Loads from explicit paths; config_path may be NULL.
tok_tokenizer *tok_load_files(const char *tokenizer_json, const char *config_path, tm_error *err);
void tok_free(tok_tokenizer *t);

// Encodes UTF-8 text[0..len) and appends the ids to out. add_special applies the
// tokenizer's post-processor (e.g. Gemma's <bos>); chat-template and dataset code
// pass 0, because templates write their special tokens as text, as transformers'
// apply_chat_template does. Fails on invalid UTF-8.
int tok_encode(tok_tokenizer *t, const char *text, size_t len, int add_special, tok_ids *out,
               tm_error *err);

// Decodes ids to UTF-8 text, appended to out; invalid byte sequences (a byte-level
// token cut inside a character) become U+FFFD as in Hugging Face. skip_special
// drops added tokens marked special. Unknown ids fail.
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, int skip_special, sbuf *out,
               tm_error *err);

// Incremental decoding for streaming generation (Hugging Face's DecodeStream):
// each tok_stream_step returns the text that became final with this id (possibly
// empty), and never emits half of a UTF-8 character. Zero-initialize, then free.
typedef struct tok_stream {
    tok_ids ids;
    size_t prefix, read;   // ids[prefix..read) already produced output
    int skip_special;
    sbuf a, b;             // scratch
} tok_stream;
void tok_stream_init(tok_stream *s, int skip_special);
int tok_stream_step(const tok_tokenizer *t, tok_stream *s, int32_t id, sbuf *out, tm_error *err);
void tok_stream_free(tok_stream *s);

// Vocabulary.
int tok_vocab_size(const tok_tokenizer *t);          // max id + 1 (model + added tokens)
int32_t tok_token_id(const tok_tokenizer *t, const char *token); // -1 when absent
// The ids that end a generation: the tokenizer's EOS, the model's eos_token_id (-1: none)
// and the end-of-turn / end-of-text tokens of the known chat families, those below
// vocab, into out (at most cap, 9 suffice). Returns how many.
int tok_stop_ids(const tok_tokenizer *t, int model_eos, int vocab, int *out, int cap);
// The token's string as written in tokenizer.json (byte-level alphabet for
// byte-level BPE); NULL for an id without a token.
const char *tok_id_to_token(const tok_tokenizer *t, int32_t id);
int tok_is_special(const tok_tokenizer *t, int32_t id);

// From tokenizer_config.json; -1 / NULL when absent.
int32_t tok_bos_id(const tok_tokenizer *t);
int32_t tok_eos_id(const tok_tokenizer *t);
int32_t tok_pad_id(const tok_tokenizer *t);
const char *tok_bos_token(const tok_tokenizer *t);
const char *tok_eos_token(const tok_tokenizer *t);
// The raw Jinja chat_template string (NULL if the config has none).
const char *tok_chat_template_source(const tok_tokenizer *t);

// ---- chat templates (tokenizer/chat.c) ----
// A tokenizer's chat_template (tokenizer_config.json, or chat_template.jinja) is
// rendered by the Jinja interpreter (tokenizer/jinja.h) as apply_chat_template does.
// The families below are also recognized from the template string and rendered by
// hand-written C that gives the same bytes faster (tests/oracle/test_chat.mjs and
// test_jinja.mjs check both against @huggingface/jinja); they are also what
// --chat-template NAME forces.
typedef enum {
    TOK_CHAT_NONE = 0,
    TOK_CHAT_CHATML,     // plain ChatML: <|im_start|>role\ncontent<|im_end|>\n
    TOK_CHAT_QWEN25,     // ChatML with Qwen2.5's default system prompt
    TOK_CHAT_QWEN3,      // ChatML with Qwen3's <think> handling of assistant turns
    TOK_CHAT_LLAMA3,     // Llama-3 headers, generation prompt only when asked
    TOK_CHAT_LLAMA3_BASE,// Llama-3 base template: always ends with the assistant header
    TOK_CHAT_GEMMA,      // Gemma: <start_of_turn>user/model, system folded into the first user turn
    TOK_CHAT_JINJA,      // any other template: the tokenizer's chat_template, interpreted
} tok_chat_family;

// "chatml", "qwen2.5", "qwen3", "llama3", "llama3-base", "gemma", "jinja" → family; -1 if unknown.
int tok_chat_family_from_name(const char *name);
const char *tok_chat_family_name(tok_chat_family f);
// Recognizes a Jinja chat_template string; TOK_CHAT_NONE when it is not one we know.
tok_chat_family tok_chat_detect(const char *jinja_source);

typedef struct tok_chat_msg {
    const char *role;      // "system", "user", "assistant", "tool"
    const char *content;
    size_t content_len;
    const char *reasoning; // optional assistant reasoning_content (Qwen3); NULL if none
    size_t reasoning_len;
} tok_chat_msg;

typedef struct tok_chat {
    tok_chat_family family;
    const char *bos_token;     // for templates that write it (Llama-3, Gemma); "" if none
    int enable_thinking;       // Qwen3: 0 adds "<think>\n\n</think>\n\n" after the generation prompt
    const tok_tokenizer *tok;  // its chat_template and special tokens (TOK_CHAT_JINJA)
    const json *kwargs;        // extra template variables (tok_set_chat_kwargs: enable_thinking,
                               // tools, documents, ...); a JSON object or NULL. Any key but
                               // enable_thinking sends a recognized family to the interpreter.
    int64_t now;               // what strftime_now() formats (0: the current time)
} tok_chat;

// The chat configuration of a tokenizer: its template, recognized as a family or
// interpreted (or the named one when name is non-NULL: a family, or "jinja" for the
// tokenizer's own template through the interpreter), its bos token. Fails when the
// tokenizer has no template or its template does not parse (one line: file and line).
int tok_chat_for(const tok_tokenizer *t, const char *name, tok_chat *out, tm_error *err);

// A rendered conversation cut into segments. Concatenating all segment texts gives
// exactly the Jinja rendering. Each segment knows which message produced it and
// whether it is trainable: the content of an assistant turn and the token that ends
// the turn (<|im_end|>, <|eot_id|>, <end_of_turn>) are trainable; role headers, the
// newline after an end-of-turn token, system/user/tool turns and the generation
// prompt are not.
typedef struct tok_chat_seg {
    size_t off, len;  // into text
    int msg;          // index of the message, -1 for template text outside messages
    int train;        // 1 for assistant content and its end-of-turn token
} tok_chat_seg;

typedef struct tok_chat_render {
    sbuf text;
    tok_chat_seg *segs;
    int nsegs, cap;
    int failed;        // an allocation failed (tok_chat_apply then returns -1)
} tok_chat_render;
void tok_chat_render_free(tok_chat_render *r);

// Renders msgs[0..n) (appending to r, which must be zero-initialized or cleared).
// Out of memory: -1 and "out of memory ..." in err.
int tok_chat_apply(const tok_chat *c, const tok_chat_msg *msgs, int n, int add_generation_prompt,
                   tok_chat_render *r, tm_error *err);

// Renders a JSON list of messages as they come (tool_calls, reasoning_content, any
// field) into out, as apply_chat_template(messages, tokenize=False). Uses the
// interpreter whenever the tokenizer has a template; a named family without one
// takes only role/content/reasoning_content.
int tok_chat_render_json(const tok_chat *c, const json *messages, int add_generation_prompt, sbuf *out,
                         tm_error *err);

// Sets the extra template variables of every later tok_chat_for (--chat-template-kwargs:
// a JSON object such as {"enable_thinking": false} or {"tools": [...]}); the tokenizer
// keeps them. NULL clears them. Fails (-1 + err) when the text is not a JSON object.
int tok_set_chat_kwargs(tok_tokenizer *t, const char *json_text, tm_error *err);
