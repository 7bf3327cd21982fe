#!/usr/bin/env bash
# temper demo --quick: issue 18's pipeline at toy sizes (about 40 s of CPU). The command
# itself fails unless every stage wrote its outputs and SFT beats the untrained model
# (held-out log-likelihood up, greedy pass@1 not down); this test checks its exit status,
# that each stage's files and the report are there (a table with a row per stage, an SVG
# inline in the HTML, no script), that a second run with the same --seed gives the same
# table, and that bad flags and a foreign --out fail with one line.
cd "$(dirname "$0")/../.."
T=${TEMPER:-$PWD/build/temper}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
tmp=$(mktemp -d /tmp/temper-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }

O=$tmp/out
if "$T" demo --quick --seed 0 --out "$O" > "$tmp/stdout" 2> "$tmp/stderr"; then ok "demo --quick exits 0"
else bad "demo --quick exits 0: $(grep 'temper demo' "$tmp/stderr" | tail -2)"; fi
for f in data/sft1.jsonl data/sft2.jsonl data/test.jsonl data/prompts.jsonl tokenizer/tokenizer.json \
         models/init/config.json models/sft-1/model.safetensors models/sft-2/model.safetensors models/grpo/model.safetensors \
         models/online-dpo/round-1/round.json eval/init/summary.json eval/sft/summary.json eval/sft-k/summary.json \
         eval/grpo/summary.json eval/online-dpo/summary.json eval/score-sft.jsonl metrics.jsonl curves.svg report.md report.html; do
  check "[ -s '$O/$f' ]" "stage output $f written"
done
check "[ \$(grep -c '^| ' '$O/report.md') -eq 5 ]" "report.md: a header and 4 stage rows"
check "grep -q '^| SFT' '$O/report.md' && grep -q '^| + GRPO' '$O/report.md' && grep -q '^| + online DPO' '$O/report.md'" "report.md names the stages"
check "grep -q 'gain vs SFT \[95% CI, paired\]' '$O/report.md' && grep '^| + GRPO' '$O/report.md' | grep -Eq '\| [+-]0\.[0-9]{3} \[[+-]0\.[0-9]{3}, [+-]0\.[0-9]{3}\] \| (yes: a gain|yes: a loss|no) \|'" \
  "report.md: GRPO's gain vs SFT with its paired interval and whether it excludes 0"
check "grep -q '<table id=\"results\">' '$O/report.html' && grep -q '<svg' '$O/report.html' && ! grep -qi '<script' '$O/report.html'" \
  "report.html: the table and the inline SVG, no script"
check "grep -q '\"stage\": \"grpo\"' '$O/metrics.jsonl' && grep -q '\"accuracy\"' '$O/metrics.jsonl'" "metrics.jsonl has every stage's curves"
check "grep -q 'report.md' '$tmp/stdout' || grep -q '^| untrained' '$tmp/stdout'" "the table is printed"
check "grep -q '\[demo 20/20\]' '$tmp/stderr' && grep -q 'total ETA' '$tmp/stderr'" "a line per stage with the total ETA"

# the same seed, the same table (run again over the earlier demo's directory)
cp "$O/report.md" "$tmp/first.md"
if "$T" demo --quick --seed 0 --out "$O" > /dev/null 2>&1; then
  check "diff <(grep '^| ' '$tmp/first.md' | cut -d'|' -f1-8) <(grep '^| ' '$O/report.md' | cut -d'|' -f1-8) > /dev/null" "--seed 0 twice: the same table"
else bad "a second demo --quick over the earlier output"; fi

mkdir -p "$tmp/foreign" && touch "$tmp/foreign/precious"
"$T" demo --quick --out "$tmp/foreign" 2> "$tmp/err" && bad "a foreign --out is refused" || \
  check "grep -q 'not an earlier demo' '$tmp/err' && [ -e '$tmp/foreign/precious' ]" "a foreign --out is refused and left alone"
"$T" demo --bogus 2> "$tmp/err" && bad "unknown flag fails" || check "[ \$(wc -l < '$tmp/err') -ge 1 ]" "unknown flag fails"
exit $((fails > 0))
