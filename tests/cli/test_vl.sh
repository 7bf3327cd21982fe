#!/usr/bin/env bash
# Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration) through the CLI on a tiny random model (and
# Qwen2-VL's init and an image dpo run, near the end):
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

# Images in sft: `temper task visual` rows (paths relative to the JSONL's folder) with the answer
# as the completion, a model whose tokenizer has the vision tokens (ids 259..262) and a small
# processor (preprocessor_config.json: at most 112x112 px, 16 image tokens). The loss falls, the
# tower's weights move, and not under --freeze-vision-tower; rows with images on a text model
# fail with one line. The step against float64 PyTorch: tests/oracle/test_vl_train.py.
$PY -c "import sys; sys.path.insert(0, 'tests/oracle'); import tiny_tokenizer; tiny_tokenizer.write('$tmp/vtok', vision=True)"
"$T" init --arch qwen2_5_vl --preset tiny --tokenizer "$tmp/vtok" --vocab-size 264 --out "$tmp/vm" --seed 5 --quiet 2>"$tmp/err"
echo '{"min_pixels": 3136, "max_pixels": 12544}' >"$tmp/vm/preprocessor_config.json"
"$T" task visual --n 8 --seed 1 --out "$tmp/vt" --quiet 2>"$tmp/err"; rc=$?
$PY - "$tmp/vt" <<'P'
import json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/visual.jsonl")]
with open(d + "/sft.jsonl", "w") as f:
    for i, r in enumerate(rows):
        row = {"prompt": r["prompt"], "completion": r["answer"]}
        if i % 2: row["image"] = r["images"][0]   # TRL's single-image column
        else: row["images"] = r["images"]
        f.write(json.dumps(row) + "\n")
P
ok "task visual writes images and rows ($(tail -1 "$tmp/err"))" '[ $rc -eq 0 ] && [ -s "$tmp/vt/sft.jsonl" ]'
for mode in full frozen; do
  extra=(); [ $mode = frozen ] && extra=(--freeze-vision-tower)
  "$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/v$mode" --max-steps 10 --per-device-train-batch-size 4 \
      --learning-rate 3e-3 --logging-steps 1 --quiet "${extra[@]}" 2>"$tmp/err"; rc=$?
  ok "sft on image rows ($mode tower) runs ($(tail -1 "$tmp/err"))" '[ $rc -eq 0 ] && [ -s "$tmp/v$mode/metrics.jsonl" ]'
done
$PY - "$tmp/vm" "$tmp/vfull" "$tmp/vfrozen" >"$tmp/chk" 2>&1 <<'P'
import json, sys, torch
sys.path.insert(0, "tests/oracle")
import torch_ref as R
a, full, frozen = (R.read_model_tensors(d) for d in sys.argv[1:4])
loss = [json.loads(l)["loss"] for l in open(sys.argv[2] + "/metrics.jsonl") if '"loss"' in l]
vis = [k for k in a if k.startswith("visual.") and k.endswith("weight")]
moved = all(not torch.equal(a[k], full[k]) for k in vis)
kept = all(torch.equal(a[k], frozen[k]) for k in a if k.startswith("visual."))
lm = all(not torch.equal(a[k], frozen[k]) for k in a if k.endswith("q_proj.weight") and k.startswith("model."))
print(("PASS" if loss[-1] < 0.5 * loss[0] and moved and kept and lm else "FAIL") +
      f" loss {loss[0]:.3f} -> {loss[-1]:.3f}, tower moved {moved}, frozen tower kept {kept}, LM moved {lm}")
P
ok "image sft: the loss falls, the tower learns, a frozen one keeps its weights ($(tail -1 "$tmp/chk"))" 'grep -q PASS "$tmp/chk"'
"$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/vpack" --max-steps 2 --packing --max-length 256 \
    --per-device-train-batch-size 1 --quiet 2>"$tmp/err"; rc=$?
ok "image sft with --packing (several images in one row) ($(tail -1 "$tmp/err"))" '[ $rc -eq 0 ]'
"$T" init --arch qwen2 --preset tiny --tokenizer "$tmp/vtok" --out "$tmp/vq" --quiet 2>/dev/null
"$T" sft --model "$tmp/vq" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/vq-out" --max-steps 1 --quiet 2>"$tmp/err"; rc=$?
ok "image rows on a text model: one line naming file:line ($(tail -1 "$tmp/err"))" \
   '[ $rc -ne 0 ] && [ $(wc -l <"$tmp/err") -eq 1 ] && grep -q "sft.jsonl:1:.*Qwen2.5-VL" "$tmp/err"'
