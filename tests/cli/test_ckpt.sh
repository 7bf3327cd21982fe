#!/usr/bin/env bash
# --gradient-checkpointing in every trainer: each run with it writes the same bytes as the
# same run without it (the backward recomputes each layer with the same kernels on the same
# inputs: tests/unit/test_ckpt.c proves the gradients equal bit for bit), full and under
# LoRA (sft, dpo, kto, reward-model, grpo, ppo; online-dpo trains with the dpo trainer).
# --profile (the kernel table wrapped in timers) changes no byte either and prints shares
# that add up. A tiny Llama, 2 steps each (about 20 s on 2 cores).
cd "$(dirname "$0")/../.."
T=${TEMPER:-$PWD/build/temper}
T=$(realpath "$T")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/temper-ckpt.XXXXXX)
trap "rm -rf $tmp" EXIT
fails=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fails=$((fails + 1)); fi; }

$PY - "$tmp" <<'EOF'
import json, os, sys
sys.path.insert(0, "tests/oracle")
import tiny_tokenizer
tmp = sys.argv[1]
tok = tiny_tokenizer.write(os.path.join(tmp, "tok"))
cfg = json.load(open(os.path.join(tok, "tokenizer_config.json")))
del cfg["chat_template"]
json.dump(cfg, open(os.path.join(tok, "tokenizer_config.json"), "w"))
def w(name, rows):
    with open(os.path.join(tmp, name), "w") as f:
        for r in rows: f.write(json.dumps(r) + "\n")
w("sft.jsonl", [{"prompt_input_ids": [1, 2, 3 + i], "completion_input_ids": [4, 5, 6 + i]} for i in range(4)])
w("dpo.jsonl", [{"prompt_input_ids": [1, 2, 3 + i], "chosen_input_ids": [4, 5, 6], "rejected_input_ids": [7, 8 + i]} for i in range(4)])
w("kto.jsonl", [{"prompt_input_ids": [1, 2, 3 + i], "completion_input_ids": [4, 5 + i], "label": i % 2 == 0} for i in range(4)])
w("train.jsonl", [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(3) for b in range(3)])
EOF
"$T" init --arch llama --preset tiny --tokenizer "$tmp/tok" --out "$tmp/m" --seed 1 >/dev/null 2>&1
check '[ -f "$tmp/m/model.safetensors" ]' "init a tiny Llama"

L="--use-peft --lora-r 4 --lora-alpha 8 --lora-target-modules all-linear --lora-dropout 0.1"
Q="--max-steps 2 --per-device-train-batch-size 2 --learning-rate 1e-3 --quiet"
G="--data $tmp/train.jsonl --max-steps 2 --per-device-train-batch-size 8 --learning-rate 1e-3 --quiet"
same() {  # name, output file, then the trainer's command line (without --output-dir)
    local name=$1 file=$2; shift 2
    "$T" "$@" --output-dir "$tmp/$name.a" >/dev/null 2>"$tmp/$name.a.err"; local ra=$?
    "$T" "$@" --gradient-checkpointing --output-dir "$tmp/$name.b" >/dev/null 2>"$tmp/$name.b.err"; local rb=$?
    check '[ $ra -eq 0 ] && [ $rb -eq 0 ] && [ -f "$tmp/$name.a/$file" ] && cmp -s "$tmp/$name.a/$file" "$tmp/$name.b/$file"' \
        "$name: --gradient-checkpointing writes the same $file bit for bit (rc $ra $rb$([ $rb -ne 0 ] && tail -c 200 "$tmp/$name.b.err"))"
}
same sft model.safetensors sft --model "$tmp/m" --data "$tmp/sft.jsonl" $Q
same sft-lora adapter_model.safetensors sft --model "$tmp/m" --data "$tmp/sft.jsonl" $Q $L
same dpo-lora adapter_model.safetensors dpo --model "$tmp/m" --data "$tmp/dpo.jsonl" $Q $L
same kto model.safetensors kto --model "$tmp/m" --data "$tmp/kto.jsonl" $Q
same reward-model model.safetensors reward-model --model "$tmp/m" --data "$tmp/dpo.jsonl" $Q
same grpo-lora adapter_model.safetensors grpo --model "$tmp/m" $G --num-generations 4 --max-completion-length 6 --beta 0.04 $L
same ppo model.safetensors ppo --model "$tmp/m" $G --response-length 6
# online-dpo trains each round with the dpo trainer above; an untrained policy finds no pairs
# here, so this only checks that the flag is taken and passed on
"$T" online-dpo --model "$tmp/m" --data "$tmp/train.jsonl" --rounds 1 --num-generations 4 --max-completion-length 6 \
    --max-steps 1 --per-device-train-batch-size 2 --quiet --gradient-checkpointing $L --output-dir "$tmp/o" >/dev/null 2>&1
check '[ $? -eq 0 ]' "online-dpo takes --gradient-checkpointing"
# --profile: the same bytes again, and a share per kernel class that adds up to 100%
"$T" dpo --model "$tmp/m" --data "$tmp/dpo.jsonl" $Q $L --profile --output-dir "$tmp/prof" >/dev/null 2>"$tmp/prof.err"
check 'cmp -s "$tmp/dpo-lora.a/adapter_model.safetensors" "$tmp/prof/adapter_model.safetensors"' "dpo --profile writes the same adapter bit for bit"
sum=$($PY -c "
import re, sys
rows = [l for l in open(sys.argv[1]) if re.match(r'  (GEMM|attention|norms|lm-head|vision|other kernels|optimizer|rest) +[0-9.]+%', l)]
print(len(rows), round(sum(float(re.search(r'([0-9.]+)%', l).group(1)) for l in rows)))" "$tmp/prof.err")
check '[ "$sum" = "8 100" ]' "dpo --profile prints 8 shares (kernel classes, optimizer, rest) that add up to 100% (got: $sum)"
"$T" dpo --help 2>&1 | grep -q -- "--gradient-checkpointing"
check '[ $? -eq 0 ]' "dpo --help lists --gradient-checkpointing"
[ $fails -eq 0 ]
