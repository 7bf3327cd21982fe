#!/usr/bin/env bash
# train_step --bf16 lines (make bench runs this after bench_train.sh, which made the models).
set -euo pipefail
STEPS=${STEPS:-5}
CONFIGS=${CONFIGS:-"tiny 8 256;small 4 512"}
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
# train_step --bf16 lines: temper's mixed precision (bf16 x bf16 GEMMs, fp32 accumulation,
# fp32 master weights and AdamW) beside temper fp32, PyTorch fp32 and PyTorch under
# torch.autocast("cpu", bfloat16), in the same run; the path temper's bf16 GEMMs took.
# Wall and process CPU time per step (CPU time is the fairer figure on a loaded machine).
IFS=";" read -ra cfgs <<< "$CONFIGS"
for cfg in "${cfgs[@]}"; do
  set -- $cfg
  name=$1 B=$2 T=$3
  [ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" 2>/dev/null
  m=(--model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1)
  c=$(build/bench/train_step "${m[@]}")
  cb=$(build/bench/train_step "${m[@]}" --bf16 2>/dev/null)
  t=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" --threads "${OMP_NUM_THREADS:-2}")
  ta=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" --threads "${OMP_NUM_THREADS:-2}" --autocast)
  printf 'train_step %s --bf16: temper bf16 %.0f tok/s (cpu %.0f ms/step), temper fp32 %.0f (%.0f), torch fp32 %.0f (%.0f), torch autocast bf16 %.0f (%.0f); bf16 vs torch fp32 %.2fx, vs torch autocast %.2fx, vs temper fp32 %.2fx (cpu-time ratios)\n' \
    "$name" "$(field "$cb" tok_per_s)" "$(field "$cb" cpu_ms_per_step)" "$(field "$c" tok_per_s)" "$(field "$c" cpu_ms_per_step)" \
    "$(field "$t" tok_per_s)" "$(field "$t" cpu_ms_per_step)" "$(field "$ta" tok_per_s)" "$(field "$ta" cpu_ms_per_step)" \
    "$(echo "$(field "$t" cpu_ms_per_step) / $(field "$cb" cpu_ms_per_step)" | bc -l)" \
    "$(echo "$(field "$ta" cpu_ms_per_step) / $(field "$cb" cpu_ms_per_step)" | bc -l)" \
    "$(echo "$(field "$c" cpu_ms_per_step) / $(field "$cb" cpu_ms_per_step)" | bc -l)"
  echo "  temper bf16 GEMM path: $(field "$cb" bf16); torch: ATen $(field "$t" isa); $cpu"
done
