#!/usr/bin/env bash
# The Vision Matters experiment, in miniature (issue 17): on `temper task visual` (dots, bars,
# clock hands), a tiny random Qwen2.5-VL (`temper init --arch qwen2_5_vl --preset tiny`, a byte
# tokenizer, a processor of at most 16 image tokens) is SFT'd to answer "#### n", then trained
# with GRPO twice from that checkpoint with the same budget (steps, prompts, generations, seed):
# once on the images as they are, once with `--perturb rotate` (the paper's GRPO perturbation),
# the vision tower unfrozen (the paper's GRPO). Held-out accuracy (greedy, other images) with a
# 95% Wilson interval for SFT, GRPO and GRPO + rotate. Not run by make check; a few CPU minutes.
# Usage: bench/vl_grpo_perturb.sh [STEPS] [SFT_STEPS] [N_TEST] [GRPO_LR]  (KEEP=DIR keeps the runs there)
set -e
cd "$(dirname "$0")/.."
T=$(realpath "${TEMPER:-build/temper}")
PY=/usr/bin/python3
STEPS=${1:-40}; SFT=${2:-60}; NTEST=${3:-300}; LR=${4:-5e-5}
if [ -n "$KEEP" ]; then tmp=$KEEP; rm -rf "$tmp"; mkdir -p "$tmp"; else tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
$PY -c "
import json, sys; sys.path.insert(0, 'tests/oracle'); import tiny_tokenizer
tiny_tokenizer.write('$tmp/tok', vision=True)
t = json.load(open('$tmp/tok/tokenizer.json'))
t['added_tokens'].append(dict(t['added_tokens'][-1], id=263, content='<|extra_0|>'))
json.dump(t, open('$tmp/tok/tokenizer.json', 'w'), ensure_ascii=False)"
"$T" init --arch qwen2_5_vl --preset tiny --tokenizer "$tmp/tok" --vocab-size 264 --out "$tmp/m" --seed 5 --quiet
echo '{"min_pixels": 3136, "max_pixels": 12544}' >"$tmp/m/preprocessor_config.json"
"$T" task visual --n 96 --seed 1 --out "$tmp/train" --quiet
"$T" task visual --n "$NTEST" --seed 2 --out "$tmp/test" --quiet
$PY -c "
import json
with open('$tmp/train/sft.jsonl', 'w') as f:
    for l in open('$tmp/train/visual.jsonl'):
        r = json.loads(l); f.write(json.dumps({'images': r['images'], 'prompt': r['prompt'], 'completion': '#### ' + r['answer']}) + '\n')"
t0=$(date +%s)
"$T" sft --model "$tmp/m" --data "$tmp/train/sft.jsonl" --output-dir "$tmp/sft" --max-steps "$SFT" --per-device-train-batch-size 8 \
    --learning-rate 4e-3 --save-steps 0 --seed 1 --quiet >/dev/null 2>&1
cp "$tmp/m/preprocessor_config.json" "$tmp/sft/"
g=(--max-steps "$STEPS" --per-device-train-batch-size 16 --num-generations 8 --max-completion-length 8 --temperature 1
   --learning-rate "$LR" --logging-steps 10 --save-steps 0 --seed 1 --quiet)
"$T" grpo --model "$tmp/sft" --data "$tmp/train/visual.jsonl" --output-dir "$tmp/grpo" "${g[@]}" >/dev/null 2>&1
"$T" grpo --model "$tmp/sft" --data "$tmp/train/visual.jsonl" --output-dir "$tmp/grpo_rot" "${g[@]}" --perturb rotate >/dev/null 2>&1
for r in sft grpo grpo_rot; do
  [ $r = sft ] || cp "$tmp/m/preprocessor_config.json" "$tmp/$r/"
  "$T" eval --model "$tmp/$r" --data "$tmp/test/visual.jsonl" --prompt-style plain --temperature 0 --max-new-tokens 8 \
      --output-dir "$tmp/ev_$r" --quiet >/dev/null
done
t1=$(date +%s)
$PY - "$tmp" "$STEPS" "$SFT" "$NTEST" <<'P'
import json, math, sys
tmp, steps, sft, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def wilson(k, n, z=1.96):
    p = k / n; d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d; h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h
print(f"held-out accuracy on {n} `temper task visual --seed 2` images (greedy), sft {sft} steps, grpo {steps} steps x 16 completions")
for r in ("grpo", "grpo_rot"):
    ms = [json.loads(l) for l in open(f"{tmp}/{r}/metrics.jsonl") if '"reward"' in l]
    print(f"  {r} training (every 10 steps): reward", [round(m["reward"], 3) for m in ms],
          "mean length", [round(m["completions/mean_length"], 1) for m in ms])
for r, name in [("sft", "SFT"), ("grpo", "SFT + GRPO"), ("grpo_rot", "SFT + GRPO --perturb rotate")]:
    rows = [json.loads(l) for l in open(f"{tmp}/ev_{r}/samples.jsonl")]
    k = sum(1 for x in rows if x.get("correct"))
    lo, hi = wilson(k, len(rows))
    print(f"  {name:30s} {k:4d}/{len(rows)} = {100*k/len(rows):5.1f}%  95% Wilson [{100*lo:5.1f}%, {100*hi:5.1f}%]"
          f"  e.g. {[x['completion'] for x in rows[:3]]}")
P
echo "wall $((t1 - t0)) s (OMP_NUM_THREADS=$OMP_NUM_THREADS), $(lscpu | grep 'Model name' | sed 's/  */ /g'), load $(cut -d' ' -f1-3 /proc/loadavg)"
