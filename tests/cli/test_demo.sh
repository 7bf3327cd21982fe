#!/usr/bin/env bash
# temper demo --quick: issue 18's pipeline at toy sizes (about 68 s of CPU; the test
# runs it twice: ~130 s CPU, 2.5 min at load 4). The command
# itself fails unless every stage wrote its outputs, no post-training method failed and
# SFT beats the untrained model (held-out log-likelihood up, greedy pass@1 not down);
# this test checks its exit status, that each stage's files and the report are there (a
# table with a row per method, an SVG inline in the HTML, no script), that headless
# Chromium renders report.html with the table's rows and the curves (and that the check
# fails on a page without the table), that a second run with the same --seed gives the
# same table, and that bad flags and a foreign --out fail with one line.
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
for f in data/sft1.jsonl data/sft2.jsonl data/step-sft.jsonl data/py.jsonl data/test.jsonl data/test-py.jsonl data/prompts.jsonl \
         tokenizer/tokenizer.json models/init/config.json models/sft-1/model.safetensors models/sft-2/model.safetensors \
         data/samples.jsonl data/rs-sft.jsonl models/rs-sft/model.safetensors eval/rs-sft/summary.json \
         models/kto/model.safetensors eval/kto/summary.json \
         data/pairs.jsonl models/cdpo-positive/model.safetensors models/cdpo-negative/model.safetensors data/token-weights.jsonl \
         models/cdpo/model.safetensors eval/cdpo/summary.json \
         data/step-pairs.jsonl models/step-dpo/model.safetensors eval/step-dpo/summary.json \
         models/online-dpo/round-1/round.json models/online-dpo/round-2/round.json eval/online-dpo/summary.json \
         models/multi-turn-dpo/round-1/round.json models/multi-turn-dpo/round-1/samples.jsonl eval/sft-python/summary.json \
         eval/multi-turn-dpo/summary.json \
         models/grpo/model.safetensors eval/grpo/summary.json eval/grpo-k/summary.json \
         data/rehearsal.jsonl models/grpo-fkl/model.safetensors eval/grpo-fkl/summary.json eval/grpo-fkl-k/summary.json \
         models/ppo/model.safetensors eval/ppo/summary.json \
         eval/init/summary.json eval/sft/summary.json eval/sft-k/summary.json eval/score-sft.jsonl \
         metrics.jsonl curves.svg report.md report.html; do
  check "[ -s '$O/$f' ]" "stage output $f written"
done
stages=("untrained" "SFT (curriculum" "SFT + rejection-sampling SFT" "SFT + KTO" "SFT + cDPO" "SFT + Step-DPO" "SFT + online DPO"
        "SFT, python tool" "SFT + multi-turn DPO" "SFT + GRPO (verifier reward, reverse KL)" "SFT + GRPO (DPH-RL: forward KL" "SFT + PPO")
check "[ \$(grep -c '^| ' '$O/report.md') -eq $((${#stages[@]} + 1)) ]" "report.md: a header and ${#stages[@]} rows"
for s in "${stages[@]}"; do check "grep -qF '| $s' '$O/report.md'" "report.md has the row '$s'"; done
check "! grep -q 'failed' '$O/report.md' && grep -q 'starts from the SFT model' '$O/report.md'" "report.md: no method failed; says each starts from SFT"
check "grep -q 'gain vs SFT \\[95% CI, paired\\]' '$O/report.md' && grep -F '| SFT + GRPO (verifier reward, reverse KL)' '$O/report.md' | grep -Eq '\\| [+-]0\\.[0-9]{3} \\[[+-]0\\.[0-9]{3}, [+-]0\\.[0-9]{3}\\] \\| (yes: a gain|yes: a loss|no) \\|'" \
  "report.md: GRPO's gain vs SFT with its paired interval and whether it excludes 0"
