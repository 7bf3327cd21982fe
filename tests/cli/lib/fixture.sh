# Fixtures the CLI tests share, built once per temper binary into build/test-fixtures/
# (sourced by a test after it sets T; a lock lets tests that run side by side share one build).

# fixture_addition_sft DIR: the starting policy of test_grpo/ppo/online_dpo/lora_online.sh,
# copied to DIR/base and DIR/sft: the tiny Llama (seed 1) with the byte tokenizer without its
# chat template, and it after 24 steps of `temper sft` on "a+b=" -> "\boxed{a+b}" (a, b < 5),
# which leaves it about 40% accurate (the model files, not the checkpoint).
fixture_addition_sft() {
  local dst=$1 root=$PWD/build/test-fixtures key dir
  key=$(cat "$T" tests/cli/lib/fixture.sh tests/oracle/tiny_tokenizer.py | sha256sum | cut -c1-16)
  dir=$root/addition-sft-$key
  mkdir -p "$root" || return 1
  (
    flock 9
    [ -f "$dir/sft/model.safetensors" ] && exit 0
    rm -rf "$root"/addition-sft-*   # built by another binary
    mkdir -p "$dir.tmp" && /usr/bin/python3 - "$dir.tmp" <<'PYEOF'
import json, os, sys
sys.path.insert(0, "tests/oracle")
import tiny_tokenizer
tmp = sys.argv[1]
tok = tiny_tokenizer.write(os.path.join(tmp, "tok"))
cfg = json.load(open(os.path.join(tok, "tokenizer_config.json")))
del cfg["chat_template"]  # plain prompts: what sft trains on is what the online trainers sample from
json.dump(cfg, open(os.path.join(tok, "tokenizer_config.json"), "w"))
with open(os.path.join(tmp, "sft.jsonl"), "w") as f:
    for a in range(5):
        for b in range(5): f.write(json.dumps({"prompt": f"{a}+{b}=", "completion": "\\boxed{%d}" % (a + b)}) + "\n")
PYEOF
    "$T" init --arch llama --preset tiny --tokenizer "$dir.tmp/tok" --out "$dir.tmp/base" --seed 1 >/dev/null 2>&1 &&
    "$T" sft --model "$dir.tmp/base" --data "$dir.tmp/sft.jsonl" --output-dir "$dir.tmp/sft" --max-steps 24 --learning-rate 1e-3 \
      --lr-scheduler-type constant --per-device-train-batch-size 25 --logging-steps 100 --quiet >/dev/null 2>&1 &&
    rm -rf "$dir.tmp"/sft/checkpoint-* && mv "$dir.tmp" "$dir"
  ) 9>"$root/addition-sft.lock"
  cp -r "$dir/base" "$dir/sft" "$dst/" 2>/dev/null
}
