#!/usr/bin/env bash
# Numeric flags out of range and the messages that used to mislead (issue 10, items 18
# and 19): every bad value is refused with a message naming the flag and its range,
# before any work; JSONL mistakes (a pretty-printed file, a byte order mark) are named;
# absurd config.json sizes say so; `temper plot` names the right line; `--model ""`
# says it is empty; no usage line repeats the command name.
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
T=$(realpath "$T")
repo=$PWD
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
PY=/usr/bin/python3
cd "$tmp"

"$T" init --preset tiny --out m 2>/dev/null
$PY -c "import sys; sys.path.insert(0, '$repo/tests/oracle'); import tiny_tokenizer; tiny_tokenizer.write('tok')"
"$T" init --preset tiny --tokenizer tok --out mt 2>/dev/null
ok "init the tiny models" '[ -f m/model.safetensors ] && [ -f mt/tokenizer.json ]'
$PY - <<'P'
import json
with open("dpo.jsonl", "w") as f:
    for i in range(2): f.write(json.dumps({"prompt_input_ids": [1, 2 + i], "chosen_input_ids": [4, 5], "rejected_input_ids": [6, 7]}) + "\n")
with open("p.jsonl", "w") as f: f.write(json.dumps({"prompt": "1+1=", "answer": "2"}) + "\n")
P

# ---- 18. training flags: "name: flags ... expected message"
check_train() {  # name, expected text (grep -F), flags...
  local name=$1 want=$2; shift 2
  rm -rf out
  "$T" dpo --model m --data dpo.jsonl --output-dir out --max-steps 1 --quiet "$@" >/dev/null 2>err; local rc=$?
  ok "dpo $* is refused (rc $rc): $(head -c 160 err)" '[ $rc -ne 0 ] && grep -qF -- "$want" err && [ ! -e out/model.safetensors ]'
}
check_train lr "--learning-rate must be a finite number >= 0 (got -1)" --learning-rate -1
check_train epochs "--num-train-epochs must be a finite number > 0 (got -1)" --num-train-epochs -1 --max-steps -1
check_train maxlen "--max-length must be at least 2" --max-length 0
check_train warmup "--warmup-ratio must be in [0, 1] (got 2)" --warmup-ratio 2
check_train beta1 "--adam-beta1 must be in [0, 1) (got 1.5)" --adam-beta1 1.5
check_train beta2 "--adam-beta2 must be in [0, 1) (got 1)" --adam-beta2 1
check_train smoothing "--label-smoothing must be in [0, 0.5] (got 0.7)" --label-smoothing 0.7
check_train weights "--loss-weights has 1 weights for 2 loss types" --loss-type sigmoid,sft --loss-weights 1
check_train weightnum "--loss-weights: \"x\" is not a finite number" --loss-type sigmoid,sft --loss-weights 1,x
check_train logsteps "--logging-steps must be at least 1" --logging-steps 0
check_train beta "--beta must be a finite number > 0 (got 0)" --beta 0
check_train nan "--learning-rate expects a finite number, got 'nan'" --learning-rate nan
check_train inf "--max-grad-norm expects a finite number, got 'inf'" --max-grad-norm inf
check_train bigint "--per-device-train-batch-size: 4294967297 is out of range" --per-device-train-batch-size 4294967297
rm -rf out
"$T" dpo --model m --data dpo.jsonl --output-dir out --max-steps 1 --quiet --warmup-ratio 1 --adam-beta1 0 --label-smoothing 0.5 2>err; rc=$?
ok "the ends of the ranges are accepted (rc $rc)" '[ $rc -eq 0 ]'
cat > cfg.json <<'J'
{"learning_rate": -0.5}
J
rm -rf out
"$T" dpo --model m --data dpo.jsonl --output-dir out --max-steps 1 --config cfg.json 2>err; rc=$?
ok "a --config file's values are checked too (rc $rc)" '[ $rc -ne 0 ] && grep -qF -- "--learning-rate must be a finite number >= 0 (got -0.5)" err'

