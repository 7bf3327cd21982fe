#!/usr/bin/env bash
# temper pairs / temper filter on a hand-written `temper sample` file: 3 prompts
# (mixed, all-correct, all-wrong), exact pair selection (most frequent correct vs most
# frequent incorrect answer), --per-prompt, --seed determinism, --ids columns, filter
# pass-rate bands byte-for-byte, errors with file:line, and `temper dpo` training one
# step on the --ids pairs with a tokenizer-less tiny model.
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
PY=/usr/bin/python3

# prompt A (index 0): 5 samples, correct 7 x2 (c1, c2), wrong 8 x2 (w1, w3), wrong 9 x1 (w2) -> pass 0.4
# prompt B (index 1): 2 correct -> pass 1.0;  prompt C (index 2): 2 wrong (one null) -> pass 0.0
cat > "$tmp/s.jsonl" <<'J'
{"index": 0, "sample": 0, "prompt": "A?", "completion": "w1 8", "answer": "7", "extracted": "8", "correct": false, "label": false, "prompt_input_ids": [10, 11], "completion_input_ids": [20, 21], "completion_logprobs": [-1.5, -2.0]}
{"index": 0, "sample": 1, "prompt": "A?", "completion": "c1 7", "answer": "7", "extracted": "7", "correct": true, "label": true, "prompt_input_ids": [10, 11], "completion_input_ids": [30, 31, 32], "completion_logprobs": [-0.5, -0.25, -1.0]}
{"index": 0, "sample": 2, "prompt": "A?", "completion": "w2 9", "answer": "7", "extracted": "9", "correct": false, "label": false, "prompt_input_ids": [10, 11], "completion_input_ids": [40], "completion_logprobs": [-3.0]}
{"index": 0, "sample": 3, "prompt": "A?", "completion": "w3 8", "answer": "7", "extracted": "8", "correct": false, "label": false, "prompt_input_ids": [10, 11], "completion_input_ids": [50, 51], "completion_logprobs": [-1.0, -1.0]}
{"index": 0, "sample": 4, "prompt": "A?", "completion": "c2 7", "answer": "7", "extracted": "7", "correct": true, "label": true, "prompt_input_ids": [10, 11], "completion_input_ids": [60, 61], "completion_logprobs": [-0.75, -0.5]}
{"index": 1, "sample": 0, "prompt": "B?", "completion": "b1 3", "answer": "3", "extracted": "3", "correct": true, "label": true, "prompt_input_ids": [12], "completion_input_ids": [70], "completion_logprobs": [-0.5]}
{"index": 1, "sample": 1, "prompt": "B?", "completion": "b2 3", "answer": "3", "extracted": "3", "correct": true, "label": true, "prompt_input_ids": [12], "completion_input_ids": [71], "completion_logprobs": [-0.5]}
{"index": 2, "sample": 0, "prompt": "C?", "completion": "z1", "answer": "4", "extracted": null, "correct": false, "label": false, "prompt_input_ids": [13, 14], "completion_input_ids": [80], "completion_logprobs": [-2.5]}
{"index": 2, "sample": 1, "prompt": "C?",   "completion": "z2 5", "answer": "4", "extracted": "5", "correct": false, "label": false, "prompt_input_ids": [13, 14], "completion_input_ids": [81], "completion_logprobs": [-2.5]}
J

"$T" pairs --data "$tmp/s.jsonl" --out "$tmp/p1.jsonl" 2>"$tmp/err"; rc=$?
ok "pairs exits 0" '[ $rc -eq 0 ]'
ok "pairs reports counts: $(cat "$tmp/err")" 'grep -q "9 samples, 3 prompts: 1 with pairs (1 pairs), 1 all-correct, 1 all-wrong" "$tmp/err"'
$PY - "$tmp/p1.jsonl" >"$tmp/chk" <<'P'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = len(rows) == 1 and set(rows[0]) == {"prompt", "chosen", "rejected"}
r = rows[0]
ok &= r["prompt"] == "A?" and r["chosen"] in ("c1 7", "c2 7") and r["rejected"] in ("w1 8", "w3 8")
print("PASS" if ok else "FAIL", rows)
P
ok "default: one pair, most frequent correct (7) vs most frequent wrong (8), TRL fields only" 'grep -q PASS "$tmp/chk"'

