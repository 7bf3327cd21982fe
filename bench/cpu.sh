#!/usr/bin/env bash
# bench/cpu.sh: one line naming this machine's CPU and the vector ISA it offers, for the
# detail lines of `make bench` (scripts/bench exports it as BENCH_CPU), because the
# machines the benches run on differ (AVX2-only AMD, AVX-512 AMD and Intel, AMX Intel):
#   AMD EPYC (family 26 model 2), 2 CPUs; ISA AVX-512 (+BF16), no AMX; OpenBLAS core SkylakeX (OPENBLAS_CORETYPE)
# What each program compiled its own kernels for is in its JSON ("isa"); this line says
# what the CPU has and which OpenBLAS kernels both temper and PyTorch get.
set -euo pipefail
info() { grep -m1 "^$1[[:space:]]*:" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
flags=" $(info flags) "
has() { [[ "$flags" == *" $1 "* ]]; }
if has amx_tile; then isa="AMX + AVX-512"
elif has avx512f; then isa="AVX-512"
elif has avx2; then isa="AVX2"
else isa="SSE only"; fi
extra=()
has avx512_bf16 && extra+=(BF16)
has avx512_fp16 && extra+=(FP16)
has avx_vnni && [[ $isa == AVX2 ]] && extra+=(VNNI)
[ ${#extra[@]} -gt 0 ] && isa="$isa (+$(IFS=,; echo "${extra[*]}"))"
has amx_tile || isa="$isa, no AMX"
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then core="OpenBLAS core ${OPENBLAS_CORETYPE} (OPENBLAS_CORETYPE)"
else core="OpenBLAS core: its own detection"; fi
printf '%s (family %s model %s), %s CPUs; ISA %s; %s\n' "$(info 'model name')" "$(info 'cpu family')" "$(info model)" \
  "$(nproc)" "$isa" "$core"
