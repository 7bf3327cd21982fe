#!/usr/bin/env bash
# deterministic lines (issue 15): --deterministic (the default: the forward GEMMs on
# temper's fixed-order kernel, src/kernels/cpu_gemm_own.c) against --deterministic false
# (OpenBLAS's sgemm for them) and PyTorch eager fp32, all three in the same run:
#   train_step  bench/train_step (TEMPER_DETERMINISTIC=1 / 0) and bench/torch_train_step.py
#   generate    bench/generate (both settings) and bench/torch_generate.py, batch 1 and 16
# then the forward alone (bench/det_forward.c: model_forward, the two alternated in one
# process) and the GEMM per shape (bench/det_gemm.c, 1 thread, thread CPU time: the
# geometric mean over the tiny, small and Qwen3-0.6B forward shapes, on the AVX-512 and the
# AVX2 path, each against OpenBLAS's kernel for that ISA).
set -euo pipefail
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
STEPS=${STEPS:-3} NEW=${NEW:-64} REPS=${REPS:-3} TH=${OMP_NUM_THREADS:-2}
load() { cut -d' ' -f1 /proc/loadavg; }
for cfg in "tiny 8 256" "small 4 512"; do
  set -- $cfg
  name=$1 B=$2 T=$3
  [ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" 2>/dev/null
  m=(--model "$dir/$name" --batch "$B" --seq "$T" --steps "$STEPS" --warmup 1)
  d=$(TEMPER_DETERMINISTIC=1 build/bench/train_step "${m[@]}")
  o=$(TEMPER_DETERMINISTIC=0 build/bench/train_step "${m[@]}")
  t=$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" --threads "$TH")
  dt=$(field "$d" tok_per_s) ot=$(field "$o" tok_per_s) tt=$(field "$t" tok_per_s)
  printf 'train_step %s deterministic: temper %.0f tok/s (--deterministic false %.0f, ratio %.2f), torch %.0f tok/s, ratio %.2f (load %s)\n' \
    "$name" "$dt" "$ot" "$(echo "$dt / $ot" | bc -l)" "$tt" "$(echo "$dt / $tt" | bc -l)" "$(load)"
  for G in 1 16; do
    g=(--model "$dir/$name" --batch "$G" --new "$NEW")
    d=$(TEMPER_DETERMINISTIC=1 build/bench/generate "${g[@]}")
    o=$(TEMPER_DETERMINISTIC=0 build/bench/generate "${g[@]}")
    t=$(/usr/bin/python3 bench/torch_generate.py "${g[@]}" --threads "$TH")
    dt=$(field "$d" tok_per_s) ot=$(field "$o" tok_per_s) tt=$(field "$t" tok_per_s)
    printf 'generate %s batch %d deterministic: temper %.0f tok/s (--deterministic false %.0f, ratio %.2f), torch %.0f tok/s, ratio %.2f (load %s)\n' \
      "$name" "$G" "$dt" "$ot" "$(echo "$dt / $ot" | bc -l)" "$tt" "$(echo "$dt / $tt" | bc -l)" "$(load)"
  done
  c=$(build/bench/det_forward --model "$dir/$name" --batch "$B" --seq "$T" --reps "$REPS")
  printf '  forward %s (%dx%d): openblas %.0f tok/s, deterministic %.0f tok/s, time ratio %.2f (load %s)\n' "$name" "$B" "$T" \
    "$(field "$c" openblas_tok_per_s)" "$(field "$c" deterministic_tok_per_s)" "$(field "$c" time_ratio)" "$(load)"
  echo "  temper: $TH threads; $cpu"
done
for isa in "2 SkylakeX" "1 Haswell"; do
  set -- $isa
  for rows in 2048 16 1; do
    r=$(OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=$2 build/bench/det_gemm --isa "$1" --rows "$rows" --reps "$REPS" | tail -1)
    f=$(OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=$2 build/bench/det_gemm --isa "$1" --rows "$rows" --reps "$REPS" --frozen 1 | tail -1)
    printf '  x W^T, own path %s vs OpenBLAS %s, %d rows, 1 thread: %s; decoder call, weights frozen: %s\n' \
      "$([ "$1" = 2 ] && echo avx512 || echo avx2)" "$2" "$rows" "$r" "$f"
  done
done
