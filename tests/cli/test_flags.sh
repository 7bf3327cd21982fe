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
for c in init score demo sft dpo kto reward-model grpo ppo rehearsal online-dpo step-pairs critical-tokens sample eval pairs filter plot tokenize "data inspect" grade "tool python" "tool calc"; do
  u=$("$T" $c --help 2>&1 | grep -m1 '^usage:')
  echo "$u" | grep -Eq '^usage: temper ([a-z-]+ )+temper ' && rep="$rep [$u]"
done
ok "no usage line repeats the command name$rep" '[ -z "$rep" ]'

# ---- issue 12 item 4: flags that mean what they say
printf '{"prompt_input_ids": [1, 2], "completion_input_ids": [4, 5]}\n' > sft.jsonl
for bad in "sft|--beta 0.1|--beta is a flag of dpo and kto, not of sft" "kto|--rpo-alpha 1|--rpo-alpha is a flag of dpo, not of kto" \
           "reward-model|--per-sequence|--per-sequence is a flag of sft, not of reward-model" "sft|--loss_type=ipo|--loss-type is a flag of dpo and kto, not of sft" \
           "dpo|--desirable-weight 2|--desirable-weight is a flag of kto, not of dpo"; do
  IFS='|' read -r c f want <<<"$bad"
  rm -rf out
  "$T" $c --model m --data sft.jsonl --output-dir out --max-steps 1 $f >/dev/null 2>err; rc=$?
  ok "$c $f is refused (rc $rc): $(head -c 120 err)" '[ $rc -eq 2 ] && grep -qF -- "$want" err && [ ! -e out ]'
done
printf '{"beta": 0.2}\n' > beta.json
"$T" sft --model m --data sft.jsonl --output-dir out --max-steps 1 --config beta.json >/dev/null 2>err; rc=$?
ok "a config's beta is refused by sft as well (rc $rc)" '[ $rc -eq 2 ] && grep -qF -- "--beta is a flag of dpo and kto" err'
ok "sft --help lists only sft's flags" '! "$T" sft --help | grep -Eq -- "--(beta|loss-type|rpo-alpha|desirable-weight) " && "$T" sft --help | grep -q -- "--per-sequence"'
ok "dpo --help lists dpo's flags, not kto's" '"$T" dpo --help | grep -q -- "--rpo-alpha" && ! "$T" dpo --help | grep -q -- "--desirable-weight"'
v=$("$T" --version); ok "temper --version ($v)" '[[ "$v" =~ ^temper\ [0-9]+\.[0-9]+\.[0-9]+$ ]]'
rep=""
for c in init score demo sft dpo kto reward-model grpo ppo rehearsal online-dpo step-pairs critical-tokens sample eval pairs filter plot tokenize "data inspect" grade "tool python" "tool calc"; do
  "$T" $c --quiet --help >/dev/null 2>&1 || rep="$rep [$c]"
done
ok "every command accepts --quiet$rep" '[ -z "$rep" ]'
"$T" sample --model mt --data p.jsonl --n 2 --max-new-tokens 3 --quiet >s.jsonl 2>err; rc=$?
ok "sample --quiet: samples on stdout, nothing on stderr (rc $rc): $(head -c 200 err)" '[ $rc -eq 0 ] && [ ! -s err ] && [ $(wc -l < s.jsonl) -eq 2 ]'
"$T" pairs --data s.jsonl --out pq.jsonl --quiet 2>err; rc=$?
ok "pairs --quiet says nothing (rc $rc): $(head -c 200 err)" '[ $rc -eq 0 ] && [ ! -s err ]'
"$T" init --preset tiny --out mq --quiet >/dev/null 2>err; rc=$?
ok "init --quiet prints nothing (rc $rc): $(cat err)" '[ $rc -eq 0 ] && [ ! -s err ] && [ -f mq/config.json ]'
# YAML config with TRL's keys: aliases, a list, a nested mapping, numbers as PyYAML reads them
cat > run.yaml <<'Y'
# a TRL-style config
model_name_or_path: m
dataset_name: dpo.jsonl
output_dir: ydir
learning_rate: 5.0e-7
max_steps: 2
beta: .25
bf16: true
fp16: false
loss_type: [sigmoid, sft]
loss_weights:
  - 1
  - 0.5
