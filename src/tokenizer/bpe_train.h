// tokenizer/bpe_train: trains a small byte-level BPE tokenizer on text and writes it as
// a Hugging Face directory (tokenizer.json + tokenizer_config.json) that the Rust
// `tokenizers` library and tok_load both read, and that encode every text to the same
// ids (tests/oracle/test_bpe_train.mjs checks this).
//
// The tokenizer it writes:
//   - pre-tokenizer: Qwen2's Split regex (each digit its own piece, so numbers are read
//     digit by digit) then ByteLevel without its own regex; decoder ByteLevel; no
//     normalizer and no post-processor;
//   - model BPE: ids 0..255 are the bytes (id b is byte b, written in GPT-2's byte-to-
//     unicode alphabet), then one id per learned merge, in merge order; then the
//     special tokens (added_tokens, special: true), by default <|endoftext|> (pad),
//     <|im_start|> and <|im_end|> (EOS, the end of a ChatML turn);
//   - tokenizer_config.json: a ChatML chat_template (no default system prompt; what
//     temper recognizes as the "chatml" family), eos_token <|im_end|>, pad_token
//     <|endoftext|>, no bos token.
//
// Training is Sennrich et al.'s algorithm as Hugging Face's BpeTrainer runs it: the text
// is pre-tokenized, identical pieces are counted once with their frequency, and each
// step merges the most frequent adjacent pair (ties: the pair of smaller ids first),
// updating the counts of only the pieces that hold it (a pair → pieces index and a
// max-heap with lazy deletion), so a step costs what it changes, not a rescan.
#pragma once
#include <stddef.h>
#include "base/error.h"

typedef struct tok_bpe_trainer tok_bpe_trainer;

tok_bpe_trainer *tok_bpe_trainer_new(tm_error *err);
void tok_bpe_trainer_free(tok_bpe_trainer *tr);

// Counts the pre-tokenized pieces of UTF-8 text[0..len) (invalid UTF-8 is an error).
int tok_bpe_trainer_add(tok_bpe_trainer *tr, const char *text, size_t len, tm_error *err);
// Adds the text fields of every row of a JSONL file: the strings under "prompt",
// "completion", "chosen", "rejected", "question", "answer", "solution", "problem",
// "text", "initial_reason_steps", and the "content" of message lists under them or
// under "messages". Errors are "path:line: reason".
int tok_bpe_trainer_add_jsonl(tok_bpe_trainer *tr, const char *path, tm_error *err);

typedef struct tok_bpe_train_opts {
    int vocab_size;              // all ids: 256 bytes + merges + special tokens (at least 256 + nspecial)
    int min_frequency;           // a pair seen fewer times is never merged (>= 1; default 2)
    const char *const *special;  // NULL: <|endoftext|>, <|im_start|>, <|im_end|>
    int nspecial;
} tok_bpe_train_opts;
void tok_bpe_train_opts_default(tok_bpe_train_opts *o);

// Learns merges until vocab_size (or until no pair is frequent enough) and writes
// dir/tokenizer.json and dir/tokenizer_config.json (dir is created). *vocab_out (may be
// NULL) gets the final vocabulary size.
int tok_bpe_train_save(tok_bpe_trainer *tr, const tok_bpe_train_opts *o, const char *dir, int *vocab_out,
                       tm_error *err);
