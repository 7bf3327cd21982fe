#!/usr/bin/env bash
# temper grade and temper tool: output format, order, accuracy line, real data.
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fi; }

cat > "$tmp/in.jsonl" <<'J'
{"gold": "\\frac{1}{2}", "pred": "0.5"}
{"gold": "12", "completion": "so she has 12 apples.\n#### 12"}
{"gold": "(1,2)", "completion": "The point is \\boxed{(2,1)}."}
{"gold": "7", "completion": "I don't know"}
{"gold": 1000, "pred": "1,000"}
J
"$T" grade "$tmp/in.jsonl" >"$tmp/out" 2>"$tmp/err"; rc=$?
ok "grade exits 0" '[ $rc -eq 0 ]'
ok "grade writes one line per input" '[ $(wc -l <"$tmp/out") -eq 5 ]'
ok "grade keeps the input bytes and appends extracted/equal" \
   'head -1 "$tmp/out" | grep -qF "{\"gold\": \"\\\\frac{1}{2}\", \"pred\": \"0.5\", \"extracted\": \"0.5\", \"equal\": true}"'
ok "grade extracts from a completion" 'sed -n 2p "$tmp/out" | grep -q "\"extracted\": \"12\", \"equal\": true"'
ok "grade: reordered tuple is wrong" 'sed -n 3p "$tmp/out" | grep -q "\"equal\": false"'
ok "grade: no answer is null" 'sed -n 4p "$tmp/out" | grep -q "\"extracted\": null, \"equal\": false"'
ok "grade: numeric gold" 'sed -n 5p "$tmp/out" | grep -q "\"equal\": true"'
ok "grade prints accuracy to stderr" 'grep -q "accuracy: 3/5" "$tmp/err"'
"$T" grade --reason "$tmp/in.jsonl" 2>/dev/null | sed -n 4p >"$tmp/r"
ok "grade --reason names the verdict" 'grep -q "\"verdict\": \"no-answer\"" "$tmp/r"'
echo '{"gold": "1"}' >"$tmp/bad.jsonl"
"$T" grade "$tmp/bad.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
ok "grade rejects a line without pred/completion, naming the line" '[ $rc -ne 0 ] && grep -q "bad.jsonl:1" "$tmp/err"'

# real data: MATH-500 gold solutions as completions
D=../shared/data/math500/test.jsonl; [ -f "$D" ] || D=/work/shared/data/math500/test.jsonl
if [ -f "$D" ]; then
  python3 -c '
import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l); print(json.dumps({"gold":d["answer"],"completion":d["solution"]}))' "$D" >"$tmp/m.jsonl"
  "$T" grade "$tmp/m.jsonl" >/dev/null 2>"$tmp/err"
  ok "math500 solutions grade 500/500 ($(cat "$tmp/err"))" 'grep -q "accuracy: 500/500" "$tmp/err"'
fi

# tools
out=$(printf 'x = 6\nprint(x * 7)\n' | "$T" tool python 2>/dev/null)
ok "tool python runs code" '[ "$out" = "42" ]'
out=$(printf '1/0\n' | "$T" tool python 2>/dev/null); rc=$?
ok "tool python prints the error line" '[ "$out" = "ZeroDivisionError: division by zero" ] && [ $rc -eq 1 ]'
out=$(printf 'while True: pass\n' | "$T" tool python --timeout 1 2>&1)
ok "tool python times out" 'echo "$out" | grep -q "TimeoutError"'
out=$("$T" tool calc "48/2*(1+1/2)")
ok "tool calc is exact" '[ "$out" = "36" ]'
"$T" tool calc "1/0" 2>"$tmp/err"; rc=$?
ok "tool calc division by zero is an error" '[ $rc -ne 0 ] && grep -q "division by zero" "$tmp/err"'
