#!/usr/bin/env bash
# temper grade and temper tool: output format, order, accuracy line, real data.
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PY=/usr/bin/python3
fails=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi; }

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
ok "grade keeps the input bytes and appends extracted, correct, label (as sample writes them) and equal" \
   'head -1 "$tmp/out" | grep -qF "{\"gold\": \"\\\\frac{1}{2}\", \"pred\": \"0.5\", \"extracted\": \"0.5\", \"correct\": true, \"label\": true, \"equal\": true}"'
ok "grade extracts from a completion" 'sed -n 2p "$tmp/out" | grep -q "\"extracted\": \"12\", \"correct\": true"'
ok "grade: reordered tuple is wrong" 'sed -n 3p "$tmp/out" | grep -q "\"equal\": false"'
ok "grade: no answer is null" 'sed -n 4p "$tmp/out" | grep -q "\"extracted\": null, \"correct\": false"'
ok "grade: numeric gold" 'sed -n 5p "$tmp/out" | grep -q "\"equal\": true"'
ok "grade prints accuracy to stderr" 'grep -q "accuracy: 3/5" "$tmp/err"'
"$T" grade --reason "$tmp/in.jsonl" 2>/dev/null | sed -n 4p >"$tmp/r"
ok "grade --reason names the verdict" 'grep -q "\"verdict\": \"no-answer\"" "$tmp/r"'
echo '{"gold": "1"}' >"$tmp/bad.jsonl"
"$T" grade "$tmp/bad.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
ok "grade rejects a line without pred/completion, naming the line" '[ $rc -ne 0 ] && grep -q "bad.jsonl:1" "$tmp/err"'

# issue 10: a numeric gold is read whole (it was cut to 63 characters), a NUL never
# shortens an answer, and grading is by mathematical equality unless told otherwise
g70=1234567890123456789012345678901234567890123456789012345678901234567890
cat > "$tmp/edge.jsonl" <<J
{"gold": $g70, "pred": "${g70:0:63}"}
{"gold": $g70, "pred": "$g70"}
{"gold": "1", "completion": "\\\\boxed{1\u00002}"}
{"gold": "1", "pred": "1\u00002"}
{"gold": "1\u00002", "pred": "1"}
{"gold": "5040", "pred": "7!"}
{"gold": "210", "completion": "so \\\\boxed{\\\\sum_{k=1}^{20} k}"}
J
"$T" grade --reason "$tmp/edge.jsonl" >"$tmp/out" 2>"$tmp/err"; rc=$?
ok "grade: edge cases exit 0" '[ $rc -eq 0 ]'
ok "grade: a 70-digit numeric gold is not cut to 63 digits" 'sed -n 1p "$tmp/out" | grep -q "\"equal\": false"'
ok "grade: a 70-digit numeric gold equals itself" 'sed -n 2p "$tmp/out" | grep -q "\"equal\": true"'
ok "grade: a NUL inside a boxed answer is no answer" 'sed -n 3p "$tmp/out" | grep -q "\"extracted\": null, \"correct\": false"'
ok "grade: a NUL inside pred is not equal" 'sed -n 4p "$tmp/out" | grep -q "\"equal\": false, \"verdict\": \"parse-fail\""'
ok "grade: a NUL inside gold is not equal" 'sed -n 5p "$tmp/out" | grep -q "\"equal\": false"'
ok "grade: 7! = 5040 by default (mathematical equality)" 'sed -n 6p "$tmp/out" | grep -q "\"equal\": true"'
ok "grade: a sum left unevaluated is right by default" 'sed -n 7p "$tmp/out" | grep -q "\"equal\": true"'
"$T" grade --reason --allow-unevaluated=false "$tmp/edge.jsonl" 2>/dev/null | sed -n 6p >"$tmp/r"
ok "grade --allow-unevaluated=false refuses 7! for 5040" 'grep -q "\"equal\": false, \"verdict\": \"unevaluated\"" "$tmp/r"'
"$T" grade --help >"$tmp/help"
ok "grade --help says it grades by mathematical equality" 'grep -q "mathematical equality" "$tmp/help"'

# files that feed each other (issue 12): the gold may be "answer" (as in prompts files and
# sample rows, a GSM8K row's "#### n" included), a regraded sample row gets its verdict
# replaced, and pairs / filter read grade's output
cat > "$tmp/ans.jsonl" <<'J'
{"prompt": "P?", "completion": "so \\boxed{1/2}", "answer": "0.5"}
{"question": "Q?", "completion": "#### 7", "answer": "3 + 4 = 7\n#### 7"}
{"prompt": "P?", "completion": "so \\boxed{3}", "answer": 0.5, "extracted": "0.5", "correct": true, "label": true}
J
"$T" grade "$tmp/ans.jsonl" >"$tmp/out" 2>"$tmp/err"; rc=$?
$PY - "$tmp/out" >"$tmp/chk" <<'P'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = [r["correct"] for r in rows] == [True, True, False] and [r["label"] for r in rows] == [True, True, False]
ok &= rows[2]["extracted"] == "3" and list(rows[2]).count("correct") == 1 and rows[2]["answer"] == 0.5
print("PASS" if ok else "FAIL %s" % rows)
P
ok "grade reads \"answer\" (GSM8K #### too) and replaces an earlier verdict ($(head -c 200 "$tmp/chk"))" '[ $rc -eq 0 ] && grep -q PASS "$tmp/chk"'
ok "a regraded line holds each field once" '[ $(sed -n 3p "$tmp/out" | grep -o "\"correct\"" | wc -l) -eq 1 ]'
cat > "$tmp/g.jsonl" <<'J'
{"prompt": "A?", "completion": "\\boxed{7}", "answer": "7"}
{"prompt": "A?", "completion": "\\boxed{8}", "answer": "7"}
{"prompt": "A?", "completion": "\\boxed{9}", "answer": "7"}
J
"$T" grade "$tmp/g.jsonl" >"$tmp/graded.jsonl" 2>/dev/null
"$T" pairs --data "$tmp/graded.jsonl" --out "$tmp/pairs.jsonl" --per-prompt 2 2>"$tmp/err"; rc=$?
ok "pairs reads grade's output ($(cat "$tmp/err"))" '[ $rc -eq 0 ] && [ $(wc -l <"$tmp/pairs.jsonl") -eq 2 ] && grep -c "chosen.: .*boxed{7}., .rejected" "$tmp/pairs.jsonl" | grep -q 2'
"$T" filter --data "$tmp/graded.jsonl" --out "$tmp/f.jsonl" --correct-only 2>/dev/null; rc=$?
ok "filter reads grade's output" '[ $rc -eq 0 ] && [ $(wc -l <"$tmp/f.jsonl") -eq 1 ]'

# real data: MATH-500 gold solutions as completions
D=data/math500/test.jsonl   # ships with the project: missing is a failure
[ -f "$D" ] || echo "not ok - $D is missing"
if [ -f "$D" ]; then
  python3 -c '
import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l); print(json.dumps({"gold":d["answer"],"completion":d["solution"]}))' "$D" >"$tmp/m.jsonl"
  "$T" grade "$tmp/m.jsonl" >/dev/null 2>"$tmp/err"
  ok "math500 solutions grade 500/500 ($(cat "$tmp/err"))" 'grep -q "accuracy: 500/500" "$tmp/err"'
else
  echo "ok - math500 solutions grade 500/500 # SKIP data not present"
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
[ $fails -eq 0 ]
