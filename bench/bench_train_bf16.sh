#!/usr/bin/env bash
# train_step and dpo_step --bf16 lines (make bench runs this after bench_train.sh, which
# made the models): temper's mixed precision (bf16 x bf16 GEMMs, fp32 accumulation, fp32
# master weights and AdamW) beside temper fp32, PyTorch eager fp32 and PyTorch under
# torch.autocast("cpu", bfloat16), in the same run, and the path temper's bf16 GEMMs took
# (AMX / AVX-512-BF16 / AVX-512 FMA / AVX2, with the reason the automatic choice gave).
# Wall and process CPU time per step; the ratios are of CPU time (the fairer figure on a
# loaded machine). dpo_step: PyTorch applies the lm-head to the completion positions only
# (the work temper does; bench_train.sh has the TRL-style line).
# BF16_AVX2=1 adds train_step lines for an AVX2-only machine: temper's AVX2 bf16 path
# (TEMPER_BB16_GEMM=avx2) against temper fp32 on OpenBLAS's Haswell kernels.
set -euo pipefail
STEPS=${STEPS:-5}
CONFIGS=${CONFIGS:-"tiny 8 256;small 4 512"}
OBJECTIVES=${OBJECTIVES-"sft dpo"}  # empty: none (BF16_AVX2 lines only)
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
ratio() { echo "$1 / $2" | bc -l; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
th=${OMP_NUM_THREADS:-2}
err=$(mktemp); trap 'rm -f "$err"' EXIT
IFS=";" read -ra cfgs <<< "$CONFIGS"
for obj in $OBJECTIVES; do
  for cfg in "${cfgs[@]}"; do
    set -- $cfg
    name=$1 B=$2 T=$3
    [ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" 2>/dev/null
    m=(--model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1 --objective "$obj")
    tm=(); [ "$obj" = dpo ] && tm=(--lm-head completion)
    c=$(build/bench/train_step "${m[@]}")
    cb=$(build/bench/train_step "${m[@]}" --bf16 2>"$err")
    path=$(sed -n 's/^temper: bf16 GEMM on //p' "$err" | head -1)
    t=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" "${tm[@]}" --threads "$th")
    ta=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" "${tm[@]}" --threads "$th" --autocast)
    line=train_step; [ "$obj" = dpo ] && line=dpo_step
    cbm=$(field "$cb" cpu_ms_per_step)
    printf '%s %s --bf16: temper bf16 %.0f tok/s (cpu %.0f ms/step), temper fp32 %.0f (%.0f), torch fp32 %.0f (%.0f), torch autocast bf16 %.0f (%.0f); bf16 vs torch fp32 %.2fx, vs torch autocast %.2fx, vs temper fp32 %.2fx (cpu-time ratios)\n' \
      "$line" "$name" "$(field "$cb" tok_per_s)" "$cbm" "$(field "$c" tok_per_s)" "$(field "$c" cpu_ms_per_step)" \
      "$(field "$t" tok_per_s)" "$(field "$t" cpu_ms_per_step)" "$(field "$ta" tok_per_s)" "$(field "$ta" cpu_ms_per_step)" \
      "$(ratio "$(field "$t" cpu_ms_per_step)" "$cbm")" "$(ratio "$(field "$ta" cpu_ms_per_step)" "$cbm")" \
      "$(ratio "$(field "$c" cpu_ms_per_step)" "$cbm")"
    echo "  temper bf16 GEMM path: $path; torch: ATen $(field "$t" isa); threads $th; load $(cut -d' ' -f1-3 /proc/loadavg); $cpu"
  done
done
if [ "${BF16_AVX2:-0}" = 1 ]; then
  for cfg in "${cfgs[@]}"; do
    set -- $cfg
    name=$1 B=$2 T=$3
    m=(--model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1)
    c=$(OPENBLAS_CORETYPE=Haswell build/bench/train_step "${m[@]}")
    cb=$(OPENBLAS_CORETYPE=Haswell TEMPER_BB16_GEMM=avx2 build/bench/train_step "${m[@]}" --bf16 2>"$err")
    path=$(sed -n 's/^temper: bf16 GEMM on //p' "$err" | head -1)
    printf 'train_step %s --bf16, AVX2 GEMMs: temper bf16 %.0f tok/s (cpu %.0f ms/step), temper fp32 on OpenBLAS Haswell %.0f (%.0f); bf16 vs fp32 %.2fx (cpu-time ratio)\n' \
      "$name" "$(field "$cb" tok_per_s)" "$(field "$cb" cpu_ms_per_step)" "$(field "$c" tok_per_s)" "$(field "$c" cpu_ms_per_step)" \
      "$(ratio "$(field "$c" cpu_ms_per_step)" "$(field "$cb" cpu_ms_per_step)")"
    echo "  temper bf16 GEMM path: $path (TEMPER_BB16_GEMM=avx2); the rest of both steps: the native build's kernels; threads $th; load $(cut -d' ' -f1-3 /proc/loadavg); cpu: $(OPENBLAS_CORETYPE=Haswell bash bench/cpu.sh)"
  done
fi
# bb16_gemm lines: the three GEMMs of a linear layer of the small preset (2048 rows) on each
# bf16 path this CPU has, beside OpenBLAS fp32 (GFLOP/s from CPU time, best of 3).
# BB16_GEMM=0 skips them.
if [ "${BB16_GEMM:-1}" = 1 ]; then
  build/bench/bb16_gemm
  echo "  threads $th; load $(cut -d' ' -f1-3 /proc/loadavg); $cpu"
fi
