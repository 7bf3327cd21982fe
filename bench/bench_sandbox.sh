#!/usr/bin/env bash
# sandbox line: a trivial call ("x = 1 + 1; x") to a warm python sandbox, calls/s and
# p50/p99 latency (target p50 <= 5 ms, issue 5).
set -euo pipefail
MAKEFLAGS= make --no-print-directory -s build/bench/sandbox >/dev/null
build/bench/sandbox --calls "${SANDBOX_CALLS:-1000}" --warmup 20
echo "  ${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}"
