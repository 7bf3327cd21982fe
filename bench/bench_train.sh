#!/usr/bin/env bash
# train_step and dpo_step lines: temper against bench/torch_train_step.py (PyTorch eager).
# Each line's detail names the ISA each side ran (temper's kernels as compiled, ATen's
# dispatch), the BLAS both call, and the CPU (bench/cpu.sh).
set -euo pipefail
STEPS=${STEPS:-5}
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
for cfg in "tiny 8 256" "small 4 512"; do
  set -- $cfg
  name=$1 B=$2 T=$3
  [ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" 2>/dev/null
  c=$(build/bench/train_step --model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1)
  t=$(/usr/bin/python3 bench/torch_train_step.py --model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1 --threads 2)
  ct=$(field "$c" tok_per_s); tt=$(field "$t" tok_per_s)
  printf 'train_step %s: temper %.0f tok/s, torch %.0f tok/s, ratio %.2f, peak MiB temper %.0f torch %.0f\n' \
    "$name" "$ct" "$tt" "$(echo "$ct / $tt" | bc -l)" "$(field "$c" peak_mib)" "$(field "$t" peak_mib)"
  if [ "$name" = small ]; then
    printf '  small step: %.1f GFLOP/s achieved (6*N*tokens + attention), cblas_sgemm peak %.1f GFLOP/s (%.0f%%)\n' \
      "$(field "$c" gflops)" "$(field "$c" sgemm_peak_gflops)" "$(echo "100 * $(field "$c" gflops) / $(field "$c" sgemm_peak_gflops)" | bc -l)"
  fi
  echo "  temper: $(field "$c" isa) kernels, $(field "$c" blas); torch: ATen $(field "$t" isa), $(field "$t" blas); $cpu"
done
# dpo_step lines: policy forward+backward on chosen and rejected (reference log-probs
# precomputed), B pairs of T tokens each side, the first half a shared prompt. temper
# applies the lm-head to the completion positions only. Two PyTorch baselines:
#   torch (TRL)         B x T x V logits at every position, as TRL's DPOTrainer computes them
#   torch (completion)  the hidden states sliced to the completion positions first: equal work
for cfg in "tiny 8 256" "small 4 512"; do
  set -- $cfg
  name=$1 B=$2 T=$3
  m=(--model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1)
  c=$(build/bench/train_step "${m[@]}" --objective dpo)
  t=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" --threads 2 --objective dpo --lm-head all)
  s=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" --threads 2 --objective dpo --lm-head completion)
  cp=$(field "$c" pairs_per_s); tp=$(field "$t" pairs_per_s); sp=$(field "$s" pairs_per_s)
  printf 'dpo_step %s: temper %.3f pairs/s, torch (TRL: B x T x V logits) %.3f pairs/s, ratio %.2f, peak MiB temper %.0f torch %.0f\n' \
    "$name" "$cp" "$tp" "$(echo "$cp / $tp" | bc -l)" "$(field "$c" peak_mib)" "$(field "$t" peak_mib)"
  printf 'dpo_step %s, equal work: temper %.3f pairs/s, torch (lm-head on completion positions only) %.3f pairs/s, ratio %.2f, peak MiB torch %.0f\n' \
    "$name" "$cp" "$sp" "$(echo "$cp / $sp" | bc -l)" "$(field "$s" peak_mib)"
  echo "  temper: $(field "$c" isa) kernels, $(field "$c" blas); torch: ATen $(field "$t" isa); $cpu"
done
