#!/usr/bin/env bash
# tokenize lines: temper's encode throughput against Hugging Face tokenizers (the Rust
# library through its Node addon), qwen3, llama3 and gemma3 on the same corpus (GSM8K
# + MATH-500 problems and solutions + the oracle's hand-written cases), one thread each.
# tests/oracle/bench_tokenize.mjs says what each timer covers; Hugging Face is warmed up.
set -euo pipefail
if [ ! -d tests/oracle/node_modules/@anush008/tokenizers ]; then
  echo "tokenize: skipped (tests/oracle/node_modules missing: run scripts/install-deps)"; exit 0
fi
MAKEFLAGS= make --no-print-directory -s build/temper >/dev/null
BENCH_CPU=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)} \
RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 node tests/oracle/bench_tokenize.mjs
