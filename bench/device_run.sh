#!/usr/bin/env bash
# bench/device_run.sh: build and time the kernels on a quiet machine, pinned to two
# physical cores (the target machine has 2). Throwaway helper for bench/kernels_bench.c.
set -u
lscpu | grep -E "Model name|^CPU\(s\)|Thread\(s\) per core|^Model:" ; nproc
cpus=$(lscpu -p=CPU,CORE | grep -v '^#' | sort -t, -k2,2n -u | head -2 | cut -d, -f1 | paste -sd,)
echo "pinned to CPUs $cpus"
make -j8 build/libtemper.a build/tests/test_kernels >/tmp/build.log 2>&1 || { tail -20 /tmp/build.log; exit 1; }
gcc -std=c17 -O3 -march=native -fopenmp -D_GNU_SOURCE -I. -Isrc bench/kernels_bench.c build/libtemper.a \
    -lopenblas -lm -o build/kernels_bench || exit 1
export OMP_NUM_THREADS=2
taskset -c $cpus ./build/tests/test_kernels | tail -1
for sec in "$@"; do
  for ct in SkylakeX ""; do
    echo "== section $sec, OPENBLAS_CORETYPE='$ct'"
    if [ -n "$ct" ]; then OPENBLAS_CORETYPE=$ct taskset -c $cpus ./build/kernels_bench $sec
    else env -u OPENBLAS_CORETYPE taskset -c $cpus ./build/kernels_bench $sec; fi
    [ "$sec" = handoff ] || break  # only the handoff section is run with the default core too
  done
done
