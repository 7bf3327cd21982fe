// data: JSONL datasets (TRL's field names and the seed papers' formats) → token ids
// and loss masks, ready for the trainer.
//
// Formats (one JSON object per line):
//   sft        {"prompt", "completion"} (strings or message lists) or {"messages"}
//   dpo        {"prompt", "chosen", "rejected"}: strings or message lists; without
//              "prompt", chosen/rejected are whole conversations and the prompt is
//              their common leading messages (TRL's implicit prompt)
//   kto        {"prompt", "completion", "label": true|false}
//   step       {"prompt", "initial_reason_steps", "chosen", "rejected"} (Step-DPO)
//   trajectory {"messages"} with assistant turns holding code and "tool" (or user
//              ```output```) turns holding interpreter output; optional "label"
//   prompts    {"prompt", "answer"}, GSM8K {"question", "answer": "... #### n"},
//              MATH-500 {"problem", "solution", "answer"}: read by task/problems.h, the
//              loader `temper sample|eval` use (the same prompt text, ids and gold)
// Pre-tokenized rows with TRL's column names are accepted by sft, kto, dpo and step:
//   {"prompt_input_ids", "completion_input_ids"[, "label"]} or
//   {"prompt_input_ids", "chosen_input_ids", "rejected_input_ids"}
// taken as they are (no tokenizer needed, no EOS added), the completion ids trained
// (all of them, or those whose optional "completion_mask" / "chosen_mask" /
// "rejected_mask" entry is 1: tool observations are 0).
//
// THE BOUNDARY RULE. Text is tokenized in pieces and the pieces' ids are
// concatenated; a BPE merge never crosses a piece boundary:
//   1. the prompt is one piece: prompt ids = encode(prompt text), exactly what a
//      sampler feeds the model, so prompt ids are a prefix of every sequence built
//      from that prompt by construction (for DPO, chosen and rejected share them);
//   2. after the prompt, consecutive text with the same mask is one piece, so the
//      ids change pieces only where the mask changes (at a turn boundary).
// This is "token-in, token-out": the trained ids are those the model would have to
// generate after the prompt ids. encode(whole text) can differ at a boundary (e.g.
// a completion starting with "\n" after a prompt ending in "\n"); data_example.
// boundary_diff counts such sequences and `temper data inspect` reports them.
//
// String rows follow the prompt rule (task/prompt.h): with a chat template in use, a
// string prompt is a user message and a string completion the assistant's reply, so
// an sft prompt has the ids `temper sample|eval|grpo` feed for the same question; with
// no template (none in the tokenizer, or --no-chat-template) they are plain text.
//
// Masks (mask[i] = 1: token i is trained, its log-prob enters the loss):
//   - the prompt is never trained;
//   - plain string completions: all their tokens, plus EOS appended (TRL's rule for
//     non-conversational data) unless opts.append_eos is 0; Step-DPO steps: no EOS;
//   - conversations: the content of every assistant turn after the prompt and the
//     token that closes the turn (<|im_end|>, <|eot_id|>, <end_of_turn>); headers,
//     the newline after a turn, system/user/tool turns are not trained.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "base/json.h"
#include "tokenizer/tokenizer.h"
#include "image/qwen2vl_processor.h"

typedef enum { DATA_SFT, DATA_DPO, DATA_KTO, DATA_STEP, DATA_TRAJECTORY, DATA_PROMPTS } data_format;
int data_format_from_name(const char *name);  // -1 if unknown
const char *data_format_name(data_format f);

typedef struct data_seq {
    int32_t *ids;
    uint8_t *mask;
    int len;
} data_seq;

typedef struct data_example {
    long line;            // 1-based line in the file
    int file;             // which file of the --data list it came from (0-based)
    int prompt_len;       // seq[k].ids[0..prompt_len) is the prompt, the same in every seq
    int nseq;             // 1 (sft, kto, trajectory, prompts) or 2 (dpo, step: 0 chosen, 1 rejected)
    data_seq seq[2];
    int label;            // kto / labelled trajectory: 1 desirable, 0 undesirable; -1 none
    char *answer;         // prompts: the gold answer (task_row_answer); NULL when none or other formats
    int truncated;        // some seq was cut to max_length
    int boundary_diff;    // seqs whose whole-text encoding differs (see the boundary rule)
    // images (data_image.c): the row's images, run once through the Qwen2-VL processor for
    // their grids; every seq holds their expanded image-pad tokens in its prompt, in this order.
    // The pixels are not kept (a data set of large images would not fit in memory):
    // data_example_pixels makes them again when a batch needs them.
    int n_images, n_patches, patch_dim;
    int *grid_thw;        // [n_images, 3]
    char **image_paths;   // [n_images] as read (relative ones joined to the JSONL's folder)
} data_example;

