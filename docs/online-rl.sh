#!/usr/bin/env bash
# The online-RL comparison of issue 13 on the learnable toy task of tests/cli/test_grpo.sh:
# GRPO, PPO (shared value head), online DPO (2 rounds) and online KTO (2 rounds) from the same
# SFT model, with the same number of sampled completions (BUDGET) and the same seeds; pass@1
# (with a 95% Wilson interval over prompts x samples) and pass@8 on a held-out split of the
# prompts that no RL method trains on, and on the training split. Prints a markdown table and
# each run's command line, wall time and load average. See docs/online-rl.md.
#   docs/online-rl.sh [budget] [seeds...]      (default: 1280 completions, seeds 1 2)
# RUNS="online-dpo online-kto" EPOCHS=4 docs/online-rl.sh ...: only those methods, online DPO/KTO
# with 4 epochs per round (the same samples, 4x the optimizer steps); DPO_EXTRA="--rpo-alpha 1":
# extra flags for online DPO (the paper's M-DPO + NLL).
cd "$(dirname "$0")/.."
T=${TEMPER:-$PWD/build/temper}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=/usr/bin/python3
BUDGET=${1:-1280}; shift
SEEDS=${*:-1 2}
RUNS=${RUNS:-grpo ppo online-dpo online-kto}; EPOCHS=${EPOCHS:-1}; DPO_EXTRA=${DPO_EXTRA:-}
N_HELD=${N_HELD:-64}; N_TRAIN=${N_TRAIN:-16}   # eval samples per prompt
tmp=${KEEP_DIR:-$(mktemp -d /tmp/temper-online-rl.XXXXXX)}
[ -n "$KEEP_DIR" ] || trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
$PY - "$tmp" <<'PYEOF'
import json, os, sys
sys.path.insert(0, "tests/oracle")
import tiny_tokenizer
tmp = sys.argv[1]
tok = tiny_tokenizer.write(os.path.join(tmp, "tok"))
cfg = json.load(open(os.path.join(tok, "tokenizer_config.json")))
del cfg["chat_template"]
json.dump(cfg, open(os.path.join(tok, "tokenizer_config.json"), "w"))
every = [(a, b) for a in range(5) for b in range(5)]
# held out: one prompt per value of a and of b (a Latin-square diagonal), 5 of the 25
held = [(a, (2 * a + 3) % 5) for a in range(5)]
train = [p for p in every if p not in held]
def rows(name, P, key):
    with open(os.path.join(tmp, name), "w") as f:
        for a, b in P: f.write(json.dumps(key(a, b)) + "\n")
# SFT sees all 25 sums (it teaches the format and leaves each sum partly learned); RL trains
# on the 20 others only. Every file has the same prompt text "a+b=\n": `temper eval
# --prompt-style plain` adds nothing to it (since 6caa89e), so eval samples from the prompts trained on.
rows("sft.jsonl", every, lambda a, b: {"prompt": f"{a}+{b}=\n", "completion": "\\boxed{%d}" % (a + b)})
rows("train.jsonl", train, lambda a, b: {"prompt": f"{a}+{b}=\n", "answer": str(a + b)})
rows("eval-train.jsonl", train, lambda a, b: {"prompt": f"{a}+{b}=\n", "answer": str(a + b)})
rows("eval-held.jsonl", held, lambda a, b: {"prompt": f"{a}+{b}=\n", "answer": str(a + b)})
print("held-out prompts:", " ".join(f"{a}+{b}=" for a, b in held), file=sys.stderr)
PYEOF
"$T" init --arch llama --preset tiny --tokenizer "$tmp/tok" --out "$tmp/base" --seed 1 >/dev/null 2>&1
"$T" sft --model "$tmp/base" --data "$tmp/sft.jsonl" --output-dir "$tmp/sft" --max-steps 24 --learning-rate 1e-3 \
  --lr-scheduler-type constant --per-device-train-batch-size 25 --logging-steps 100 --quiet >/dev/null 2>&1 || exit 1

