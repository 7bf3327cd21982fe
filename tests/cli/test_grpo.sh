#!/usr/bin/env bash
# temper grpo end to end on a learnable task (about 70 s of CPU on 2 cores):
# a tiny Llama with the byte tokenizer (tests/oracle/tiny_tokenizer.py, no chat template)
# is taught "a+b=" -> "\boxed{a+b}" (a, b < 5) by a short `temper sft` that leaves it
# about 40% accurate; GRPO on those 25 prompts must raise the accuracy measured
# independently afterwards (400 samples at temperature 1 before and after, through a
# learning-rate-0 grpo pass: the same prompts and sampler). Also: the first pass's
# importance ratio is 1 up to the sampler/trainer mismatch (measured, printed, at temperature
# 1 and 0.7), a resumed
# run ends bit-identical, the options run, tool-integrated GRPO (python, calculator) masks
# the tool outputs, and bad flags fail with one line.
cd "$(dirname "$0")/../.."
T=${TEMPER:-$PWD/build/temper}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/temper-grpo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }
# a metric of line N (1-based) of a metrics.jsonl
metric() { $PY -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[int(sys.argv[2])-1])[sys.argv[3]])" "$@"; }
# mean accuracy of a lr-0 pass (two steps of 200 samples) over the prompts
accuracy() {
  rm -rf "$tmp/ev"
  "$T" grpo --model "$1" --data "$tmp/train.jsonl" --output-dir "$tmp/ev" --learning-rate 0 --max-steps 2 \
    --per-device-train-batch-size 200 --num-generations 8 --max-completion-length 12 --logging-steps 1 --seed 7 --quiet 2>/dev/null || return 1
  $PY -c "import json,sys; r=[json.loads(l)['accuracy'] for l in open(sys.argv[1])]; print(sum(r)/len(r))" "$tmp/ev/metrics.jsonl"
}

$PY - "$tmp" <<'EOF'
import json, os, sys
sys.path.insert(0, "tests/oracle")
import tiny_tokenizer
tmp = sys.argv[1]
tok = tiny_tokenizer.write(os.path.join(tmp, "tok"))
cfg = json.load(open(os.path.join(tok, "tokenizer_config.json")))
del cfg["chat_template"]  # plain prompts: what sft trains on is what grpo samples from
json.dump(cfg, open(os.path.join(tok, "tokenizer_config.json"), "w"))
P = [(a, b) for a in range(5) for b in range(5)]
with open(os.path.join(tmp, "sft.jsonl"), "w") as f:
    for a, b in P: f.write(json.dumps({"prompt": f"{a}+{b}=", "completion": "\\boxed{%d}" % (a + b)}) + "\n")