mkdir -p "$tmp/vbad" && echo '{"images": ["nope.png"], "prompt": "q", "completion": "a"}' >"$tmp/vbad/d.jsonl"
"$T" sft --model "$tmp/vm" --data "$tmp/vbad/d.jsonl" --output-dir "$tmp/vbad-out" --max-steps 1 --quiet 2>"$tmp/err"; rc=$?
ok "a missing image: one line naming the row and the path ($(tail -1 "$tmp/err"))" '[ $rc -ne 0 ] && grep -q "d.jsonl:1:.*nope.png" "$tmp/err"'
# dpo: chosen and rejected share the prompt and its image; the reference log-probs see the image
# too, so the first step's loss is ln 2 (policy = reference), and it falls
$PY -c "
import json
rows = [json.loads(l) for l in open('$tmp/vt/visual.jsonl')][:4]
with open('$tmp/vt/dpo.jsonl', 'w') as f:
    for r in rows: f.write(json.dumps({'images': r['images'], 'prompt': r['prompt'], 'chosen': r['answer'], 'rejected': '99'}) + '\n')
"
"$T" dpo --model "$tmp/vm" --data "$tmp/vt/dpo.jsonl" --output-dir "$tmp/vdpo" --max-steps 3 --per-device-train-batch-size 2 \
    --learning-rate 1e-3 --logging-steps 1 --quiet 2>"$tmp/err"; rc=$?
L=$($PY -c "import json; l=[json.loads(x)['loss'] for x in open('$tmp/vdpo/metrics.jsonl') if '\"loss\"' in x]; print(l[0], l[-1])" 2>/dev/null)
read -r L0 L1 <<<"$L"
ok "dpo on image rows: first loss ln 2, then it falls ($L)" '[ $rc -eq 0 ] && [ "$L0" = 0.6931472 ] && $PY -c "import sys; sys.exit(not $L1 < $L0)"'
# --perturb on the fly: epoch 0's perturbed images are what `temper perturb OP --data F --seed S`
# writes (a step on those files and a step with --perturb OP --perturb-seed S give bit-identical
# weights); --seed stands in for --perturb-seed; another seed draws other images
common=(--max-steps 1 --per-device-train-batch-size 8 --learning-rate 1e-3 --quiet)
for op in concat mixup rotate; do
  "$T" perturb $op --data "$tmp/vt/sft.jsonl" --out "$tmp/p-$op" --seed 3 --quiet 2>"$tmp/err" >/dev/null
  "$T" sft --model "$tmp/vm" --data "$tmp/p-$op/sft.jsonl" --output-dir "$tmp/pa-$op" "${common[@]}" >/dev/null 2>&1
  "$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/pb-$op" "${common[@]}" --perturb $op --perturb-seed 3 >/dev/null 2>"$tmp/err"; rc=$?
  ok "sft --perturb $op --perturb-seed 3 trains on exactly the images of temper perturb $op --seed 3 ($(tail -1 "$tmp/err"))" \
     '[ $rc -eq 0 ] && [ -s "$tmp/pa-$op/model.safetensors" ] && cmp -s "$tmp/pa-$op/model.safetensors" "$tmp/pb-$op/model.safetensors"'
done
"$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/pc" "${common[@]}" --perturb rotate --seed 3 >/dev/null 2>&1
"$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/pd" "${common[@]}" --perturb rotate --perturb-seed 4 >/dev/null 2>&1
loss() { $PY -c "import json; print(json.loads(open('$1/metrics.jsonl').readline())['loss'])"; }
ok "--perturb without --perturb-seed draws from --seed; another seed, other images ($(loss "$tmp/pa-rotate") $(loss "$tmp/pc") $(loss "$tmp/pd"))" \
   '[ "$(loss "$tmp/pc")" = "$(loss "$tmp/pa-rotate")" ] && [ "$(loss "$tmp/pd")" != "$(loss "$tmp/pa-rotate")" ]'