# "pass@1 lo hi pass@8" of a model on an eval file: unbiased pass@k from n samples at temperature 1,
# the Wilson 95% interval of pass@1 over the prompts x samples (the samples of one prompt are
# correlated, so the interval is optimistic)
evalf() {  # model, file, n
  rm -rf "$tmp/ev"
  "$T" eval --model "$1" --data "$tmp/$2.jsonl" --n "$3" --temperature 1 --prompt-style plain --max-new-tokens 12 --seed 3 \
    --output-dir "$tmp/ev" --quiet >/dev/null 2>&1 || { echo "- - - -"; return; }
  $PY - "$tmp/ev/summary.json" "$tmp/ev/samples.jsonl" <<'PYEOF'
import json, math, sys
s = json.load(open(sys.argv[1]))
rows = [json.loads(l) for l in open(sys.argv[2])]
c = sum(1 for r in rows if r.get("correct"))
n = len(rows)
p, z = c / n, 1.96
mid, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
print("%.3f %.3f %.3f %.3f" % (s["pass@1"], max(0.0, mid - half), min(1.0, mid + half), s["pass@8"]))
PYEOF
}
# held-out prompts answered right at temperature 0 (of 5): what sharpening alone would give
greedy() {
  rm -rf "$tmp/ev"
  "$T" eval --model "$1" --data "$tmp/eval-held.jsonl" --n 1 --temperature 0 --prompt-style plain --max-new-tokens 12 \
    --output-dir "$tmp/ev" --quiet >/dev/null 2>&1 || { echo -; return; }
  $PY -c "import json,sys; print(round(json.load(open(sys.argv[1]))['pass@1'] * 5))" "$tmp/ev/summary.json"
}
row() {  # name, seed, model, wall, load
  read -r h1 hl hh h8 <<<"$(evalf "$3" eval-held "$N_HELD")"
  read -r t1 tl th t8 <<<"$(evalf "$3" eval-train "$N_TRAIN")"
  echo "| $1 | $2 | $h1 [$hl, $hh] | $h8 | $(greedy "$3")/5 | $t1 | $t8 | $4 | $5 |"
}

# the budget: BUDGET sampled completions per method (12 new tokens each, temperature 1)
NG=8                                  # GRPO group size
GSTEPS=$((BUDGET / 40))               # GRPO: 5 prompts x 8 generations per step
PSTEPS=$((BUDGET / 40))               # PPO: 40 completions (one per prompt draw) per rollout batch
OGEN=$((BUDGET / 2 / 20))             # online DPO/KTO: 2 rounds x 20 prompts x OGEN generations
COMMON="--max-completion-length 12 --lr-scheduler-type constant --learning-rate 1e-4 --save-steps 0 --quiet"
echo "budget $BUDGET completions: grpo $GSTEPS steps x 40; ppo $PSTEPS steps x 40; online dpo/kto 2 rounds x 20 prompts x $OGEN" >&2
echo "| run | seed | held-out pass@1 [95%] | held-out pass@8 | held-out greedy | train pass@1 | train pass@8 | wall s | load (1 min) |"
echo "|---|---|---|---|---|---|---|---|---|"
row "sft (start)" - "$tmp/sft" - "$(cut -d' ' -f1 /proc/loadavg)"
for seed in $SEEDS; do
  for run in $RUNS; do
    out="$tmp/$run-$seed"
    rm -rf "$out"
    case $run in
      grpo) cmd="$T grpo --model $tmp/sft --data $tmp/train.jsonl --per-device-train-batch-size 40 --num-generations $NG \
                 --max-steps $GSTEPS --logging-steps 10 $COMMON --seed $seed --output-dir $out" ;;
      ppo) cmd="$T ppo --model $tmp/sft --data $tmp/train.jsonl --per-device-train-batch-size 40 --response-length 12 \
                 --max-steps $PSTEPS --lr-scheduler-type constant --learning-rate 1e-4 --save-steps 0 --quiet --seed $seed --output-dir $out" ;;
      online-dpo) cmd="$T online-dpo --model $tmp/sft --data $tmp/train.jsonl --rounds 2 --num-generations $OGEN --pairs-per-prompt 4 --epochs-per-round $EPOCHS $DPO_EXTRA \
                 --per-device-train-batch-size 8 --logging-steps 10 $COMMON --seed $seed --output-dir $out" ;;
      online-kto) cmd="$T online-dpo --loss kto --model $tmp/sft --data $tmp/train.jsonl --rounds 2 --num-generations $OGEN --pairs-per-prompt 4 --epochs-per-round $EPOCHS \
                 --per-device-train-batch-size 16 --logging-steps 10 $COMMON --seed $seed --output-dir $out" ;;
    esac
    echo "$cmd" | tr -s ' ' | sed "s|$tmp|\$tmp|g; s|$T|temper|" >&2
    l0=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(date +%s.%N)
    $cmd 2>"$out.err" || { echo "| $run | $seed | failed: $(tail -1 "$out.err") |"; continue; }
    t1=$(date +%s.%N)
    wall=$(printf '%.0f' "$(echo "$t1 - $t0" | bc -l)")
    model=$out; [ -d "$out/round-2/model" ] && model=$out/round-2/model
    name=$run; [ "$EPOCHS" != 1 ] && case $run in online-*) name="$run (epochs $EPOCHS)" ;; esac
    [ -n "$DPO_EXTRA" ] && [ $run = online-dpo ] && name="$name ($DPO_EXTRA)"
    row "$name" "$seed" "$model" "$wall" "$l0"
  done
done
