#!/usr/bin/env bash
# temper's OpenMP wait policy (cli/omp_wait.h): passive unless the user chose one, read
# by libgomp itself (OMP_DISPLAY_ENV=verbose prints what libgomp parsed at load; the
# last block is the one of the process that runs the command).
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1: $3"; fails=$((fails + 1)); fi; }
spin() { env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$@" OMP_DISPLAY_ENV=verbose "$T" --help 2>&1 >/dev/null |
         sed -n "s/^ *GOMP_SPINCOUNT = '\(.*\)'/\1/p" | tail -1; }

s=$(spin); ok "default: libgomp runs with spin count 0 (passive)" '[ "$s" = 0 ]' "GOMP_SPINCOUNT $s (libgomp's own default is 300000)"
s=$(spin OMP_WAIT_POLICY=active); ok "OMP_WAIT_POLICY=active set by the user is kept" '[ "$s" = 30000000000 ]' "GOMP_SPINCOUNT $s"
s=$(spin GOMP_SPINCOUNT=1234); ok "GOMP_SPINCOUNT set by the user is kept" '[ "$s" = 1234 ]' "GOMP_SPINCOUNT $s"

# The re-exec keeps the arguments, stdin and the exit status, and runs the command once.
env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$T" --help >"$tmp/out" 2>"$tmp/err"; rc=$?
ok "temper --help after the re-exec: status 0, usage printed once" \
   '[ $rc -eq 0 ] && [ "$(grep -c "^usage: temper" "$tmp/out")" = 1 ]' "rc $rc, $(grep -c '^usage' "$tmp/out") usage lines"
env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$T" no-such-command >/dev/null 2>"$tmp/err"; rc=$?
ok "an unknown command keeps its status 2 and one message" \
   '[ $rc -eq 2 ] && [ "$(grep -c "unknown command .no-such-command." "$tmp/err")" = 1 ]' "rc $rc: $(head -c 200 "$tmp/err")"
printf '%s\n' '{"gold": "12", "pred": "12.0"}' >"$tmp/in.jsonl"
env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$T" grade - <"$tmp/in.jsonl" >"$tmp/out" 2>"$tmp/err"; rc=$?
ok "stdin reaches the re-executed command" '[ $rc -eq 0 ] && grep -q "\"equal\": true" "$tmp/out"' "rc $rc: $(head -c 200 "$tmp/err")"
[ $fails -eq 0 ]