with open(os.path.join(tmp, "train.jsonl"), "w") as f:
    for a, b in P: f.write(json.dumps({"prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n")
with open(os.path.join(tmp, "sft_python.jsonl"), "w") as f:  # tool formats (the tool-integrated GRPO checks)
    for a, b in P: f.write(json.dumps({"prompt": f"{a}+{b}=", "completion": "```python\nprint(%d+%d)\n```\n```output\n%d\n```\n\\boxed{%d}" % (a, b, a + b, a + b)}) + "\n")
with open(os.path.join(tmp, "sft_calculator.jsonl"), "w") as f:
    for a, b in P: f.write(json.dumps({"prompt": f"{a}+{b}=", "completion": "<<%d+%d=%d>>\\boxed{%d}" % (a, b, a + b, a + b)}) + "\n")
EOF
# init --seed 1 and 24 steps of sft on sft.jsonl (lr 1e-3, batch 25), built once per run
. tests/cli/lib/fixture.sh && fixture_addition_sft "$tmp"
check '[ -f "$tmp/sft/model.safetensors" ]' "sft teaches the answer format (24 steps)"

# ---- GRPO raises the accuracy ----
G="--data $tmp/train.jsonl --per-device-train-batch-size 40 --num-generations 8 --max-completion-length 12 --lr-scheduler-type constant --logging-steps 1 --quiet"
t0=$(date +%s)
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/g" --learning-rate 1e-4 --max-steps 40 --save-steps 20 2>"$tmp/g.err"
rc=$?
t1=$(date +%s)
check '[ $rc -eq 0 ] && [ -f "$tmp/g/model.safetensors" ] && [ -d "$tmp/g/checkpoint-20" ]' "grpo runs 40 steps, saves the model and checkpoint-20 ($((t1 - t0)) s)"
a0=$(accuracy "$tmp/sft"); a1=$(accuracy "$tmp/g")
echo "# accuracy over the 25 prompts (400 samples, temperature 1): sft $a0 -> grpo $a1"
check "$PY -c 'import sys; sys.exit(not ($a1 >= $a0 + 0.08))'" "grpo raises the accuracy by at least 0.08 (sft $a0 -> grpo $a1)"
n=$(wc -l <"$tmp/g/metrics.jsonl")
check '[ "$n" -eq 40 ]' "metrics.jsonl has one line per step ($n)"
for k in reward reward_std frac_reward_zero_std accuracy entropy clip_ratio/low_mean clip_ratio/high_mean completions/mean_length \
         completions/clipped_ratio sampling/sampling_logp_difference/max training/rollout_probs_diff_max time/generation; do
  metric "$tmp/g/metrics.jsonl" 1 "$k" >/dev/null 2>&1 || { bad "metrics.jsonl has $k"; continue; }
done
ok "metrics.jsonl carries TRL's names (reward, reward_std, frac_reward_zero_std, clip_ratio/*, completions/*, sampling/*)"

"$T" plot "$tmp/g" --keys reward,accuracy,completions/mean_length --out "$tmp/g.svg" >/dev/null 2>&1
check 'grep -q "accuracy" "$tmp/g.svg" 2>/dev/null' "temper plot draws the reward and accuracy curves"

# ---- with --num-iterations 1 the first ratio is 1 up to the sampler/trainer mismatch ----
dm=$(metric "$tmp/g/metrics.jsonl" 1 sampling/sampling_logp_difference/mean)
dx=$(metric "$tmp/g/metrics.jsonl" 1 sampling/sampling_logp_difference/max)
rx=$(metric "$tmp/g/metrics.jsonl" 1 sampling/ratio_minus_one/max)
echo "# sampler/trainer mismatch at step 1: mean |dlogp| $dm, max |dlogp| $dx, max |rho - 1| $rx"
check "$PY -c 'import sys; sys.exit(not ($rx < 1e-4 and $dm < 1e-5))'" "first-pass ratio is 1 within the mismatch (max |rho-1| $rx < 1e-4, mean |dlogp| $dm < 1e-5)"

# ---- at temperature 0.7 too: both sides take log-probs of softmax(logits / 0.7) ----
# (before, grpo refused --temperature != 1: the sampler recorded temperature-1 log-probs)
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/t7" --learning-rate 1e-4 --max-steps 1 --temperature 0.7 --save-steps 0 2>/dev/null
dm7=$(metric "$tmp/t7/metrics.jsonl" 1 sampling/sampling_logp_difference/mean 2>/dev/null)
dx7=$(metric "$tmp/t7/metrics.jsonl" 1 sampling/sampling_logp_difference/max 2>/dev/null)
rx7=$(metric "$tmp/t7/metrics.jsonl" 1 sampling/ratio_minus_one/max 2>/dev/null)
echo "# sampler/trainer mismatch at step 1, temperature 0.7: mean |dlogp| $dm7, max |dlogp| $dx7, max |rho - 1| $rx7"
check "$PY -c 'import sys; sys.exit(not ($rx7 < 1e-4 and $dm7 < 1e-5))'" "--temperature 0.7: first-pass ratio is 1 within the mismatch (max |rho-1| $rx7 < 1e-4, mean |dlogp| $dm7 < 1e-5)"
# top-p / top-k shape the samples, not the log-probs (TRL: the ratio uses the full logits / T)
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/t7p" --learning-rate 1e-4 --max-steps 1 --temperature 0.7 --top-p 0.9 --top-k 8 --save-steps 0 2>/dev/null
dmp=$(metric "$tmp/t7p/metrics.jsonl" 1 sampling/sampling_logp_difference/mean 2>/dev/null)
rxp=$(metric "$tmp/t7p/metrics.jsonl" 1 sampling/ratio_minus_one/max 2>/dev/null)
check "$PY -c 'import sys; sys.exit(not ($rxp < 1e-4 and $dmp < 1e-5))'" "--temperature 0.7 --top-p 0.9 --top-k 8: runs, first-pass ratio 1 (max |rho-1| $rxp, mean |dlogp| $dmp)"

# ---- --logging-steps 2: each line is the mean over its window (TRL), not the last step ----
rm -rf "$tmp/w1" "$tmp/w2"
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/w1" --learning-rate 1e-4 --max-steps 4 --save-steps 0 2>/dev/null
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/w2" --learning-rate 1e-4 --max-steps 4 --logging-steps 2 --save-steps 0 2>/dev/null
win=$($PY - "$tmp/w1/metrics.jsonl" "$tmp/w2/metrics.jsonl" <<'EOF'
import json, sys
one = [json.loads(l) for l in open(sys.argv[1])]
two = [json.loads(l) for l in open(sys.argv[2])]
bad, differ = [], 0
for k, line in enumerate(two):
    a, b = one[2 * k], one[2 * k + 1]
    if line["step"] != b["step"] or line["grad_norm"] != b["grad_norm"] or line["num_tokens"] != b["num_tokens"]:
        bad.append(f"step {line['step']}: step/grad_norm/num_tokens not the window's last")
    for key in ("loss", "reward", "reward_std", "frac_reward_zero_std", "accuracy", "entropy", "clip_ratio/high_mean",
                "completions/mean_length", "completions/max_length", "sampling/sampling_logp_difference/mean"):
        mean = (a[key] + b[key]) / 2
        if abs(line[key] - mean) > 1e-6 * max(1.0, abs(mean)):
            bad.append(f"step {line['step']} {key} {line[key]} != mean {mean}")
        differ += a[key] != b[key]
print("PASS" if len(two) == 2 and not bad and differ else "FAIL " + "; ".join(bad[:3]) + f" (lines {len(two)}, differing {differ})")
EOF
)
check '[ "${win%% *}" = PASS ]' "--logging-steps 2: loss, reward, accuracy, entropy, completions/*, sampling/* are the means of the two steps' values, grad_norm the last ($win)"

# ---- resume: bit-identical to the uninterrupted run ----
cp -r "$tmp/g" "$tmp/r"
rm -f "$tmp/r/model.safetensors" "$tmp/r/metrics.jsonl"
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/r" --learning-rate 1e-4 --max-steps 40 --save-steps 20 \
  --resume-from-checkpoint "$tmp/r/checkpoint-20" 2>/dev/null
check 'cmp -s "$tmp/g/model.safetensors" "$tmp/r/model.safetensors"' "resumed from checkpoint-20: weights bit-identical to the uninterrupted run"
strip() { sed -E 's/"(time\/[a-z]+|tokens_per_second)": [^,}]*,? ?//g' "$1"; }
check 'diff <(strip "$tmp/g/metrics.jsonl") <(strip "$tmp/r/metrics.jsonl") >/dev/null' "resumed run's metrics.jsonl equals the uninterrupted one (timings aside)"

# resume in the middle of a run with 2 iterations per batch, dynamic sampling and a reference model
A="--model $tmp/sft --data $tmp/train.jsonl --learning-rate 1e-4 --max-steps 6 --per-device-train-batch-size 20 --gradient-accumulation-steps 2 --num-generations 8 --max-completion-length 12 --logging-steps 1 --quiet --num-iterations 2 --dynamic-sampling --save-steps 2 --beta 0.02"
"$T" grpo $A --output-dir "$tmp/dA" 2>/dev/null
cp -r "$tmp/dA" "$tmp/dB"; rm -f "$tmp/dB/model.safetensors"
"$T" grpo $A --output-dir "$tmp/dB" --resume-from-checkpoint "$tmp/dB/checkpoint-4" 2>/dev/null
check 'cmp -s "$tmp/dA/model.safetensors" "$tmp/dB/model.safetensors" && grep -q prompts_seen "$tmp/dA/checkpoint-4/trainer_state.json"' "resume with --num-iterations 2, --dynamic-sampling and --beta: bit-identical (the prompt cursor is in trainer_state.json)"

# a generation batch of 2 optimizer steps x 2 iterations: 4 steps from one sampling round
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/o5" --learning-rate 1e-4 --max-steps 4 --per-device-train-batch-size 20 \
  --steps-per-generation 2 --num-iterations 2 --save-steps 4 2>/dev/null
check '[ $? -eq 0 ] && [ "$(metric "$tmp/o5/metrics.jsonl" 1 reward)" = "$(metric "$tmp/o5/metrics.jsonl" 4 reward)" ] && [ "$(metric "$tmp/o5/metrics.jsonl" 1 loss)" != "$(metric "$tmp/o5/metrics.jsonl" 2 loss)" ]' "--steps-per-generation 2 --num-iterations 2: four optimizer steps on one generation batch (same reward, different slices)"

# ---- the options run ----
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/o1" --learning-rate 1e-4 --max-steps 4 --num-iterations 2 --beta 0.04 \
  --kl-estimator k2 --loss-type grpo --epsilon-high 0.28 --mask-truncated-completions --save-steps 0 2>/dev/null
check '[ $? -eq 0 ] && metric "$tmp/o1/metrics.jsonl" 4 kl >/dev/null' "num-iterations 2, beta 0.04 (k2, frozen reference), loss grpo, clip-higher: runs and logs kl"
kl1=$(metric "$tmp/o1/metrics.jsonl" 1 kl 2>/dev/null)
check "$PY -c 'import sys; sys.exit(not (abs($kl1) < 1e-6))'" "kl is 0 at the first step (policy = reference): $kl1"
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/o2" --learning-rate 1e-4 --max-steps 3 --dynamic-sampling --scale-rewards batch \
  --loss-type dr_grpo --reward-weights 1,0.5 --save-steps 0 2>/dev/null
kept=$(metric "$tmp/o2/metrics.jsonl" 1 dynamic_sampling/kept_groups 2>/dev/null)
zs=$(metric "$tmp/o2/metrics.jsonl" 1 frac_reward_zero_std 2>/dev/null)
check '[ "$kept" = 5.0 ] && [ "$zs" = 0.0 ]' "dynamic sampling fills the batch with 5 groups that have reward variance (kept $kept, frac_reward_zero_std $zs)"

# DAPO's soft overlong punishment with L_c = L_max: the reward is -|y| / L_max
"$T" grpo --model "$tmp/sft" $G --output-dir "$tmp/o4" --learning-rate 1e-4 --max-steps 1 --reward-weights 1,0,1 --overlong-buffer-len 12 --save-steps 0 2>/dev/null
ol=$(metric "$tmp/o4/metrics.jsonl" 1 rewards/overlong/mean 2>/dev/null); ml=$(metric "$tmp/o4/metrics.jsonl" 1 completions/mean_length 2>/dev/null)
check "$PY -c 'import sys; sys.exit(not abs($ol + $ml / 12) < 1e-6)'" "overlong reward with --overlong-buffer-len 12 = -mean_length/12 ($ol vs -$ml/12)"

# ---- tool-integrated GRPO: tool outputs are in the completion but never trained ----
# Two more tiny models are taught a tool format by a short sft (batch 5: a few seconds):
#   python      a+b=```python\nprint(a+b)\n```  (the sandbox appends \n```output\ns\n```\n)  \boxed{s}
#   calculator  a+b=<<a+b=                      (the calculator appends s>>)                  \boxed{s}
# grpo --tools runs 2 steps with each. With the byte tokenizer one token is one byte, so the
# tokens trained (num_tokens of step 1) must fall short of the completion tokens by at least
# the bytes of the observations: >= 16 per python call ("\n```output\n" + "\n```\n"), >= 3 per
# successful calculator call ("s>>"). Without tools they are equal (the first run, step 1).
tl=$($PY -c "import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(r['completions/mean_length'] * 40 - r['num_tokens'])" "$tmp/g/metrics.jsonl")
check "$PY -c 'import sys; sys.exit(not abs($tl) < 1e-6)'" "no tools: the tokens trained at step 1 are all the completion tokens (difference $tl)"
t0=$(date +%s)
for tool in python calculator; do
  "$T" sft --model "$tmp/base" --data "$tmp/sft_$tool.jsonl" --output-dir "$tmp/sft_$tool" --max-steps 60 --learning-rate 2e-3 \
    --lr-scheduler-type constant --per-device-train-batch-size 5 --logging-steps 100 --quiet >/dev/null 2>&1
  "$T" grpo --model "$tmp/sft_$tool" --data "$tmp/train.jsonl" --per-device-train-batch-size 16 --num-generations 8 --max-completion-length 56 \
    --logging-steps 1 --quiet --output-dir "$tmp/tool_$tool" --learning-rate 1e-4 --max-steps 2 --tools $tool --tool-timeout 5 --loss-type bnpo \
    --save-steps 0 2>"$tmp/tool_$tool.err"
  [ $? -eq 0 ] || bad "grpo --tools $tool runs: $(tail -1 "$tmp/tool_$tool.err")"
done
t1=$(date +%s)
tools_ok() {  # metrics.jsonl, bytes per call at least
  $PY - "$@" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r, per_call = rows[0], int(sys.argv[2])
n = 16
calls, errors = r["tools/calls_per_trajectory"] * n, r["tools/errors_per_trajectory"] * n
tool_tokens = r["completions/mean_length"] * n - r["num_tokens"]
good = len(rows) == 2 and calls >= n / 2 and errors < calls and tool_tokens >= per_call * (calls - errors) and tool_tokens > 0
print(("PASS" if good else "FAIL") + f" {calls:.0f} calls, {errors:.0f} errors, {tool_tokens:.0f} tool tokens not trained of {r['completions/mean_length'] * n:.0f}")
EOF
}
tp=$(tools_ok "$tmp/tool_python/metrics.jsonl" 16)
check '[ "${tp%% *}" = PASS ]' "grpo --tools python, 2 steps: code runs in the sandbox (calls, few errors) and the observations are masked from the loss ($tp; $((t1 - t0)) s for both tools)"
tc=$(tools_ok "$tmp/tool_calculator/metrics.jsonl" 3)
check '[ "${tc%% *}" = PASS ]' "grpo --tools calculator, 2 steps: calculator results are masked from the loss ($tc)"

# rehearsal --tools calculator samples π0 as grpo --tools samples the policy: the calculator's
# results ("s>>", 3+ bytes) are masked in the stored samples, and grpo --tools calculator on
# them starts at forward KL 0 (the stored log π0 are the policy's own on every trained token).
"$T" rehearsal --model "$tmp/sft_calculator" --data "$tmp/train.jsonl" --output "$tmp/Rc.jsonl" --k 4 --solved-threshold 1 \
  --max-completion-length 24 --tools calculator 2>"$tmp/rehc.err"
# (a correct sample may answer without a call: rows with masked tokens are the calls, each
# masking the whole result, 3 tokens or more)
mc=$($PY -c "import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; c=[r['completion_mask'].count(0) for r in rows]; c=[n for n in c if n]; print(len(c), min(c, default=0))" "$tmp/Rc.jsonl")
check '[ "${mc%% *}" -gt 0 ] && [ "${mc##* }" -ge 3 ]' "rehearsal --tools calculator: correct samples that call the calculator are stored with its results masked (rows, fewest masked tokens: $mc)"
"$T" grpo --model "$tmp/sft_calculator" --data "$tmp/train.jsonl" --per-device-train-batch-size 16 --num-generations 8 --max-completion-length 24 \
  --logging-steps 1 --quiet --output-dir "$tmp/toolreh" --learning-rate 1e-4 --max-steps 1 --tools calculator --save-steps 0 \
  --divergence forward_kl --rehearsal "$tmp/Rc.jsonl" 2>"$tmp/toolreh.err"
dc=$(metric "$tmp/toolreh/metrics.jsonl" 1 rehearsal/divergence 2>/dev/null)
check "$PY -c 'import sys; sys.exit(not (abs(${dc:-1}) < 1e-9))'" "grpo --tools calculator --rehearsal (rehearsal --tools calculator): forward KL 0 at θ0 ($dc)"

# ---- DPH-RL: rehearsal samples of the initial policy, divergence on them ----
"$T" rehearsal --model "$tmp/sft" --data "$tmp/train.jsonl" --output "$tmp/R.jsonl" --exp-output "$tmp/exp.jsonl" --k 8 \
  --solved-threshold 5 --max-completion-length 12 2>"$tmp/reh.err"
nr=$(wc -l <"$tmp/R.jsonl"); ne=$(wc -l <"$tmp/exp.jsonl"); ns=$($PY -c "import json,sys; print(len({json.loads(l)['line'] for l in open(sys.argv[1])}))" "$tmp/R.jsonl")
check '[ $((ns + ne)) -eq 25 ] && [ "$nr" -ge "$((5 * ns))" ] && [ "$ns" -gt 0 ] && [ "$ne" -gt 0 ]' "rehearsal splits 25 prompts into $ns solved ($nr correct samples, >= 5 each) and $ne unsolved"
rows_ok() {
  $PY - "$1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
text = lambda r: bytes(x for x in r["completion_input_ids"] if x < 256).decode(errors="replace")
good = all("boxed" in text(r) and text(r).rstrip("}").endswith(r["answer"]) and all(lp <= 0 for lp in r["completion_logprobs"])
           and len(r["completion_logprobs"]) == len(r["completion_input_ids"]) == len(r["completion_mask"]) for r in rows)
sys.exit(not good)
EOF
}
check 'rows_ok "$tmp/R.jsonl"' "rehearsal rows are correct completions (boxed answer last) with one log-prob <= 0 and mask entry per token"
for dv in forward_kl js alpha; do
  rm -rf "$tmp/d"
  "$T" grpo --model "$tmp/sft" $G --data "$tmp/exp.jsonl" --output-dir "$tmp/d" --learning-rate 1e-4 --max-steps 4 --rehearsal "$tmp/R.jsonl" \
    --divergence $dv --divergence-coef 0.1 --save-steps 0 2>/dev/null
  d1=$(metric "$tmp/d/metrics.jsonl" 1 rehearsal/divergence 2>/dev/null); d4=$(metric "$tmp/d/metrics.jsonl" 4 rehearsal/divergence 2>/dev/null)
  check "$PY -c 'import sys; sys.exit(not ($d1 < 1e-9 and $d4 > 1e-5))'" "grpo --rehearsal --divergence $dv: 0 at θ0 ($d1), positive once the policy moved ($d4)"
done
# at temperature 0.7: rehearsal stores log π0 of softmax(logits / 0.7), grpo recomputes them at 0.7
"$T" rehearsal --model "$tmp/sft" --data "$tmp/train.jsonl" --output "$tmp/R7.jsonl" --k 8 --solved-threshold 5 \
  --max-completion-length 12 --temperature 0.7 2>/dev/null
rm -rf "$tmp/d7"
"$T" grpo --model "$tmp/sft" $G --data "$tmp/exp.jsonl" --output-dir "$tmp/d7" --learning-rate 1e-4 --max-steps 1 --rehearsal "$tmp/R7.jsonl" \
  --divergence forward_kl --divergence-coef 0.1 --temperature 0.7 --save-steps 0 2>/dev/null
d71=$(metric "$tmp/d7/metrics.jsonl" 1 rehearsal/divergence 2>/dev/null)
check "grep -q '\"temperature\": 0.7' '$tmp/R7.jsonl' && $PY -c 'import sys; sys.exit(not (abs($d71) < 1e-9))'" "rehearsal --temperature 0.7 then grpo --temperature 0.7: forward KL 0 at θ0 ($d71)"
out=$("$T" grpo --model "$tmp/sft" $G --data "$tmp/exp.jsonl" --output-dir "$tmp/d7b" --max-steps 1 --rehearsal "$tmp/R.jsonl" \
  --divergence forward_kl --temperature 0.7 --save-steps 0 2>&1)
check '[ $? -ne 0 ] && echo "$out" | grep -q "temperature 1 but --temperature is 0.7"' "a temperature-1 rehearsal file with grpo --temperature 0.7 fails: $out"
# the term pulls the policy back: a large coefficient keeps the divergence smaller
for c in 0 20; do
  rm -rf "$tmp/c$c"
  "$T" grpo --model "$tmp/sft" $G --data "$tmp/exp.jsonl" --output-dir "$tmp/c$c" --learning-rate 1e-4 --max-steps 6 --rehearsal "$tmp/R.jsonl" \
    --divergence forward_kl --divergence-coef $c --save-steps 0 2>/dev/null
done
e0=$(metric "$tmp/c0/metrics.jsonl" 6 rehearsal/divergence); e20=$(metric "$tmp/c20/metrics.jsonl" 6 rehearsal/divergence)
check "$PY -c 'import sys; sys.exit(not ($e20 < $e0))'" "forward KL with coef 20 stays closer to π0 than coef 0 after 6 steps ($e20 < $e0)"

# ---- bad flags: one line, nonzero status, before any work ----
expect_fail() {  # pattern, flags...
  local pat=$1; shift
  out=$("$T" grpo --model "$tmp/sft" --data "$tmp/train.jsonl" --output-dir "$tmp/bad" "$@" 2>&1)
  local rc=$?
  if [ $rc -ne 0 ] && echo "$out" | grep -q -- "$pat" && [ "$(echo "$out" | wc -l)" -eq 1 ]; then ok "grpo $* fails: $out"
  else bad "grpo $* should fail with '$pat' (rc $rc): $out"; fi
}
expect_fail "temperature must be a finite number > 0" --temperature 0
expect_fail "top-p" --top-p 1.5
expect_fail "multiple of --num-generations" --per-device-train-batch-size 12 --num-generations 8
expect_fail "multiple of --gradient-accumulation-steps" --gradient-accumulation-steps 2 --steps-per-generation 3
expect_fail "loss-type" --loss-type ppo
expect_fail "scale-rewards" --scale-rewards std
expect_fail "kl-estimator" --kl-estimator k4
expect_fail "save-steps" --num-iterations 2 --save-steps 3
expect_fail "epsilon" --epsilon 1.5
expect_fail "delta" --delta 1.1
expect_fail "tools" --tools shell
expect_fail "reward-weights" --reward-weights 1
expect_fail "rehearsal" --divergence js
expect_fail "needs --divergence" --rehearsal "$tmp/R.jsonl"
expect_fail "does not combine" --beta 0.1 --divergence forward_kl --rehearsal "$tmp/R.jsonl"
expect_fail "alpha" --divergence alpha --alpha 1.5 --rehearsal "$tmp/R.jsonl"
expect_fail "prompt-style" --prompt-style nope
out=$("$T" rehearsal --model "$tmp/sft" --data "$tmp/train.jsonl" --output "$tmp/bad.jsonl" --prompt-style nope 2>&1); rc=$?
check '[ $rc -ne 0 ] && echo "$out" | grep -q -- "--prompt-style" && [ "$(echo "$out" | wc -l)" -eq 1 ]' "rehearsal --prompt-style nope fails with one line: $out"
mkdir -p "$tmp/bad" && touch "$tmp/bad/old-run"
expect_fail "not empty" --max-steps 1
check '"$T" grpo --help | grep -q "loss-type.*(default dapo)"' "--help shows TRL's defaults (loss-type dapo)"
exit $((fails > 0))
