#!/usr/bin/env bash
# temper task synth and temper tokenizer train from the command line: files are
# deterministic, `temper grade` (the verifier) marks every solution correct, the python
# variant's code prints its answer in the real sandbox, the trainers' loaders read the rows
# with the trained tokenizer (tool output masked), and bad flags get one line naming them.
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
T=$(realpath "$T")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; sed 's/^/# /' "$tmp/err" 2>/dev/null | head -5; fi; }

"$T" task synth --level 1-5 --n 500 --seed 3 --out "$tmp/a.jsonl" 2>"$tmp/err"
"$T" task synth --level 1-5 --n 500 --seed 3 --out "$tmp/b.jsonl" 2>>"$tmp/err"
"$T" task synth --level 1-5 --n 500 --seed 4 --out "$tmp/c.jsonl" 2>>"$tmp/err"
ok "task synth writes --n rows, the same bytes for the same seed, others for another" \
   '[ $(wc -l <"$tmp/a.jsonl") -eq 500 ] && cmp -s "$tmp/a.jsonl" "$tmp/b.jsonl" && ! cmp -s "$tmp/a.jsonl" "$tmp/c.jsonl"'
ok "levels 1-5 round-robin: 100 rows of each level" \
   '[ $(grep -c "\"level\": 3," "$tmp/a.jsonl") -eq 100 ]'

for tools in none calculator; do
  "$T" task synth --level 1-5 --n 1000 --seed 5 --tools $tools --split test --out "$tmp/$tools.jsonl" 2>"$tmp/err"
  "$T" grade "$tmp/$tools.jsonl" >"$tmp/graded" 2>"$tmp/err"
  ok "temper grade marks all 1000 $tools test solutions correct against their answers" \
     '[ $(grep -c "\"correct\": true" "$tmp/graded") -eq 1000 ] && grep -q "accuracy: 1000/1000" "$tmp/err"'
done
ok "the none variant has no <<annotations>>, the calculator variant one per step" \
   '! grep -q "<<" "$tmp/none.jsonl" && grep -q "<<[0-9]*\*[0-9]*=[0-9]*>>" "$tmp/calculator.jsonl"'

# the python blocks run in the sandbox and print the answer
"$T" task synth --level 4-5 --n 3 --seed 1 --tools python --split validation --out "$tmp/py.jsonl" 2>"$tmp/err"
good=0
for i in 1 2 3; do
  sed -n "${i}p" "$tmp/py.jsonl" | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); c = r["completion"][0]["content"]
open(sys.argv[1] + "/code.py", "w").write(c.split("```python\n")[1].split("```")[0])
open(sys.argv[1] + "/ans", "w").write(r["answer"])' "$tmp"
  out=$("$T" tool python <"$tmp/code.py" 2>>"$tmp/err")
  [ "$out" = "$(cat "$tmp/ans")" ] && good=$((good + 1))
done
ok "3 python solutions print their answer in the sandbox (temper tool python)" '[ $good -eq 3 ]'

# the tokenizer, and the trainers' loaders reading the rows through it
"$T" tokenizer train --data "$tmp/calculator.jsonl,$tmp/py.jsonl" --vocab-size 512 --out "$tmp/tok" 2>"$tmp/err"
ok "tokenizer train writes tokenizer.json and tokenizer_config.json" '[ -s "$tmp/tok/tokenizer.json" ] && grep -q "<|im_end|>" "$tmp/tok/tokenizer_config.json"'
"$T" data inspect "$tmp/py.jsonl" --model "$tmp/tok" --format sft >"$tmp/sft" 2>"$tmp/err"
ok "sft reads a python row: the tool output is a user turn, not trained" \
   'tr "\n" " " <"$tmp/sft" | grep -Eq "\`\`\`<\|im_end\|>\]\] <\|im_start\|>user \`\`\`output [0-9]+ \`\`\`<\|im_end\|> <\|im_start\|>assistant \[\[The answer is"'
"$T" data inspect "$tmp/calculator.jsonl" --model "$tmp/tok" --format prompts >"$tmp/pr" 2>"$tmp/err"
ok "the prompts format (sample, eval, grpo) reads the gold answer" 'grep -q -- "--- answer: [0-9]" "$tmp/pr"'

# bad flags: exit 2, one line naming the flag
for a in "--level 0" "--level 2-9" "--tools calc" "--split dev" "--n 0"; do
  "$T" task synth $a --out "$tmp/x.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
  flag=${a%% *}
  ok "task synth $a is refused (exit 2) naming $flag" '[ $rc -eq 2 ] && [ $(wc -l <"$tmp/err") -eq 1 ] && grep -q -- "$flag" "$tmp/err"'
done
"$T" tokenizer train --data "$tmp/none.jsonl" --vocab-size 100 --out "$tmp/t2" >/dev/null 2>"$tmp/err"; rc=$?
ok "tokenizer train --vocab-size 100 is refused naming the flag" '[ $rc -eq 2 ] && grep -q -- "--vocab-size" "$tmp/err"'
"$T" tokenizer train --data "$tmp/missing.jsonl" --out "$tmp/t2" >/dev/null 2>"$tmp/err"; rc=$?
ok "tokenizer train on a missing file names it" '[ $rc -eq 1 ] && grep -q "missing.jsonl" "$tmp/err"'
"$T" task synth --level 2 --n 3 --out - >"$tmp/so" 2>"$tmp/err"; rc=$?
ok "--out - writes the rows to stdout" '[ $rc -eq 0 ] && [ $(wc -l <"$tmp/so") -eq 3 ] && [ ! -s "$tmp/err" ]'
"$T" task synth --level 2 --n 3 --out /dev/null >/dev/null 2>"$tmp/err"; rc=$?
ok "--out of a device writes to it, not replacing it by a file" '[ $rc -eq 0 ] && [ -c /dev/null ]'
echo first >"$tmp/log"
"$T" task synth --level 2 --n 3 --out /dev/stdout >>"$tmp/log" 2>"$tmp/err"; rc=$?
ok "--out /dev/stdout appends through the shell's redirection; /dev/stdout stays a link" '[ $rc -eq 0 ] && [ $(wc -l <"$tmp/log") -eq 4 ] && [ -L /dev/stdout ]'
"$T" task synth --level 3 --n 2 --tools calculator --step-labels --out "$tmp/st.jsonl" 2>"$tmp/err"
ok "--step-labels writes Step-DPO's 'Step k:' format" 'grep -q "Let'"'"'s think step by step.\\\\nStep 1: .*\\\\nStep 3: " "$tmp/st.jsonl"'