# ---- 18. sampling flags
for bad in "--temperature -1|--temperature must be a finite number >= 0" "--temperature nan|--temperature expects a finite number" \
           "--top-p nan|--top-p expects a finite number" "--top-p 1.5|--top-p must be in (0, 1]" "--min-p 2|--min-p must be in [0, 1]" \
           "--top-k -3|--top-k must be >= 0"; do
  flagval=${bad%%|*}; want=${bad#*|}
  "$T" sample --model mt --data p.jsonl --n 1 --max-new-tokens 2 $flagval >out.jsonl 2>err; rc=$?
  ok "sample $flagval is refused (rc $rc): $(head -c 120 err)" '[ $rc -ne 0 ] && grep -qF -- "$want" err'
done

"$T" score --model m --data dpo.jsonl --batch-tokens 0 >/dev/null 2>err; rc=$?
ok "score --batch-tokens 0 is refused (rc $rc)" '[ $rc -ne 0 ] && grep -qF -- "--batch-tokens must be at least 1" err'
"$T" critical-tokens --positive m --negative m --data dpo.jsonl --out w.jsonl --gamma -1 2>err; rc=$?
ok "critical-tokens --gamma -1 is refused (rc $rc)" '[ $rc -ne 0 ] && grep -qF -- "--gamma must be a finite number >= 0" err'

# ---- 19. messages
printf '[\n  {"prompt": "a", "completion": "b"}\n]\n' > arr.jsonl
"$T" sft --model mt --data arr.jsonl --output-dir o1 --max-steps 1 --quiet 2>err; rc=$?
ok "a pretty-printed JSON array: 'expected one JSON object per line' at arr.jsonl:1 (rc $rc)" \
  '[ $rc -ne 0 ] && grep -q "arr.jsonl:1: expected one JSON object per line" err'
printf '[{"prompt": "a", "completion": "b"}]\n' > arr1.jsonl
"$T" sft --model mt --data arr1.jsonl --output-dir o1 --max-steps 1 --quiet 2>err; rc=$?
ok "a one-line JSON array: named as an array (rc $rc)" '[ $rc -ne 0 ] && grep -q "expected one JSON object per line (JSONL), found a JSON array" err'
printf '\xef\xbb\xbf{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n' > bom.jsonl
"$T" sft --model mt --data bom.jsonl --output-dir o2 --max-steps 1 --quiet 2>err; rc=$?
ok "a UTF-8 byte order mark is accepted (rc $rc): $(head -c 120 err)" '[ $rc -eq 0 ]'
mkdir -p h40 l100k
$PY - <<'P'
import json
c = json.load(open("m/config.json"))
json.dump(dict(c, hidden_size=2**40), open("h40/config.json", "w"))
json.dump(dict(c, num_hidden_layers=100000), open("l100k/config.json", "w"))
P
cp m/model.safetensors h40/; cp m/model.safetensors l100k/
"$T" score --model h40 --data dpo.jsonl >/dev/null 2>err; rc=$?
ok "hidden_size 2^40: the message gives the value and the range (rc $rc)" \
  '[ $rc -ne 0 ] && grep -q "\"hidden_size\" is 1099511627776, outside the supported range" err'
"$T" score --model l100k --data dpo.jsonl >/dev/null 2>err; rc=$?
ok "100000 layers: a message about the size, not '0 parameters' (rc $rc): $(head -c 160 err)" \
  '[ $rc -ne 0 ] && ! grep -q "for 0 parameters" err && grep -Eq "100000 layers|GiB|missing tensor model.layers.4" err'
printf '{"step": 1, "loss": 2}\n{"step": 2, "loss": 1.5}\n{"step": 3, "loss": 1}\n{"step": 4, "loss": \n' > met.jsonl
"$T" plot met.jsonl --out met.svg 2>err; rc=$?
ok "temper plot names line 4 of the file (rc $rc): $(cat err)" '[ $rc -ne 0 ] && grep -q "met.jsonl:4: " err && ! grep -q "met.jsonl:0:" err && ! grep -q "line 1," err'
"$T" sft --model "" --data dpo.jsonl --output-dir o3 2>err; rc=$?
ok "sft --model \"\": says it is empty (rc $rc)" '[ $rc -ne 0 ] && grep -q -- "--model is empty" err && ! grep -q "/config.json" err'
"$T" score --model "" --data dpo.jsonl 2>err; rc=$?
ok "score --model \"\": says it is empty (rc $rc)" '[ $rc -ne 0 ] && grep -q "empty string" err && ! grep -q "/config.json" err'
rep=""
for c in init score demo sft dpo kto reward-model grpo ppo rehearsal critical-tokens sample eval pairs filter plot tokenize "data inspect" grade "tool python" "tool calc"; do
  u=$("$T" $c --help 2>&1 | grep -m1 '^usage:')
  echo "$u" | grep -Eq '^usage: temper ([a-z-]+ )+temper ' && rep="$rep [$u]"
done
ok "no usage line repeats the command name$rep" '[ -z "$rep" ]'

exit $fail
