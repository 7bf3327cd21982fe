#!/usr/bin/env bash
# `make bench` on a clean tree builds every bench program before it runs scripts/bench
# (issue 9: BENCHES was used as a prerequisite before it was defined, so none was
# built and the first bench script failed with status 127). Dry run into an empty
# build folder: nothing is compiled or run.
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1: $3"; fails=$((fails + 1)); fi; }
make -n bench BUILD="$tmp/build" >"$tmp/plan" 2>&1; rc=$?
ok "make -n bench succeeds on an empty build folder" '[ $rc -eq 0 ]' "status $rc: $(tail -3 "$tmp/plan")"
run=$(grep -n 'scripts/bench' "$tmp/plan" | head -1 | cut -d: -f1)
for src in bench/*.c; do
  b=$(basename "$src" .c)
  [ "$b" = kernels_bench ] && continue  # a throwaway helper, not part of make bench
  at=$(grep -n -- "-o $tmp/build/bench/$b " "$tmp/plan" | head -1 | cut -d: -f1)
  ok "make bench builds build/bench/$b before running scripts/bench" \
     '[ -n "$at" ] && [ -n "$run" ] && [ "$at" -lt "$run" ]' "link line ${at:-missing}, scripts/bench at ${run:-missing}"
done
# The grpo_step lines (issue 11) and ppo_step lines (issue 13), at a smoke-test size: each
# script runs both sides and prints its line, and each side generated exactly prompts x
# generations x new tokens (the equal-work rule: no early stop); ppo's detail lines carry the
# rollout forward + GAE. Builds bench/KIND_step first (make check's `all` does not build the
# bench programs). About 20 s per kind on 2 loaded cores.
for kind in grpo ppo; do
  if make --no-print-directory -s build/bench/${kind}_step >"$tmp/build.log" 2>&1; then
    echo "ok - make builds build/bench/${kind}_step"
    out=$(CONFIGS=tiny PROMPTS=2 GENS=2 NEW=4 PROMPT=4 MICRO=2 STEPS=1 WARMUP=0 BENCH_MODELS="$tmp/models" \
          bash bench/bench_${kind}.sh 2>&1); rc=$?
    ok "bench/bench_${kind}.sh prints a ${kind}_step line with a ratio and the generation/training split" \
       '[ $rc -eq 0 ] && echo "$out" | grep -Eq "^${kind}_step tiny: temper [0-9.]+ s/step \(generation [0-9.]+, training [0-9.]+\), torch [0-9.]+ s/step .*, ratio [0-9.]+ \(generation [0-9.]+, training [0-9.]+\)$"' \
       "status $rc: $(echo "$out" | tail -3)"
    for side in temper torch; do
      ok "${kind}_step: $side generates exactly 2 x 2 x 4 tokens (no early stop)" \
         'echo "$out" | grep -Eq "^  $side: .*\(16 tokens\)"' "$(echo "$out" | grep "^  $side:" | head -1)"
    done
    [ $kind = ppo ] && ok "ppo_step: both sides time the rollout forward + GAE" \
       '[ "$(echo "$out" | grep -Ec "^  (temper|torch): rollout forward\+GAE [0-9.]+ s, ")" -eq 2 ]' "$(echo "$out" | grep "^  t")"
  else
    echo "not ok - make builds build/bench/${kind}_step: $(tail -3 "$tmp/build.log")"; fails=$((fails + 1))
  fi
done
[ $fails -eq 0 ]
