#!/usr/bin/env bash
# bench/device_generate.sh: bench/bench_generate.sh on a quiet machine, pinned to two
# physical cores (the development machine has 2, shared with other jobs).
set -u
lscpu | grep -E "Model name" ; nproc
cpus=$(lscpu -p=CPU,CORE | grep -v '^#' | sort -t, -k2,2n -u | head -2 | cut -d, -f1 | paste -sd,)
echo "pinned to CPUs $cpus"
make -j16 build/temper build/bench/generate >/tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
/usr/bin/python3 -c "import torch; print('torch', torch.__version__)"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
grep -q avx512f /proc/cpuinfo && export OPENBLAS_CORETYPE=SkylakeX
taskset -c $cpus bash bench/bench_generate.sh