# on the same problems a paired gain is the difference of the two pass@1: each row's gain
# must be its pass@1 minus its baseline's (the SFT row; the python rows: "SFT, python tool")
check "awk -F'|' '/^\\| SFT \\(curriculum/ {b=\$3+0} /^\\| SFT, python tool/ {bp=\$3+0}
  /^\\| SFT \\+/ && \$5 !~ /^ *- *\$/ { base = (\$2 ~ /python/) ? bp : b; g = \$5 + 0; d = \$3 - base;
    if (g - d > 0.0015 || d - g > 0.0015) { print \"bad gain:\", \$2, g, d; bad = 1 } n++ }
  END { exit bad || n < 9 }' '$O/report.md'" "report.md: every method's gain is its pass@1 minus its own baseline's"
check "grep -q '<table id=\"results\">' '$O/report.html' && grep -q '<svg' '$O/report.html' && ! grep -qi '<script' '$O/report.html'" \
  "report.html: the table and the inline SVG, no script"
for st in sft-2 rs-sft kto cdpo step-dpo online-dpo-1 grpo grpo-fkl ppo; do
  check "grep -q '\"stage\": \"$st\"' '$O/metrics.jsonl'" "metrics.jsonl has the curves of $st"
done
check "grep -q '\"accuracy\"' '$O/metrics.jsonl'" "metrics.jsonl has the accuracy points"
check "grep -q 'report.md' '$tmp/stdout' || grep -q '^| untrained' '$tmp/stdout'" "the table is printed"
check "grep -q '\[demo 50/50\]' '$tmp/stderr' && grep -q 'total ETA' '$tmp/stderr'" "a line per stage with the total ETA"

# report.html rendered by headless Chromium (Debian's chromium; scripts/install-deps):
# the DOM it builds has the results table with a row per method, and the curves' SVG
# with drawn lines; a screenshot of the page is taken. The same check on the page with
# its table cut out must fail.
html_ok() {  # html_ok FILE NROWS: the rendered DOM has the table's rows and the curves
  local dom=$tmp/dom.html
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$tmp/chromium" \
    --dump-dom "file://$1" > "$dom" 2> /dev/null || return 1
  python3 - "$dom" "$2" <<'PY' || return 1
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.stack = []; s.rows = []; s.cell = None; s.svg_lines = 0; s.in_results = False
    def handle_starttag(s, t, a):
        a = dict(a)
        if t == "table" and a.get("id") == "results": s.in_results = True
        if s.in_results and t == "tr" and "tbody" in s.stack: s.rows.append([])
        if s.in_results and t == "td": s.cell = ""
        if t in ("polyline", "path", "line") and "svg" in s.stack: s.svg_lines += 1
        s.stack.append(t)
    def handle_endtag(s, t):
        if t == "td" and s.cell is not None and s.rows: s.rows[-1].append(s.cell.strip()); s.cell = None
        if t == "table": s.in_results = False
        while s.stack and s.stack.pop() != t: pass
    def handle_data(s, d):
        if s.cell is not None: s.cell += d
p = P(); p.feed(open(sys.argv[1]).read())
rows = [r for r in p.rows if r]
ok = len(rows) == int(sys.argv[2]) and all(len(r) >= 4 and r[1][:1].isdigit() for r in rows) and p.svg_lines >= 2
sys.exit(0 if ok else 1)
PY
}
if ! command -v chromium > /dev/null; then bad "chromium is installed (scripts/install-deps)"
else
  t0=$(date +%s.%N)
  check "html_ok '$O/report.html' ${#stages[@]}" "headless Chromium: report.html has the table's ${#stages[@]} rows and the curves"
  check "timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir='$tmp/chromium' --window-size=1200,2400 \
           --screenshot='$tmp/shot.png' 'file://$O/report.html' > /dev/null 2>&1 && [ \$(stat -c %s '$tmp/shot.png') -gt 20000 ]" \
    "headless Chromium: a screenshot of report.html"
  sed '/<table id="results">/,/<\/table>/d' "$O/report.html" > "$tmp/notable.html"
  check "! html_ok '$tmp/notable.html' ${#stages[@]}" "the Chromium check fails on a report.html without its table"
  echo "# chromium checks: $(echo "$(date +%s.%N) - $t0" | bc) s"
fi

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
