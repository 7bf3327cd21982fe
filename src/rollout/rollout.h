// rollout: generation of many trajectories at once, with tools.
//
// rollout_run takes prompts (token ids) and makes n trajectories for each. Up to
// `batch` trajectories are in flight at once; each prompt is prefilled once into its
// own KV slot and its n samples attend to it (their own slots hold only what comes
// after the prompt). Every step feeds, in one forward call, the last sampled token of
// each running trajectory, appended tool observations, and chunks of newly admitted
// prompts (chunked prefill), and samples one token for every trajectory whose input
// is all in the cache.
//
// A trajectory keeps the exact ids: those the model sampled (mask 1, with their
// log-probs) and those of tool observations (mask 0), never re-tokenized text.
//
// Tools (the multi-turn format of "Building Math Agents", ToRA):
//   python      the model's turn stops when a ```python block is closed (a line
//               starting with ```) and the turn does not contain "boxed", or at the stop
//               string "```output"; the block runs in the trajectory's sandbox (state
//               kept across turns), and the observation
//                 obs_prefix + "```output\n" + output + "\n```" + obs_suffix
//               is appended (obs_prefix/suffix close the model's turn and open a user
//               turn and the next model turn in the chat template; see
//               rollout_obs_wrapper). A turn that ends without code ends the trajectory.
//               The max_turns-th call's output gets "\nReach max function call limit."
//               and ends the trajectory (the paper's horizon; it is still scored).
//               A timeout's observation is "Timeout Error" (the sandbox restarts: state lost).
//   calculator  GSM8K annotations: when the text ends with "=" inside an unclosed "<<",
//               the calculator evaluates what follows "<<" and "value>>" is appended
//               (OpenAI's grade-school-math sampling); a failed evaluation appends nothing.
//
// max_new_tokens bounds the tokens after the prompt (model and tool tokens together),
// which is also each sample's KV slot size.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "model/kv_cache.h"
#include "rollout/sampling.h"
#include "tokenizer/tokenizer.h"
#include "tools/python.h"

typedef enum { ROLLOUT_TOOL_NONE = 0, ROLLOUT_TOOL_CALC, ROLLOUT_TOOL_PYTHON } rollout_tool;
int rollout_tool_from_name(const char *s);  // "none" | "calculator" | "python"; -1 if unknown

typedef enum {
    FINISH_NONE = 0,
    FINISH_STOP,         // a stop token (EOS, end of turn)
    FINISH_STOP_STRING,  // a stop string appeared in the text
    FINISH_LENGTH,       // max_new_tokens reached
    FINISH_MAX_TURNS,    // the tool-call limit
} rollout_finish;
const char *rollout_finish_name(rollout_finish f);

typedef struct rollout_call {
    int start, len;     // the observation's token span in ids
    char *code;         // the code (python) or expression (calculator)
    char *output;       // the text the model sees (without the wrapper)
    int status;         // pysb_status for python; 0 ok / 1 error for the calculator
} rollout_call;

typedef struct rollout_traj {
    int group, sample;
    int *ids;           // tokens after the prompt
    float *logp;        // log softmax(z / T) of each model token at the sampling temperature
                        // (1 when greedy; see sample_token); 0 for tool tokens
    uint8_t *mask;      // 1: the model sampled it; 0: tool observation
    int len, cap;
    rollout_call *calls;
    int ncalls;
    rollout_finish finish;
} rollout_traj;
void rollout_traj_free(rollout_traj *t);

// What computes logits. The model backend (rollout_backend_model) runs model_decode on
// a kv_cache; tests plug in scripted models. logit_tag[r] names who logits row r is
// for: the trajectory group*n + sample, or -(group + 1) for a prompt's last token.
typedef struct rollout_backend {
    void *ctx;
    int vocab;
    int (*reserve)(void *ctx, int nslots, const int *caps, int max_rows, int max_logit_rows, tm_error *err);
    int (*forward)(void *ctx, const kv_batch *b, const int *logit_tag, float *logits, tm_error *err);
    void (*release)(void *ctx);
    // The log-prob of token tok at temperature T from a row of logits, as the trainer's
    // forward computes it (bit for bit where the backend can); NULL: sample_logprob.
    float (*logprob)(void *ctx, const float *z, int tok, double T);
    // Makes forward return the logits of the final hidden state times s (1: plain); NULL:
    // not supported (the engine then samples the plain logits at the temperature).
    void (*set_logit_scale)(void *ctx, float s);
    // The vision prefill of a prompt with images (kv_prompt_vision); NULL: images refused.
    int (*prompt_vision)(void *ctx, const int *tokens, int n, const kv_images *im, kv_vision *out, tm_error *err);
    // Ids never sampled (a vision model's image and video pads: the trainer's forward counts
    // them against the images); their log-probs still count in the others' (the full softmax).
    const int *ban_ids;
    int nban_ids;
} rollout_backend;

typedef struct rollout_model_ctx {
    model *m;
    kv_cache cache;
    int ban[2];
    int frozen;  // the weights are declared frozen to the kernels (k_gemm_weights_frozen)
} rollout_model_ctx;
// Fills be to decode with m (weights shared, not copied); ctx must outlive the run.
void rollout_backend_model(rollout_backend *be, rollout_model_ctx *ctx, model *m);

typedef struct rollout_opts {
    int n;                   // samples per prompt
    int batch;               // trajectories in flight (KV slots)
    int max_new_tokens;
    int prefill_chunk;       // prompt / observation tokens fed per step at most (besides decoding rows)
    sample_params sp;
    uint64_t seed;
    int group_base;          // the first prompt's index in the whole run: seeds follow it, so a
                             // shard of the prompts (one rank's, dist.h) samples what the whole run would
    const int *stop_ids;
    int nstop_ids;
    const char *const *stop_strs;
    int nstop_strs;
    rollout_tool tool;
    int max_turns;           // tool calls per trajectory (python)
    const char *obs_prefix;  // python observation wrapper (NULL: "\n" and "\n")
    const char *obs_suffix;
    pysb_opts py;
    // Qwen2.5-VL: images[g] are prompt g's images (n_images 0: none; NULL: no prompt has any).
    // Their pads' rows take the vision tower's output and every row of such a prompt its
    // M-RoPE angles; what follows the prompt sits at position id + the prompt's rope_delta.
    const kv_images *images;
    // Called when the n trajectories of a group are finished (in completion order).
    void (*on_group)(void *ud, int group, rollout_traj *trajs);
    void *ud;
} rollout_opts;
void rollout_opts_default(rollout_opts *o);

// Generates n trajectories for each prompt into out[g * n + s] (zero-initialized by
// the caller, nprompts * n of them; free each with rollout_traj_free). t may be NULL
// when there are no tools and no stop strings (ids only).
int rollout_run(const rollout_backend *be, tok_tokenizer *t, const int *const *prompts, const int *plen,
                int nprompts, const rollout_opts *o, rollout_traj *out, tm_error *err);

// The text around a tool observation in a chat template: what closes the model's turn
// and opens a user turn (prefix), and what closes it and opens the next model turn
// (suffix), derived by rendering a conversation. malloc'd strings.
int rollout_obs_wrapper(const tok_chat *c, char **prefix, char **suffix, tm_error *err);