# dpo --perturb: chosen and rejected see one perturbed image (the paper's DPO folders hold one
# image per prompt), and so do the reference log-probs: two steps on `temper perturb`'s files and
# two with --perturb give bit-identical weights, and under LoRA (mixup: the adapters)
# (mixup: the paper's DPO perturbation; rotate changes the image's size, so the rows' token
# counts and the references' lengths change; the ops themselves: the sft tests above)
dcommon=(--max-steps 2 --per-device-train-batch-size 2 --learning-rate 1e-3 --quiet)
for op in mixup rotate; do
  "$T" perturb $op --data "$tmp/vt/dpo.jsonl" --out "$tmp/dp-$op" --seed 3 --quiet 2>"$tmp/err" >/dev/null
  loras=(""); [ $op = mixup ] && loras+=("--use-peft --lora-r 4 --lora-dropout 0")  # mixup: the paper's DPO perturbation
  for lora in "${loras[@]}"; do
    "$T" dpo --model "$tmp/vm" --data "$tmp/dp-$op/dpo.jsonl" --output-dir "$tmp/dpa-$op" "${dcommon[@]}" $lora --overwrite-output-dir >/dev/null 2>&1
    "$T" dpo --model "$tmp/vm" --data "$tmp/vt/dpo.jsonl" --output-dir "$tmp/dpb-$op" "${dcommon[@]}" $lora --overwrite-output-dir \
        --perturb $op --perturb-seed 3 >/dev/null 2>"$tmp/err"; rc=$?
    f=model.safetensors; [ -n "$lora" ] && f=adapter_model.safetensors
    ok "dpo --perturb $op ${lora:+(LoRA) }trains on exactly the images of temper perturb $op --seed 3 ($(tail -1 "$tmp/err"))" \
       '[ $rc -eq 0 ] && [ -s "$tmp/dpa-$op/$f" ] && cmp -s "$tmp/dpa-$op/$f" "$tmp/dpb-$op/$f"'
  done
done
# each epoch its own draw, for the policy and the reference alike: at learning rate 0 every loss
# is ln 2 (the reference saw the epoch's images), and epoch 1 of seed 3 has epoch 0 of seed 4's log-probs
"$T" dpo --model "$tmp/vm" --data "$tmp/vt/dpo.jsonl" --output-dir "$tmp/de3" --max-steps 2 --per-device-train-batch-size 4 \
    --learning-rate 0 --logging-steps 1 --perturb rotate --perturb-seed 3 --quiet >/dev/null 2>&1
"$T" dpo --model "$tmp/vm" --data "$tmp/vt/dpo.jsonl" --output-dir "$tmp/de4" --max-steps 1 --per-device-train-batch-size 4 \
    --learning-rate 0 --logging-steps 1 --perturb rotate --perturb-seed 4 --quiet >/dev/null 2>&1
