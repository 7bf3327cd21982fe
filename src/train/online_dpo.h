// train/online_dpo: iterative online DPO / KTO, `temper online-dpo` (the M-DPO / M-KTO
// rounds of "Building Math Agents", papers.md §1.2-1.5). Round K = 1..rounds:
//   1. sample: num_generations trajectories per prompt from the current policy (round 1:
//      --model; round K: round K-1's trained model), with tools when asked (calculator, or
//      python with masked observations: rollout/), graded by the verifier (strict);
//   2. filter (the paper's, python tool only): drop a trajectory without a tool call, one
//      that ends on an observation (the --max-turns limit), and one whose last observation
//      contains "error"; identical trajectories of a prompt count once (every tool);
//   3. pair: per prompt, a random correct and a random incorrect kept trajectory (up to
//      pairs_per_prompt distinct pairs); prompts with only correct or only incorrect (or
//      no) kept samples give none and are counted. --loss kto turns each pair into two
//      labelled examples (chosen: desirable, rejected: undesirable), as M-KTO does;
//   4. train: the offline trainer (train/trainer.h, `temper dpo` / `temper kto`) on the
//      round's rows for epochs_per_round, from the current policy. The reference is the
//      starting --model every round (--ref-update fixed), or the round's starting policy
//      (--ref-update round: reset to the last round's model).
// Rows are pre-tokenized with the exact sampled ids (token-in, token-out) and masks
// (prompt_input_ids, chosen/rejected or completion _input_ids and _mask: tool tokens 0).
//
// Layout of OUT (each file written atomically):
//   OUT/round-K/samples.jsonl  every trajectory: ids, mask, sampler log-probs, text, verdict, kept
//   OUT/round-K/pairs.jsonl    the training rows (DPO pairs or KTO examples)
//   OUT/round-K/data.json      the round's counts (prompts with both / only correct / only
//                              incorrect outcomes, filtered, pairs, accuracy)
//   OUT/round-K/model/         the trainer's output dir: the round's model, metrics.jsonl,
//                              checkpoint-N/ (--save-steps)
//   OUT/round-K/round.json     written last: the round is complete
// Resume (--resume-from-checkpoint true): complete rounds are skipped; a round with its
// pairs continues training from the newest checkpoint in round-K/model (bit-identical to
// an uninterrupted run, as the offline trainer's resume is), or trains from the start of
// the round when it has none; a round without pairs samples again (the sampler's seed is
// a function of --seed and the round, so it draws the same trajectories).
// A round with no pairs trains nothing: its model is the previous policy.
#pragma once
#include <stdint.h>
#include "base/error.h"
#include "rollout/rollout.h"
#include "train/trainer.h"

typedef enum { ONLINE_REF_FIXED = 0, ONLINE_REF_ROUND } online_ref_update;

typedef struct online_args {
    const char *model, *data, *output_dir, *chat_template, *prompt_style, *prompt_suffix, *tools;
    const char *resume_from_checkpoint;  // "true" / "last": continue output_dir
    train_method method;                 // TRAIN_DPO or TRAIN_KTO
    online_ref_update ref_update;
    int rounds;
    double epochs_per_round;
    int num_generations, pairs_per_prompt, max_prompt_length, max_completion_length, max_turns;
    double tool_timeout;
    sample_params sp;                    // the paper samples at temperature 1
    int seed, quiet;
    train_args train;                    // the trainer's settings for every round (lr, β, batch, ...)
} online_args;

// The paper's settings where it has them (1 pair per prompt, temperature 1, β 0.1),
// TRL's trainer defaults otherwise; 2 rounds of 1 epoch, 8 generations.
void online_args_default(online_args *a, train_method method);
int online_args_check(const online_args *a, tm_error *err);
int online_run(const online_args *a, tm_error *err);

// ---- the pieces, exposed for tests ----

typedef struct online_counts {
    long prompts, samples, correct, filtered, duplicates;
    long prompts_both, prompts_all_correct, prompts_all_wrong, prompts_none_kept;
    long pairs;
} online_counts;

// keep[i] = 0 for trajectories the filters drop (tool: the paper's python filters) and for
// repeats of an earlier trajectory of the same prompt (same ids). Trajectory g*n+s is
// sample s of prompt g.
void online_filter(const rollout_traj *tr, int nprompts, int n, rollout_tool tool, uint8_t *keep, online_counts *c);

// Pairs (chosen, rejected) = (correct, incorrect) kept trajectories of one prompt, up to
// per_prompt distinct ones per prompt, chosen at random from seed; only prompts with both
// outcomes give pairs (the others are counted in c). pairs holds 2 * nprompts * per_prompt
// ints; returns the number of pairs, or -1 when out of memory.
// TODO(online_pairs): use the pairing library that is moving from cli/cmd_pairs.c into
// src/task/ once it lands (its answer-class ordering is for offline pairs; the paper
// pairs at random, which this does).
int online_pairs(const int *correct, const uint8_t *keep, int nprompts, int n, int per_prompt, uint64_t seed, int *pairs,
                 online_counts *c);