"$T" pairs --data "$tmp/s.jsonl" --out "$tmp/p6.jsonl" --per-prompt 100 --ids 2>/dev/null
$PY - "$tmp/p6.jsonl" >"$tmp/chk" <<'P'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ids = {"c1 7": [30, 31, 32], "c2 7": [60, 61], "w1 8": [20, 21], "w2 9": [40], "w3 8": [50, 51]}
ok = len(rows) == 6 and len({(r["chosen"], r["rejected"]) for r in rows}) == 6
ok &= all(r["prompt_input_ids"] == [10, 11] and r["chosen_input_ids"] == ids[r["chosen"]] and r["rejected_input_ids"] == ids[r["rejected"]] for r in rows)
# the answer-8 samples come before the answer-9 one: the first two pairs use them
ok &= all(r["rejected"] != "w2 9" for r in rows[:2]) and sum(r["rejected"] == "w2 9" for r in rows) == 2
ok &= rows[0]["chosen"] != rows[1]["chosen"] and rows[0]["rejected"] != rows[1]["rejected"]
print("PASS" if ok else "FAIL", rows)
P
ok "--per-prompt 100 --ids: all 2x3 distinct pairs, frequent answers first, exact sampled ids" 'grep -q PASS "$tmp/chk"'

"$T" pairs --data "$tmp/s.jsonl" --out "$tmp/q1.jsonl" --per-prompt 3 --seed 5 2>/dev/null
"$T" pairs --data "$tmp/s.jsonl" --out "$tmp/q2.jsonl" --per-prompt 3 --seed 5 2>/dev/null
ok "same --seed: byte-identical pairs" 'cmp -s "$tmp/q1.jsonl" "$tmp/q2.jsonl"'
for s in 1 2 3 4 6 7 8 9; do "$T" pairs --data "$tmp/s.jsonl" --out "$tmp/q_$s.jsonl" --per-prompt 3 --seed $s 2>/dev/null; done
ok "other seeds: other orders within an answer class" '! (for s in 1 2 3 4 6 7 8 9; do cmp -s "$tmp/q1.jsonl" "$tmp/q_$s.jsonl" || exit 1; done)'

# answers are grouped by the verifier, as maj@k groups them: wrong answers "0.5" and
# "1/2" are one class (2 votes) and beat "2" seen first (1 vote); strcmp would rank "2" first
cat > "$tmp/v.jsonl" <<'J'
{"prompt": "V?", "completion": "c 3", "extracted": "3", "correct": true}
{"prompt": "V?", "completion": "w 2", "extracted": "2", "correct": false}
{"prompt": "V?", "completion": "w half", "extracted": "0.5", "correct": false}
{"prompt": "V?", "completion": "w frac", "extracted": "1/2", "correct": false}
J
for s in 0 1 2 3; do "$T" pairs --data "$tmp/v.jsonl" --out "$tmp/v$s.jsonl" --seed $s 2>/dev/null; done
ok "pairs groups answers with the verifier: 0.5 and 1/2 are one answer, rejected first" \
   '! grep -q "\"rejected\": \"w 2\"" "$tmp/v0.jsonl" "$tmp/v1.jsonl" "$tmp/v2.jsonl" "$tmp/v3.jsonl" && [ $(cat "$tmp"/v?.jsonl | wc -l) -eq 4 ]'

# --gold-as-chosen (issue 12): a prompt with no correct sample takes the data's reference
# solution as chosen ("solution", else \boxed{answer}); prompt C of s.jsonl has answer 4
"$T" pairs --data "$tmp/s.jsonl" --out "$tmp/gc.jsonl" --per-prompt 5 --gold-as-chosen 2>"$tmp/err"; rc=$?
$PY - "$tmp/gc.jsonl" >"$tmp/chk" <<'P'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
c = [r for r in rows if r["prompt"] == "C?"]
ok = len(c) == 2 and all(r["chosen"] == "\\boxed{4}" for r in c) and {r["rejected"] for r in c} == {"z1", "z2 5"}
ok &= len([r for r in rows if r["prompt"] == "A?"]) == 5
print("PASS" if ok else "FAIL", rows)
P
ok "--gold-as-chosen: the all-wrong prompt gets \\boxed{answer} as chosen vs its wrong samples ($(tail -1 "$tmp/err"))" '[ $rc -eq 0 ] && grep -q PASS "$tmp/chk"'
cat > "$tmp/sol.jsonl" <<'J'
{"prompt": [{"role": "user", "content": "S?"}], "completion": "w 5", "answer": "4", "solution": "2 + 2 = \\boxed{4}", "extracted": "5", "correct": false}
{"prompt": [{"role": "user", "content": "S?"}], "completion": "w 6", "answer": "4", "solution": "2 + 2 = \\boxed{4}", "extracted": "6", "correct": false}
{"prompt": [{"role": "user", "content": "T?"}], "completion": "w 1", "extracted": "1", "correct": false}
J
"$T" pairs --data "$tmp/sol.jsonl" --out "$tmp/gs.jsonl" --per-prompt 5 --gold-as-chosen 2>"$tmp/err"; rc=$?
$PY - "$tmp/gs.jsonl" >"$tmp/chk" <<'P'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = len(rows) == 2 and all(r["chosen"] == "2 + 2 = \\boxed{4}" and r["prompt"] == [{"role": "user", "content": "S?"}] for r in rows)
print("PASS" if ok else "FAIL", rows)
P
ok "--gold-as-chosen takes the row's solution; message-list prompts group and are written as lists" '[ $rc -eq 0 ] && grep -q PASS "$tmp/chk"'
ok "--gold-as-chosen counts prompts without a reference ($(tail -1 "$tmp/err"))" 'grep -q "1 all-wrong prompts paired with their reference solution, 1 without one skipped" "$tmp/err"'
"$T" pairs --data "$tmp/s.jsonl" --out "$tmp/x.jsonl" --gold-as-chosen --ids 2>"$tmp/err"; rc=$?
ok "--gold-as-chosen with --ids is a usage error" '[ $rc -eq 2 ] && grep -q "no sampled ids" "$tmp/err"'

