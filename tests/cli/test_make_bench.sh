#!/usr/bin/env bash
# `make bench` on a clean tree builds every bench program before it runs scripts/bench
# (issue 9: BENCHES was used as a prerequisite before it was defined, so none was
# built and the first bench script failed with status 127). Dry run into an empty
# build folder: nothing is compiled or run.
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1: $3"; fi; }
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