E=$($PY -c "
import json
a = [json.loads(l) for l in open('$tmp/de3/metrics.jsonl') if '\"loss\"' in l]
b = [json.loads(l) for l in open('$tmp/de4/metrics.jsonl') if '\"loss\"' in l]
c, d = [x['logps/chosen'] for x in a], b[0]['logps/chosen']
ok = len(a) == 2 and all(x['loss'] == 0.6931472 for x in a + b) and abs(c[1] - d) <= 1e-6 * abs(d) and abs(c[0] - c[1]) > 1e-4
print('PASS' if ok else 'FAIL', [x['loss'] for x in a], c, d)" 2>&1)
ok "dpo --perturb draws anew each epoch, references too ($E)" '[ "${E%% *}" = PASS ]'
# Qwen2-VL (the model against float64 PyTorch: tests/oracle/test_vl.py): init --arch qwen2_vl,
# then dpo --perturb mixup on image rows: the first loss is ln 2 and it falls
"$T" init --arch qwen2_vl --preset tiny --tokenizer "$tmp/vtok" --vocab-size 264 --out "$tmp/q2" --seed 5 --quiet 2>"$tmp/err"; rc=$?
cp "$tmp/vm/preprocessor_config.json" "$tmp/q2/"
"$T" dpo --model "$tmp/q2" --data "$tmp/vt/dpo.jsonl" --output-dir "$tmp/q2dpo" --max-steps 3 --per-device-train-batch-size 2 \
    --learning-rate 1e-3 --logging-steps 1 --perturb mixup --quiet >/dev/null 2>"$tmp/err"; rc2=$?
L=$($PY -c "import json; l=[json.loads(x)['loss'] for x in open('$tmp/q2dpo/metrics.jsonl') if '\"loss\"' in x]; print(l[0], l[-1])" 2>/dev/null)
read -r L0 L1 <<<"$L"
ok "Qwen2-VL: init --arch qwen2_vl, dpo --perturb mixup on image rows: ln 2, then it falls ($L; $(tail -1 "$tmp/err"))" \
   '[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && grep -q "\"Qwen2VLForConditionalGeneration\"" "$tmp/q2dpo/config.json" && [ "$L0" = 0.6931472 ] && $PY -c "import sys; sys.exit(not $L1 < $L0)"'
"$T" kto --model "$tmp/vm" --data "$tmp/vt/dpo.jsonl" --output-dir "$tmp/pkto" --max-steps 1 --perturb rotate --quiet 2>"$tmp/err" >/dev/null; rc=$?
ok "--perturb is refused by kto, one line ($(tail -1 "$tmp/err"))" '[ $rc -ne 0 ] && [ $(wc -l <"$tmp/err") -eq 1 ]'
# TRL's conversational vision rows ({"type": "image"} / {"type": "text"} content parts) give the
# very ids of the string-prompt rows (image part first): one step on each, bit-identical weights
$PY - "$tmp/vt" <<'P'
import json, sys
d = sys.argv[1]
with open(d + "/conv.jsonl", "w") as f:
    for l in open(d + "/sft.jsonl"):
        r = json.loads(l)
        r["prompt"] = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["prompt"]}]}]
        r["completion"] = [{"role": "assistant", "content": [{"type": "text", "text": r["completion"]}]}]
        f.write(json.dumps(r) + "\n")
P
"$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/cs" "${common[@]}" >/dev/null 2>&1
"$T" sft --model "$tmp/vm" --data "$tmp/vt/conv.jsonl" --output-dir "$tmp/cc" "${common[@]}" >/dev/null 2>"$tmp/err"; rc=$?
ok "conversational rows with image parts train exactly as string prompts with an image column ($(tail -1 "$tmp/err"))" \
   '[ $rc -eq 0 ] && [ -s "$tmp/cs/model.safetensors" ] && cmp -s "$tmp/cs/model.safetensors" "$tmp/cc/model.safetensors"'
# a new draw each epoch: at learning rate 0, epoch 1 of --perturb-seed 3 (seed 4) sees the images
# epoch 0 of --perturb-seed 4 sees (the same loss up to summation order), not epoch 0's
"$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/pe3" --max-steps 2 --per-device-train-batch-size 8 \
    --learning-rate 0 --logging-steps 1 --perturb rotate --perturb-seed 3 --quiet >/dev/null 2>&1
"$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/pe4" --max-steps 1 --per-device-train-batch-size 8 \
    --learning-rate 0 --logging-steps 1 --perturb rotate --perturb-seed 4 --quiet >/dev/null 2>&1
E=$($PY -c "
import json
a = [json.loads(l)['loss'] for l in open('$tmp/pe3/metrics.jsonl') if '\"loss\"' in l]
b = [json.loads(l)['loss'] for l in open('$tmp/pe4/metrics.jsonl') if '\"loss\"' in l]
print('PASS' if len(a) == 2 and abs(a[1] - b[0]) <= 1e-6 * abs(b[0]) and abs(a[0] - a[1]) > 1e-4 else 'FAIL', a, b)" 2>&1)
ok "--perturb draws anew each epoch: epoch e uses seed S+e ($E)" '[ "${E%% *}" = PASS ]'
# sample/eval/grpo read image rows (tests/cli/test_vl_gen.sh); on a text model they refuse them
"$T" eval --model "$tmp/vq" --data "$tmp/vt/visual.jsonl" --quiet >/dev/null 2>"$tmp/err"; rc=$?
ok "eval on image rows with a text model is refused, one line ($(tail -1 "$tmp/err"))" '[ $rc -ne 0 ] && [ $(wc -l <"$tmp/err") -eq 1 ] && grep -q "visual.jsonl:1:.*vision tower" "$tmp/err"'
