#!/usr/bin/env bash
# grade line: answer extraction + exact equality over the MATH-500 gold solutions, one
# core (target >= 20,000 items/s, issue 5).
set -euo pipefail
MAKEFLAGS= make --no-print-directory -s build/bench/grade >/dev/null
pin=(); command -v taskset >/dev/null && pin=(taskset -c 0)
"${pin[@]}" build/bench/grade --seconds "${GRADE_SECONDS:-3}"
echo "  ${BENCH_CPU:-cpu: $(bash bench/cpu.sh)} (scalar code, one core)"
