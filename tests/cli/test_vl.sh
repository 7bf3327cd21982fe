#!/usr/bin/env bash
# Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration) through the CLI on a tiny random model:
# temper init --arch qwen2_5_vl with a small tokenizer (the vision ids move to the top of its
# vocabulary), one sft step on text with and without --freeze-vision-tower, the saved directory
# keeping transformers' names and the tower's tensors (frozen: bit for bit), and the flag refused
# on a text model. The model against PyTorch: tests/oracle/test_vl.py.
cd "$(dirname "$0")/../.."
T=$(realpath "${TEMPER:-build/temper}")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fi; }
PY=/usr/bin/python3

$PY -c "import sys; sys.path.insert(0, 'tests/oracle'); import tiny_tokenizer; tiny_tokenizer.write('$tmp/tok')"
"$T" init --arch qwen2_5_vl --preset tiny --tokenizer "$tmp/tok" --out "$tmp/m" --seed 5 2>"$tmp/err"; rc=$?
ok "init --arch qwen2_5_vl ($(tail -1 "$tmp/err"))" \
   '[ $rc -eq 0 ] && grep -q "\"Qwen2_5_VLForConditionalGeneration\"" "$tmp/m/config.json" && grep -q "\"vision_config\"" "$tmp/m/config.json" && grep -q "mrope_section" "$tmp/m/config.json"'
V=$($PY -c "import json; print(json.load(open('$tmp/m/config.json'))['vocab_size'])")
$PY - "$V" "$tmp" <<'P'
import json, random, sys
V, d = int(sys.argv[1]), sys.argv[2]
r = random.Random(3)
ids = lambda n: [r.randrange(3, V - 5) for _ in range(n)]
with open(d + "/sft.jsonl", "w") as f:
    for _ in range(4):
        f.write(json.dumps({"prompt_input_ids": ids(9), "completion_input_ids": ids(12)}) + "\n")
P
for mode in full frozen; do
  extra=(); [ $mode = frozen ] && extra=(--freeze-vision-tower)
  "$T" sft --model "$tmp/m" --data "$tmp/sft.jsonl" --output-dir "$tmp/$mode" --max-steps 1 --per-device-train-batch-size 4 \
      --learning-rate 1e-3 --logging-steps 1 --quiet "${extra[@]}" 2>"$tmp/err"; rc=$?
  ok "sft ($mode tower): one text step ($(tail -1 "$tmp/err"))" \
     '[ $rc -eq 0 ] && grep -q "\"loss\"" "$tmp/$mode/metrics.jsonl" && grep -q Qwen2_5_VLForConditionalGeneration "$tmp/$mode/config.json"'
done
$PY - "$tmp/m" "$tmp/full" "$tmp/frozen" >"$tmp/chk" 2>&1 <<'P'
import sys, torch
sys.path.insert(0, "tests/oracle")
import torch_ref as R
a, full, frozen = (R.read_model_tensors(d) for d in sys.argv[1:4])
vis = [k for k in a if k.startswith("visual.")]
lm_moved = all(not torch.equal(a[k], frozen[k]) for k in a if k.startswith("model.layers.") and k.endswith("q_proj.weight"))
vis_same = all(torch.equal(a[k], frozen[k]) for k in vis)
# text only: no image reaches the tower, so even unfrozen its tensors keep their values
print("PASS" if a.keys() == full.keys() == frozen.keys() and vis and lm_moved and vis_same
      and list(a["visual.patch_embed.proj.weight"].shape)[1:] == [3, 2, 14, 14] else
      f"FAIL keys {a.keys() == full.keys() == frozen.keys()} vis {len(vis)} lm_moved {lm_moved} vis_same {vis_same}")
P
ok "saved directories keep visual.* (5-D patch embedding) and model.layers.*; frozen tower unchanged ($(tail -1 "$tmp/chk"))" 'grep -q PASS "$tmp/chk"'
"$T" init --arch qwen2 --preset tiny --tokenizer "$tmp/tok" --out "$tmp/q" --quiet 2>/dev/null
"$T" sft --model "$tmp/q" --data "$tmp/sft.jsonl" --output-dir "$tmp/q-out" --max-steps 1 --quiet --freeze-vision-tower 2>"$tmp/err"; rc=$?
ok "--freeze-vision-tower on a text model is refused ($(tail -1 "$tmp/err"))" '[ $rc -ne 0 ] && grep -q "not a vision-language model" "$tmp/err"'
