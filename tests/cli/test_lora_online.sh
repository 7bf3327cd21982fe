#!/usr/bin/env bash
# The online trainers under LoRA (--use-peft). grpo: the rollouts are sampled with the adapters on
# (the first pass's importance ratio is 1 up to the sampler/trainer mismatch, as the full
# fine-tune's), the --beta reference is the base with the adapters off (kl 0 at step 1,
# positive later; no second model), the output is a PEFT adapter directory, and a resumed
# run ends bit-identical (dropout 0: the ratio checks need the sampler's forward). ppo: the same (shared value head on the adapted trunk; objective/kl 0
# at step 1, resume bit-identical, with TRL's adapter dropout 0.05). online-dpo: each round trains the adapter further (round 2
# starts from round 1's adapter directory). A tiny Llama after a short sft, as
# tests/cli/test_grpo.sh (about 30 s on 2 cores).
cd "$(dirname "$0")/../.."
T=${TEMPER:-$PWD/build/temper}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/temper-lora-grpo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fails=$((fails + 1)); fi; }
metric() { $PY -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[int(sys.argv[2])-1])[sys.argv[3]])" "$@"; }

$PY - "$tmp" <<'EOF'
import json, os, sys
sys.path.insert(0, "tests/oracle")
import tiny_tokenizer
tmp = sys.argv[1]
tok = tiny_tokenizer.write(os.path.join(tmp, "tok"))
cfg = json.load(open(os.path.join(tok, "tokenizer_config.json")))
del cfg["chat_template"]
json.dump(cfg, open(os.path.join(tok, "tokenizer_config.json"), "w"))
P = [(a, b) for a in range(5) for b in range(5)]
with open(os.path.join(tmp, "sft.jsonl"), "w") as f:
    for a, b in P: f.write(json.dumps({"prompt": f"{a}+{b}=", "completion": "\\boxed{%d}" % (a + b)}) + "\n")
with open(os.path.join(tmp, "train.jsonl"), "w") as f:
    for a, b in P: f.write(json.dumps({"prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n")
EOF
# init --seed 1 and 24 steps of sft on sft.jsonl (lr 1e-3, batch 25), built once per run
. tests/cli/lib/fixture.sh && fixture_addition_sft "$tmp"
check '[ -f "$tmp/sft/model.safetensors" ]' "sft (full) for the starting policy"

A="--model $tmp/sft --data $tmp/train.jsonl --per-device-train-batch-size 16 --num-generations 8 --max-completion-length 12 \
  --learning-rate 2e-3 --lr-scheduler-type constant --logging-steps 1 --quiet --beta 0.04 --max-steps 4 --save-steps 2 \
  --use-peft --lora-r 8 --lora-alpha 16 --lora-dropout 0 --lora-target-modules all-linear"
"$T" grpo $A --output-dir "$tmp/g" 2>"$tmp/g.err"
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/g/adapter_model.safetensors" ] && [ -f "$tmp/g/adapter_config.json" ] && [ ! -f "$tmp/g/model.safetensors" ]' \
  "grpo --use-peft runs and writes a PEFT adapter directory (rc $rc$([ $rc -ne 0 ] && tail -c 200 "$tmp/g.err"))"
kl1=$(metric "$tmp/g/metrics.jsonl" 1 kl 2>/dev/null); kl4=$(metric "$tmp/g/metrics.jsonl" 4 kl 2>/dev/null)
check "$PY -c 'import sys; sys.exit(not (abs($kl1) < 1e-6 and $kl4 > 1e-6))'" "reference = base with adapters off: kl $kl1 at step 1 (B = 0), $kl4 > 0 at step 4"
rx=$(metric "$tmp/g/metrics.jsonl" 1 sampling/ratio_minus_one/max 2>/dev/null)
check "$PY -c 'import sys; sys.exit(not ($rx < 1e-4))'" "first-pass ratio is 1 within the mismatch (max |rho-1| $rx < 1e-4)"
rx3=$(metric "$tmp/g/metrics.jsonl" 3 sampling/ratio_minus_one/max 2>/dev/null)
check "$PY -c 'import sys; sys.exit(not ($rx3 < 1e-4))'" "after updates, the sampler still applies the adapters: step-3 max |rho-1| $rx3 < 1e-4"
cp -r "$tmp/g" "$tmp/r"; rm -f "$tmp/r/adapter_model.safetensors" "$tmp/r/metrics.jsonl"
"$T" grpo $A --output-dir "$tmp/r" --resume-from-checkpoint "$tmp/r/checkpoint-2" 2>/dev/null
check 'cmp -s "$tmp/g/adapter_model.safetensors" "$tmp/r/adapter_model.safetensors"' "grpo --use-peft resumed from checkpoint-2: adapters bit-identical"

# ---- ppo ----
# (TRL's adapter dropout 0.05 from here on: resume stays bit-identical with it)
L="--use-peft --lora-r 8 --lora-alpha 16 --lora-target-modules all-linear"
P="--model $tmp/sft --data $tmp/train.jsonl --per-device-train-batch-size 25 --response-length 12 --lr-scheduler-type constant \
  --learning-rate 2e-3 --quiet --max-steps 4 --save-steps 2 $L"
"$T" ppo $P --output-dir "$tmp/p" 2>"$tmp/p.err"
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/p/adapter_model.safetensors" ] && [ ! -f "$tmp/p/model.safetensors" ]' \
  "ppo --use-peft runs and writes a PEFT adapter directory (rc $rc$([ $rc -ne 0 ] && tail -c 200 "$tmp/p.err"))"
kl1=$(metric "$tmp/p/metrics.jsonl" 1 objective/kl 2>/dev/null); kl4=$(metric "$tmp/p/metrics.jsonl" 4 objective/kl 2>/dev/null)
check "$PY -c 'import sys; sys.exit(not (abs($kl1) < 1e-6 and abs($kl4) > 1e-7))'" "ppo: reference = base with adapters off: objective/kl $kl1 at step 1, $kl4 at step 4"
cp -r "$tmp/p" "$tmp/pr"; rm -f "$tmp/pr/adapter_model.safetensors" "$tmp/pr/metrics.jsonl"
"$T" ppo $P --output-dir "$tmp/pr" --resume-from-checkpoint "$tmp/pr/checkpoint-2" 2>/dev/null
check 'cmp -s "$tmp/p/adapter_model.safetensors" "$tmp/pr/adapter_model.safetensors"' "ppo --use-peft resumed from checkpoint-2: adapters bit-identical"

# ---- online-dpo ----
O="--data $tmp/train.jsonl --num-generations 4 --max-completion-length 12 --max-steps 2 --per-device-train-batch-size 4 \
   --learning-rate 2e-3 --lr-scheduler-type constant --logging-steps 1 --quiet $L"
"$T" online-dpo --model "$tmp/sft" $O --output-dir "$tmp/o" --rounds 2 2>"$tmp/o.err"
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/o/round-2/model/adapter_model.safetensors" ] && grep -q "round-1/model" "$tmp/o/round-2/round.json"' \
  "online-dpo --use-peft: two rounds, each an adapter directory, round 2 sampled from round 1's (rc $rc$([ $rc -ne 0 ] && tail -c 200 "$tmp/o.err"))"
[ $fails -eq 0 ]
