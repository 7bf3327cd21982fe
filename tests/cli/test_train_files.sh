#!/usr/bin/env bash
# The offline trainers' files and metrics (issue 12, items 5 and 6):
# - reference log-probs only for the examples the run's steps draw: --max-steps 2 on a
#   2000-example file does 4 reference forwards, not 2000; a run resumed from a
#   checkpoint computes the same ones and ends bit-identical;
# - generation_config.json and pad_token_id in every checkpoint and output directory;
#   the last step always gets a checkpoint, so a finished run can be extended;
# - TRL's mean_token_accuracy, entropy, logits/chosen|rejected, num_tokens over all
#   tokens, and the final train_runtime / train_loss entry; TensorBoard event files.
# A tiny tokenizer-less Llama with pre-tokenized data keeps every run to a second or two.
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
T=$(realpath "$T")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
PY=/usr/bin/python3
cd "$tmp"

"$T" init --preset tiny --out m --seed 3 2>/dev/null
ok "init a tiny model" '[ -f m/model.safetensors ]'
$PY - <<'P'
import json
def w(name, rows):
    with open(name, "w") as f:
        for r in rows: f.write(json.dumps(r) + "\n")
w("dpo2000.jsonl", [{"prompt_input_ids": [1, 2, 3 + i % 500, 7 + i % 13], "chosen_input_ids": [4, 5, 6 + i % 7],
                     "rejected_input_ids": [7, 8 + i % 5]} for i in range(2000)])
w("kto2000.jsonl", [{"prompt_input_ids": [1, 2, 3 + i % 500], "completion_input_ids": [4, 5, 6 + i % 7], "label": i % 3 == 0}
                    for i in range(2000)])
w("dpo16.jsonl", [{"prompt_input_ids": [1, 2, 3 + i, 9], "chosen_input_ids": [4, 5, 6 + i % 7], "rejected_input_ids": [7, 8 + i % 5, 3]}
                  for i in range(16)])
w("sft16.jsonl", [{"prompt_input_ids": [1, 2, 3 + i], "completion_input_ids": [4, 5 + i % 3, 6, 7]} for i in range(16)])
P
get() { $PY -c "import json,sys; rows=[json.loads(l) for l in open('$1')]; print(rows[$2].get('$3'))"; }

# ---- item 5: reference log-probs for the examples the run draws
"$T" dpo --model m --data dpo2000.jsonl --output-dir d2 --max-steps 2 --per-device-train-batch-size 2 --quiet 2>err; rc=$?
ok "dpo --max-steps 2 on 2000 pairs runs (rc $rc)" '[ $rc -eq 0 ]'
ok "dpo: reference log-probs for the 4 examples its 2 steps draw, not 2000" 'grep -q "reference log-probs for 4 of 2000 training examples" err'
ok "dpo: metrics.jsonl logs ref_examples 4" '[ "$(get d2/metrics.jsonl 0 ref_examples)" = 4 ]'
"$T" kto --model m --data kto2000.jsonl --output-dir k2 --max-steps 2 --per-device-train-batch-size 2 --quiet 2>err; rc=$?
ok "kto: reference log-probs for 4 of 2000 (rc $rc)" '[ $rc -eq 0 ] && grep -q "reference log-probs for 4 of 2000 training examples" err'
"$T" dpo --model m --data dpo16.jsonl --output-dir full --num-train-epochs 2 --per-device-train-batch-size 4 --quiet 2>err
ok "a run over whole epochs computes every reference (16 of 16)" 'grep -q "reference log-probs for 16 of 16" err'
ok "--precompute-ref-log-probs, which did nothing, is gone" '! "$T" dpo --help 2>&1 | grep -q precompute-ref-log-probs'
# resumed from a checkpoint, the run marks the same examples (from step 0) and ends bit-identical
args="--data dpo2000.jsonl --max-steps 4 --save-steps 2 --per-device-train-batch-size 2 --logging-steps 1 --learning-rate 1e-3 --quiet"
"$T" dpo --model m --output-dir r4 $args 2>/dev/null
"$T" dpo --model m --output-dir r4b $args --resume-from-checkpoint r4/checkpoint-2 2>err; rc=$?
ok "a --max-steps 4 run resumed from checkpoint-2 computes the same 8 references (rc $rc)" '[ $rc -eq 0 ] && grep -q "reference log-probs for 8 of 2000" err'
ok "... and ends bit-identical to the uninterrupted run" 'cmp -s r4/model.safetensors r4b/model.safetensors'

[ $fail -eq 0 ]