enum { DATA_BAD_ERROR = 0, DATA_BAD_SKIP = 1 };

typedef struct data_opts {
    data_format format;
    const tok_chat *chat;       // the chat template in use (NULL: none, string rows are plain text)
    int wrap_plain;             // with chat: put string prompts in a user message (and string completions
                                // in an assistant message), THE PROMPT RULE of task/prompt.h, so sft
                                // trains on the prompt ids sample/eval/grpo feed (default 1; TRL's
                                // SFTTrainer renders string rows as plain text: 0)
    int append_eos;             // EOS after string completions (TRL: yes); default 1 via data_opts_default
    int max_length;             // > 0: sequences longer are cut from the right and counted
    int on_bad_line;            // DATA_BAD_ERROR or DATA_BAD_SKIP
    const char *prompt_suffix;  // appended to prompts of the prompts format (e.g. "\nPlease reason step by step...")
    const char *prompt_style;   // prompts format: a task/prompt.h style name (boxed, minerva, ...); NULL: plain
    int check_boundary;         // compute boundary_diff (one extra encode per sequence)
    const char *data_weights;   // NULL, or one weight per --data file (comma-separated): see data_load
    uint64_t mix_seed;          // the seed of the weighted subsets (default 42)
    // Rows with images (TRL's "images" list or "image" string; paths relative to the JSONL
    // file's folder): NULL refuses them; else each image goes through this processor and its
    // prompt gets one <|vision_start|><|image_pad|><|vision_end|> per image, first in the user
    // turn (what TRL's vision collators and Qwen2-VL's chat template give for a string prompt
    // with {"type": "image"} parts before the text), each pad expanded to the image's
    // grid_t*grid_h*grid_w/merge^2 tokens. image_pad_id: the model's image_token_id, which the
    // tokenizer's <|image_pad|> must equal. image_dir: set by data_load per file.
    const img_qwen2vl_config *image_cfg;
    int image_pad_id;
    const char *image_dir;
} data_opts;
void data_opts_default(data_opts *o);

// Builds one example from a parsed JSONL row. Returns 0, or -1 with a reason in err
// (without file:line; data_load adds them).
int data_example_from_json(tok_tokenizer *t, const json *row, const data_opts *o, data_example *ex,
                           tm_error *err);
void data_example_free(data_example *ex);
// Image k of ex through the processor (the same c as data_load's): pixel values and grid
// into p (img_patches_free). Errors when the file no longer gives the grid it gave.
int data_example_pixels(const data_example *ex, const img_qwen2vl_config *c, int k, img_patches *p, tm_error *err);

typedef struct data_set {
    data_example *ex;
    int n, cap;
    long lines;       // non-empty lines read
    long skipped;     // bad lines skipped (--on-bad-line skip)
    long truncated;   // examples with a sequence cut to max_length
    char first_skip[1024];  // the first skipped line's message
} data_set;

// Parses one JSONL line, which must hold one JSON object; the message says so for a
// pretty-printed file or an array (without file:line; the caller adds them).
json_doc *data_parse_line(const char *line, size_t len, tm_error *err);

// Reads whole JSONL files: path is one file or a comma-separated list (`--data a,b` or
// `--data a --data b`), whose examples are concatenated in order, each remembering its file
// (data_example.file) and line. Errors are "path:line: reason". With DATA_BAD_SKIP a bad line
// is counted in skipped and reading goes on. With o->data_weights (one per file), a file of n
// examples gives floor(w * n) of them, as TRL / open-r1's dataset mixtures do: a seeded random
// subset (o->mix_seed) for w < 1, whole copies then a subset for w > 1.
int data_load(tok_tokenizer *t, const char *path, const data_opts *o, data_set *out, tm_error *err);
// Item k (0-based) of a comma-separated list, copied into out; -1 if absent or too long.
int data_list_item(const char *list, int k, char *out, size_t cap);
int data_list_count(const char *list);
void data_set_free(data_set *s);
