#!/usr/bin/env bash
# temper tool python: flag validation and the sandbox's promises seen from the command
# line, in both isolation modes (bwrap and the unshare+seccomp fallback). The library
# side (forged replies, the timeout while sending, the syscalls) is in tests/unit/test_tools.c.
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
T=$(realpath "$T")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); sed 's/^/# /' "$tmp/err" 2>/dev/null | head -5; fi; }

# item 18: each bad value is refused with one line that names the flag and the range
for a in "--timeout nan" "--timeout inf" "--timeout 1e300" "--timeout 0" "--output-limit -1" "--memory-mb 0" \
         "--memory-mb 99999999999" "--max-code-bytes 0" "--sandbox none"; do
  echo 'print(1)' | "$T" tool python $a >"$tmp/out" 2>"$tmp/err"; rc=$?
  flag=${a%% *}
  ok "tool python $a is refused (exit 2) with one line naming $flag and its range (nan/inf: the flag parser refuses any non-finite number)" \
     '[ $rc -eq 2 ] && [ $(wc -l <"$tmp/err") -eq 1 ] && { grep -q -- "$flag expects a finite number" "$tmp/err" || { grep -q -- "$flag must be" "$tmp/err" && grep -Eq "\[|\(|auto, bwrap or unshare" "$tmp/err"; }; } && [ ! -s "$tmp/out" ]'
done

# item 16: code over --max-code-bytes (default 1 MiB) is refused before it is sent
python3 -c 'print("#" * 2000000)' >"$tmp/big.py"
t0=$(date +%s.%N)
"$T" tool python <"$tmp/big.py" >"$tmp/out" 2>"$tmp/err"; rc=$?
ok "2 MB of code is refused, naming --max-code-bytes" '[ $rc -eq 1 ] && grep -q -- "--max-code-bytes (1048576 bytes)" "$tmp/err"'
"$T" tool python --max-code-bytes 3000000 <"$tmp/big.py" >"$tmp/out" 2>"$tmp/err"; rc=$?
ok "--max-code-bytes 3000000 lets it run" '[ $rc -eq 0 ]'

for mode in bwrap unshare; do
  # item 16: NUL bytes are carried, not cut
  printf 'print("a\\x00b")' | "$T" tool python --sandbox $mode >"$tmp/out" 2>"$tmp/err"
  ok "[$mode] a NUL byte in the output is printed, not cut" '[ "$(od -An -c "$tmp/out" | tr -s " ")" = " a \\0 b \\n" ]'
  printf 'x = 1\0\nprint(2)' | "$T" tool python --sandbox $mode >"$tmp/out" 2>"$tmp/err"; rc=$?
  ok "[$mode] a NUL byte in the code is an error, not a silent cut" '[ $rc -eq 1 ] && grep -q "null bytes" "$tmp/out"'

  # item 12: from a working directory under /tmp, nothing of the host shows
  (cd /tmp && echo 'import os
print([p for p in ["/var/log", "/sys/class/net", "/home", "/root", "/work", "/etc/hostname", "/etc/shadow", "/tmp/'"$(basename "$tmp")"'"] if os.path.lexists(p)])' |
    "$T" tool python --sandbox $mode) >"$tmp/out" 2>"$tmp/err"
  ok "[$mode] run from /tmp: no host path is visible ($(head -c 200 "$tmp/out"))" '[ "$(cat "$tmp/out")" = "[]" ]'

  # item 14: --memory-mb 256 bounds /dev/shm (and /tmp) to 128 MiB
  echo 'import os
n = 0
try:
    for i in range(20):
        with open(f"/dev/shm/f{i}", "wb") as f:
            for j in range(16): f.write(b"x" * (1 << 20)); n += 1
except OSError as e: print(e.errno, n <= 128)' | "$T" tool python --sandbox $mode --memory-mb 256 >"$tmp/out" 2>"$tmp/err"
  ok "[$mode] 320 MB into /dev/shm under --memory-mb 256 stops with ENOSPC ($(cat "$tmp/out"))" '[ "$(cat "$tmp/out")" = "28 True" ]'

  # item 13: a sandbox holding all its processes does not stop a second one from starting
  if [ "$(id -u)" -eq 0 ]; then
    echo 'import os, time
n = 0
try:
    while True:
        if os.fork() == 0: time.sleep(30); os._exit(0)
        n += 1
except OSError: pass
time.sleep(3)
print(n >= 32)' | "$T" tool python --sandbox $mode --timeout 20 >"$tmp/first" 2>&1 &
    first=$!
    sleep 1.5
    # (the second one forks: one process over the limit could still exec in the old fallback)
    echo 'import subprocess; print(subprocess.run(["echo", "42"], capture_output=True, text=True).stdout, end="")' |
      "$T" tool python --sandbox $mode >"$tmp/out" 2>"$tmp/err"; rc=$?
    wait $first
    ok "[$mode] a second sandbox runs while the first holds its process limit" '[ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = 42 ] && grep -q True "$tmp/first"'
  else
    echo "ok - [$mode] per-sandbox process limit # SKIP not root: every sandbox has the caller's uid"
  fi
done
[ $fails -eq 0 ]
