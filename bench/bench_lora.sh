#!/usr/bin/env bash
# lora_dpo_step lines (issue 14): one DPO step under LoRA on real Qwen3 shapes (temper init
# --preset qwen3-0.6b|qwen3-1.7b: random weights, bf16 file), 2 pairs x 512 tokens (the first
# half a shared prompt), r 16 on all linear projections, alpha 32, base frozen, reference
# log-probs precomputed with the adapters off; temper (bench/train_step.c --objective dpo
# --lora-r 16) against PyTorch eager with a hand-written LoRA (bench/torch_lora_dpo_step.py),
# each with and without --gradient-checkpointing. ratio = torch s/step / temper s/step (and the
# same in CPU seconds, which a loaded machine disturbs less); peak = the resident peak from the
# loaded model to the end of the steps (VmHWM), act = temper's activation arena.
# Minutes per line on 2 cores and GiBs of memory: opt-in, BENCH_LORA=1 make bench. Cases:
# LORA_CASES="preset:ckpt[:temper] ..." (":temper": temper's side only, e.g. where PyTorch
# would not fit in memory), LORA_STEPS / LORA_WARMUP timed and warm-up steps.
set -euo pipefail
if [ "${BENCH_LORA:-0}" != 1 ]; then
  echo "lora_dpo_step: skipped (BENCH_LORA=1 runs it: Qwen3-0.6B/1.7B shapes, minutes per line on 2 cores, up to ~16 GiB)"; exit 0
fi
dir=${BENCH_MODELS:-build/bench-models}; mkdir -p "$dir"
# PyTorch without checkpointing is left out by default: with checkpointing its 0.6B step
# already peaked at 10 GiB (BENCHMARKS.md), without it would pass the 24 GiB machine.
CASES=${LORA_CASES:-qwen3-0.6b:1 qwen3-0.6b:0:temper qwen3-1.7b:1 qwen3-1.7b:0:temper}
STEPS=${LORA_STEPS:-1} WARMUP=${LORA_WARMUP:-1} B=${LORA_PAIRS:-2} T=${LORA_SEQ:-512} R=${LORA_R:-16}
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
div() { echo "$1 / $2" | bc -l; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
for case in $CASES; do
  IFS=: read -r name ck only <<<"$case"
  [ -f "$dir/$name/model.safetensors" ] || build/temper init --preset "$name" --out "$dir/$name" 2>/dev/null
  flag=""; [ "$ck" = 1 ] && flag=--gradient-checkpointing
  l0=$(cut -d' ' -f1 /proc/loadavg)
  c=$(build/bench/train_step --model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup "$WARMUP" --objective dpo \
      --lora-r "$R" --no-sgemm-peak $flag)
  l1=$(cut -d' ' -f1 /proc/loadavg)
  label="lora_dpo_step $name${flag:+ $flag}"
  cs=$(div "$(field "$c" ms_per_step)" 1000); cc=$(field "$c" cpu_s_per_step)
  if [ "$only" = temper ]; then
    printf '%s: temper %.1f s/step (CPU %.1f s), peak MiB %.0f (activations %.0f); torch not run (memory)\n' \
      "$label" "$cs" "$cc" "$(field "$c" step_peak_mib)" "$(field "$c" act_mib)"
    echo "  $B pairs x $T tokens, r $R all-linear; load average $l0 / $l1 (start / after temper); $cpu"
    continue
  fi
  t=$(/usr/bin/python3 bench/torch_lora_dpo_step.py --model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup "$WARMUP" \
      --lora-r "$R" --threads "${OMP_NUM_THREADS:-2}" $flag)
  l2=$(cut -d' ' -f1 /proc/loadavg)
  ts=$(div "$(field "$t" ms_per_step)" 1000); tc=$(field "$t" cpu_s_per_step)
  printf '%s: temper %.1f s/step (CPU %.1f s), torch %.1f s/step (CPU %.1f s), ratio %.2f (CPU %.2f), peak MiB temper %.0f torch %.0f (activations temper %.0f)\n' \
    "$label" "$cs" "$cc" "$ts" "$tc" "$(div "$ts" "$cs")" "$(div "$tc" "$cc")" "$(field "$c" step_peak_mib)" "$(field "$t" step_peak_mib)" "$(field "$c" act_mib)"
  echo "  $B pairs x $T tokens, r $R all-linear, $WARMUP warm-up + $STEPS timed step(s); load average $l0 / $l1 / $l2 (start / after temper / after torch); torch $(field "$t" torch); $cpu"
done