# filter: byte-for-byte lines (prompt C's line has two spaces after "prompt":)
f() { "$T" filter --data "$tmp/s.jsonl" --out "$tmp/f.jsonl" "$@" 2>"$tmp/ferr"; }
f; ok "filter with no bands keeps every line byte-for-byte" 'cmp -s "$tmp/s.jsonl" "$tmp/f.jsonl"'
f --min-pass-rate 0.1 --max-pass-rate 0.9
ok "filter [0.1, 0.9]: the mixed prompt only ($(cat "$tmp/ferr"))" 'diff -q <(sed -n 1,5p "$tmp/s.jsonl") "$tmp/f.jsonl" >/dev/null'
f --max-pass-rate 0
ok "filter [0, 0]: the all-wrong prompt" 'diff -q <(sed -n 8,9p "$tmp/s.jsonl") "$tmp/f.jsonl" >/dev/null'
f --min-pass-rate 0.4 --max-pass-rate 0.4
ok "filter [0.4, 0.4]: bands are inclusive" '[ $(wc -l <"$tmp/f.jsonl") -eq 5 ]'
f --correct-only
ok "filter --correct-only: the correct samples (rejection-sampled SFT)" 'diff -q <(sed -n "2p;5p;6p;7p" "$tmp/s.jsonl") "$tmp/f.jsonl" >/dev/null'
f --correct-only --one-per-prompt
ok "filter --correct-only --one-per-prompt: first correct sample of each prompt" 'diff -q <(sed -n "2p;6p" "$tmp/s.jsonl") "$tmp/f.jsonl" >/dev/null'
f --min-pass-rate 0.5 --correct-only
ok "filter --min-pass-rate 0.5 --correct-only: easy prompt's correct samples" 'diff -q <(sed -n "6p;7p" "$tmp/s.jsonl") "$tmp/f.jsonl" >/dev/null'
ok "filter reports counts" 'grep -q "9 samples, 3 prompts (1 all-correct, 1 all-wrong); 1 prompts with pass rate in \[0.5, 1\]; kept 2 samples" "$tmp/ferr"'

# errors: file:line
printf '{"prompt": "A?", "completion": "x", "correct": true}\n{"prompt": "A?", "completion": "y"}\n' >"$tmp/bad.jsonl"
"$T" pairs --data "$tmp/bad.jsonl" --out "$tmp/x.jsonl" 2>"$tmp/err"; rc=$?
ok "missing verdict: exit 1, file:line ($(cat "$tmp/err"))" '[ $rc -eq 1 ] && grep -q "bad.jsonl:2: no verdict" "$tmp/err" && [ ! -e "$tmp/x.jsonl" ]'
"$T" pairs --data "$tmp/bad.jsonl" --out "$tmp/x.jsonl" --ids 2>"$tmp/err"; rc=$?
ok "--ids without ids: file:line" '[ $rc -eq 1 ] && grep -q "bad.jsonl:1: --ids needs" "$tmp/err"'
printf '{"prompt": "A?", "completion": "x", "correct": true}\n{"prompt": \n' >"$tmp/bad2.jsonl"
"$T" filter --data "$tmp/bad2.jsonl" --out "$tmp/x.jsonl" 2>"$tmp/err"; rc=$?
ok "bad JSON: file:line" '[ $rc -eq 1 ] && grep -q "bad2.jsonl:2:" "$tmp/err"'
"$T" filter --data "$tmp/s.jsonl" --out "$tmp/x.jsonl" --min-pass-rate 0.8 --max-pass-rate 0.2 2>/dev/null; rc=$?
ok "filter: empty band is a usage error" '[ $rc -eq 2 ]'

# the --ids pairs train with temper dpo without a tokenizer
"$T" init --arch llama --preset tiny --vocab-size 300 --out "$tmp/m" --seed 1 >/dev/null 2>&1
"$T" dpo --model "$tmp/m" --data "$tmp/p6.jsonl" --output-dir "$tmp/o" --max-steps 1 >"$tmp/dlog" 2>&1; rc=$?
ok "temper dpo trains a step on the --ids pairs (no tokenizer)" '[ $rc -eq 0 ] || { tail -3 "$tmp/dlog"; false; }'
exit $fail
