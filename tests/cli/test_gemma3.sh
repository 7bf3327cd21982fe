#!/usr/bin/env bash
# Gemma 3 (Gemma3ForCausalLM) through the CLI on a tiny random model whose sliding
# window (6) is shorter than its sequences: temper init --arch gemma3, one step of
# sft and of dpo, the saved model reloading, and the KV-cached sampler's log-probs
# against `temper score` (the trainer's forward).
cd "$(dirname "$0")/../.."
T=$(realpath "${TEMPER:-build/temper}")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi; }
PY=/usr/bin/python3

$PY -c "import sys; sys.path.insert(0, 'tests/oracle'); import tiny_tokenizer; tiny_tokenizer.write('$tmp/tok')"
"$T" init --arch gemma3 --preset tiny --tokenizer "$tmp/tok" --out "$tmp/m" --seed 5 2>"$tmp/err"; rc=$?
ok "init --arch gemma3 ($(tail -1 "$tmp/err"))" '[ $rc -eq 0 ] && grep -q "\"Gemma3ForCausalLM\"" "$tmp/m/config.json" && grep -q "\"model_type\": \"gemma3_text\"" "$tmp/m/config.json"'
# a window shorter than the sequences below, and norms away from their zero init
$PY - "$tmp/m" <<'P'
import json, sys, torch
sys.path.insert(0, "tests/oracle")
import torch_ref as R
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
cfg["sliding_window"] = 6
ts = R.read_model_tensors(d)
g = torch.Generator().manual_seed(1)
for n, t in ts.items():
    if n.endswith("norm.weight"):
        ts[n] = t + 0.2 * torch.randn(t.shape, generator=g)
R.write_model_dir(d, cfg, ts)
P
V=$($PY -c "import json; print(json.load(open('$tmp/m/config.json'))['vocab_size'])")
$PY - "$V" "$tmp" <<'P'
import json, random, sys
V, d = int(sys.argv[1]), sys.argv[2]
r = random.Random(3)
ids = lambda n: [r.randrange(3, V) for _ in range(n)]
with open(d + "/sft.jsonl", "w") as f:
    for _ in range(4):
        f.write(json.dumps({"prompt_input_ids": ids(9), "completion_input_ids": ids(12)}) + "\n")
with open(d + "/dpo.jsonl", "w") as f:
    for _ in range(4):
        f.write(json.dumps({"prompt_input_ids": ids(9), "chosen_input_ids": ids(11), "rejected_input_ids": ids(13)}) + "\n")
P
"$T" sft --model "$tmp/m" --data "$tmp/sft.jsonl" --output-dir "$tmp/sft" --max-steps 1 --per-device-train-batch-size 4 \
    --learning-rate 1e-3 --logging-steps 1 --quiet 2>"$tmp/err"; rc=$?
ok "sft: one step on gemma3 ($(tail -1 "$tmp/err"))" \
   '[ $rc -eq 0 ] && grep -q "\"loss\"" "$tmp/sft/metrics.jsonl" && [ -f "$tmp/sft/model.safetensors" ] && grep -q Gemma3ForCausalLM "$tmp/sft/config.json"'
"$T" dpo --model "$tmp/m" --data "$tmp/dpo.jsonl" --output-dir "$tmp/dpo" --max-steps 1 --per-device-train-batch-size 4 \
    --learning-rate 1e-3 --logging-steps 1 --quiet 2>"$tmp/err"; rc=$?
ok "dpo: one step on gemma3 ($(tail -1 "$tmp/err"))" \
   '[ $rc -eq 0 ] && grep -q "rewards/chosen" "$tmp/dpo/metrics.jsonl" && [ -f "$tmp/dpo/model.safetensors" ]'
# the trained model is a gemma3 directory the oracle loads, and the step moved it
$PY - "$tmp/m" "$tmp/sft" >"$tmp/chk" 2>&1 <<'P'
import sys, torch
sys.path.insert(0, "tests/oracle")
import torch_ref as R
a, b = R.load_model(sys.argv[1]), R.load_model(sys.argv[2])
pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
moved = sum(int(not torch.equal(pa[n], pb[n])) for n in pa)
print("PASS" if pa.keys() == pb.keys() and moved == len(pa) else f"FAIL {moved} of {len(pa)} tensors moved")
P
ok "sft output: the oracle loads it as gemma3, every tensor moved ($(tail -1 "$tmp/chk"))" 'grep -q PASS "$tmp/chk"'

# the sampler (KV cache, window across prefix and sample slots) and the trainer agree
echo '{"prompt": "Tom has 3 apples and buys 4 more. How many apples?", "answer": "7"}' >"$tmp/p.jsonl"
"$T" sample --model "$tmp/sft" --data "$tmp/p.jsonl" --n 2 --max-new-tokens 24 --seed 3 --out "$tmp/s.jsonl" 2>"$tmp/err"; rc=$?
ok "sample from the sft'd gemma3 ($(tail -1 "$tmp/err"))" '[ $rc -eq 0 ] && [ $(wc -l <"$tmp/s.jsonl") -eq 2 ]'
"$T" score --model "$tmp/sft" --data "$tmp/s.jsonl" --out "$tmp/sc.jsonl" --per-token 2>"$tmp/err" >/dev/null; rc=$?
$PY - "$tmp/sc.jsonl" >"$tmp/chk" 2>&1 <<'P'
import json, sys
w, n, plen = 0.0, 0, 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    plen = max(plen, len(r.get("prompt_input_ids") or []))
    for a, b in zip(r["completion_logprobs"], r["token_logprobs"]):
        w = max(w, abs(a - b)); n += 1
print("maxdiff %.3e over %d tokens" % (w, n), "PASS" if w < 1e-5 and n > 12 else "FAIL")
P
ok "sampler log-probs == temper score's (model_forward) on gemma3, window 6 < the sequences: $(cat "$tmp/chk")" '[ $rc -eq 0 ] && grep -q PASS "$tmp/chk"'
[ $fails -eq 0 ]
