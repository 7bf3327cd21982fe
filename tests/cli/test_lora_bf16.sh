#!/usr/bin/env bash
# A bf16 base under LoRA is read in place (model_load_frozen): sft and dpo --use-peft on a
# tiny bf16 Llama run through the trainers' paths that read the lm-head (SFT's token
# accuracy / entropy, DPO's logit means) and the bf16 kernels, write a PEFT adapter, and
# `temper merge` still folds it into the bf16 base. The numerics are proven in
# tests/unit/test_lora_bf16.c; this checks the wiring (a few seconds).
cd "$(dirname "$0")/../.."
T=${TEMPER:-$PWD/build/temper}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/temper-lora-bf16.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fails=$((fails + 1)); fi; }

$PY - "$tmp" <<'PYEOF'
import json, os, sys
sys.path.insert(0, "tests/oracle")
import tiny_tokenizer
tmp = sys.argv[1]
tiny_tokenizer.write(os.path.join(tmp, "tok"))
with open(os.path.join(tmp, "sft.jsonl"), "w") as f:
    for a in range(6): f.write(json.dumps({"prompt": f"{a}+{a}=", "completion": str(2 * a)}) + "\n")
with open(os.path.join(tmp, "pairs.jsonl"), "w") as f:
    for a in range(6): f.write(json.dumps({"prompt": f"{a}+{a}=", "chosen": str(2 * a), "rejected": str(2 * a + 1)}) + "\n")
PYEOF
"$T" init --arch llama --preset tiny --dtype bfloat16 --tokenizer "$tmp/tok" --out "$tmp/base" --seed 3 --quiet
L="--use-peft --lora-r 8 --lora-alpha 16 --lora-dropout 0 --lora-target-modules all-linear --max-steps 2 --logging-steps 1 --quiet"
"$T" sft --model "$tmp/base" --data "$tmp/sft.jsonl" --output-dir "$tmp/sft" --per-device-train-batch-size 3 $L 2>"$tmp/sft.err"
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/sft/adapter_model.safetensors" ]' "sft --use-peft on a bf16 base read in place (rc $rc$([ $rc -ne 0 ] && tail -c 200 "$tmp/sft.err"))"
check 'grep -q mean_token_accuracy "$tmp/sft/metrics.jsonl"' "sft: token metrics from the bf16 lm-head"
"$T" dpo --model "$tmp/base" --data "$tmp/pairs.jsonl" --output-dir "$tmp/dpo" --per-device-train-batch-size 2 $L 2>"$tmp/dpo.err"
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/dpo/adapter_model.safetensors" ] && [ ! -f "$tmp/dpo/model.safetensors" ]' "dpo --use-peft on a bf16 base read in place (rc $rc$([ $rc -ne 0 ] && tail -c 200 "$tmp/dpo.err"))"
check '$PY -c "import json,sys,math; r=[json.loads(l) for l in open(sys.argv[1])]; l=[x[\"loss\"] for x in r if \"loss\" in x]; sys.exit(0 if l and all(math.isfinite(v) for v in l) and abs(l[0]-math.log(2))<1e-3 else 1)" "$tmp/dpo/metrics.jsonl"' \
  "dpo: finite losses, log 2 at step 1 (the reference is the base read in place, adapters off)"
"$T" merge --model "$tmp/base" --adapter "$tmp/dpo" --out "$tmp/merged" --quiet 2>"$tmp/merge.err"
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/merged/model.safetensors" ]' "merge of the adapter into the bf16 base (rc $rc)"
[ $fails -eq 0 ]
