#!/usr/bin/env bash
# train_step and dpo_step lines: temper against bench/torch_train_step.py (PyTorch eager).
set -euo pipefail
STEPS=${STEPS:-5}
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
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
  echo "  temper: $(field "$c" blas), torch: $(field "$t" blas)"
done
# dpo_step lines: policy forward+backward on chosen and rejected (reference log-probs
# precomputed), B pairs of T tokens each side, the first half a shared prompt.
for cfg in "tiny 8 256" "small 4 512"; do
  set -- $cfg
  name=$1 B=$2 T=$3
  c=$(build/bench/train_step --model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1 --objective dpo)
  t=$(/usr/bin/python3 bench/torch_train_step.py --model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1 --threads 2 --objective dpo)
  cp=$(field "$c" pairs_per_s); tp=$(field "$t" pairs_per_s)
  printf 'dpo_step %s: temper %.2f pairs/s, torch %.2f pairs/s, ratio %.2f, peak MiB temper %.0f torch %.0f\n' \
    "$name" "$cp" "$tp" "$(echo "$cp / $tp" | bc -l)" "$(field "$c" peak_mib)" "$(field "$t" peak_mib)"
done
