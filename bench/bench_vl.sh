#!/usr/bin/env bash
# vl_forward_backward line: Qwen2.5-VL forward + backward (vision tower, M-RoPE, language model)
# on one 448x448 image (1024 patches, 256 image tokens) and 64 text tokens, temper
# (bench/vl_step.c) against the float32 PyTorch reference of tests/oracle/test_vl.py
# (bench/torch_vl_step.py). Ratio = torch ms / temper ms (> 1: temper faster), of wall time
# and of CPU time (all threads; the honest one on a shared, loaded machine). VL_THREADS sets both sides' threads.
set -euo pipefail
STEPS=${STEPS:-3}
PRESET=${VL_PRESET:-tiny}
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
m="$dir/vl-$PRESET"
[ -f "$m/model.safetensors" ] || build/temper init --arch qwen2_5_vl --preset "$PRESET" --out "$m" --quiet
th=${VL_THREADS:-${OMP_NUM_THREADS:-2}}
c=$(OMP_NUM_THREADS=$th OPENBLAS_NUM_THREADS=$th build/bench/vl_step --model "$m" --image 448 --text 64 --steps "$STEPS" --warmup 1)
t=$(/usr/bin/python3 bench/torch_vl_step.py --model "$m" --image 448 --text 64 --steps "$STEPS" --warmup 1 --threads "$th")
ct=$(field "$c" ms_per_step); tt=$(field "$t" ms_per_step); cc=$(field "$c" cpu_ms_per_step); tc=$(field "$t" cpu_ms_per_step)
printf 'vl_forward_backward %s (448x448 image, 64 text tokens, %s threads): wall temper %.0f ms, torch %.0f ms, ratio %.2f; CPU temper %.0f ms, torch %.0f ms, ratio %.2f; peak MiB temper %.0f torch %.0f\n' \
  "$PRESET" "$th" "$ct" "$tt" "$(echo "$tt / $ct" | bc -l)" "$cc" "$tc" "$(echo "$tc / $cc" | bc -l)" "$(field "$c" peak_mib)" "$(field "$t" peak_mib)"
echo "  temper: $(field "$c" isa) kernels; torch: eager float32; load $(cut -d' ' -f1-3 /proc/loadavg); $cpu"