logging_steps: 1
quiet: yes
Y
"$T" dpo --config run.yaml 2>err; rc=$?
ok "dpo --config run.yaml with TRL's keys trains (rc $rc): $(tail -c 200 err)" '[ $rc -eq 0 ] && [ -f ydir/model.safetensors ] && grep -q "config key .fp16. has no meaning" err && grep -q "bf16 GEMM on" err'
rm -rf ydir2
"$T" dpo --config run.yaml --output-dir ydir2 --max-steps 1 2>/dev/null; rc=$?
ok "the command line wins over the YAML file (rc $rc)" '[ $rc -eq 0 ] && [ -f ydir2/model.safetensors ] && [ $(wc -l < ydir2/metrics.jsonl) -ge 1 ] && ! grep -q "\"step\": 2" ydir2/metrics.jsonl'
rm -rf trlnames
"$T" sft --model_name_or_path m --dataset_name sft.jsonl --output-dir trlnames --max-steps 1 --quiet 2>err; rc=$?
ok "TRL's --model_name_or_path and --dataset_name are --model and --data (rc $rc): $(tail -c 150 err)" '[ $rc -eq 0 ] && [ -f trlnames/model.safetensors ]'
printf 'learning_rate: -1\nmodel: m\n' > neg.yaml
"$T" dpo --config neg.yaml --data dpo.jsonl --output-dir ydir3 2>err; rc=$?
ok "a YAML file's values are checked (rc $rc)" '[ $rc -ne 0 ] && grep -qF -- "--learning-rate must be a finite number >= 0 (got -1)" err'
printf 'model: m\nloss_type: [sigmoid\n' > broken.yaml
"$T" dpo --config broken.yaml 2>err; rc=$?
ok "a broken YAML file is named with its line (rc $rc): $(cat err)" '[ $rc -ne 0 ] && grep -q "broken.yaml:[0-9]*: YAML: " err'
printf -- '- a\n- b\n' > list.yaml
"$T" dpo --config list.yaml 2>err; rc=$?
ok "a YAML list is not a config (rc $rc): $(cat err)" '[ $rc -ne 0 ] && grep -q "list.yaml:1: YAML: the config must be a mapping" err'
printf 'base: &b 1\nother: *b\n' > alias.yaml
"$T" dpo --config alias.yaml 2>err; rc=$?
ok "YAML aliases are refused, not guessed (rc $rc): $(cat err)" '[ $rc -ne 0 ] && grep -q "alias.yaml:1: YAML: anchors" err'

# --data mixes files (repeated or comma list), --data-weights takes floor(w·n) of each
$PY - <<'P'
import json
for name, n in (("a.jsonl", 6), ("b.jsonl", 4)):
    with open(name, "w") as f:
        for i in range(n): f.write(json.dumps({"prompt_input_ids": [1, 2 + i], "completion_input_ids": [4, 5 + i % 3]}) + "\n")
with open("bad2.jsonl", "w") as f:
    f.write(json.dumps({"prompt_input_ids": [1], "completion_input_ids": [4]}) + "\n{oops\n")
P
ex() { grep -o '"train_examples": [0-9]*' "$1/metrics.jsonl" | head -1 | grep -o '[0-9]*$'; }
rm -rf mix1 mix2 mix3
"$T" sft --model m --data a.jsonl --data b.jsonl --output-dir mix1 --max-steps 1 --quiet 2>err; rc=$?
ok "sft --data a --data b trains on both files: $(ex mix1) examples (rc $rc)" '[ $rc -eq 0 ] && [ "$(ex mix1)" = 10 ]'
"$T" sft --model m --data a.jsonl,b.jsonl --data-weights 0.5,2.5 --output-dir mix2 --max-steps 1 --quiet 2>err; rc=$?
ok "--data-weights 0.5,2.5 takes 3 of 6 and 10 of 4: $(ex mix2) examples (rc $rc)" '[ $rc -eq 0 ] && [ "$(ex mix2)" = 13 ]'
"$T" sft --model m --data a.jsonl,b.jsonl --data-weights 1 --output-dir mix3 --max-steps 1 --quiet 2>err; rc=$?
ok "one weight for two files is refused (rc $rc): $(cat err)" '[ $rc -ne 0 ] && grep -q "data-weights has 1 weights for 2 --data files" err'
"$T" sft --model m --data a.jsonl --data bad2.jsonl --output-dir mix3 --max-steps 1 --quiet 2>err; rc=$?
ok "a bad line in the second file is named by that file (rc $rc): $(cat err)" '[ $rc -ne 0 ] && grep -q "bad2.jsonl:2: " err'

# --packing true: one step over one packed row of all six examples is the step a batch of six takes
rm -rf pk1 pk2 pk3
"$T" sft --model m --data a.jsonl --output-dir pk1 --packing true --max-length 32 --per-device-train-batch-size 1 --max-steps 1 --logging-steps 1 --quiet 2>/dev/null; r1=$?
"$T" sft --model m --data a.jsonl --output-dir pk2 --packing=false --max-length 32 --per-device-train-batch-size 6 --max-steps 1 --logging-steps 1 --quiet 2>/dev/null; r2=$?
same=$($PY - <<'P'
import json
a, b = (json.loads(open(d + "/metrics.jsonl").readline()) for d in ("pk1", "pk2"))
ok = a.get("packed_rows") == 1 and abs(a["loss"] - b["loss"]) <= 1e-5 * abs(b["loss"]) and abs(a["grad_norm"] - b["grad_norm"]) <= 1e-4 * b["grad_norm"]
print("yes" if ok else "no: %s vs %s" % (a, b))
P
)
ok "sft --packing: 6 examples in 1 row of 32 tokens, loss and grad norm equal a 6-example batch ($same)" '[ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ "$same" = yes ]'
"$T" dpo --model m --data dpo.jsonl --output-dir pk3 --packing true --max-steps 1 --quiet 2>err; rc=$?
ok "dpo --packing is refused (rc $rc): $(cat err)" '[ $rc -eq 2 ] && grep -q "packing is a flag of sft" err'

exit $fail
