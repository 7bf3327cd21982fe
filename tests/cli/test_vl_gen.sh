#!/usr/bin/env bash
# Images in the sampler (issue 17): `temper sample|eval|grpo|score` on prompts with images, on a tiny
# Qwen2.5-VL (tiny tokenizer with the vision tokens, a processor of at most 16 image tokens) and
# `temper task visual` rows. sample writes the images and the expanded prompt ids, the same
# bytes for batch 1 and 8 under --deterministic, rows with and without images mixed, and its
# log-probs equal `temper score`'s bit for bit (1e-5 without --deterministic); eval grades;
# grpo (after a short sft that teaches "#### n") runs with its sampler/trainer mismatch exactly 0
# under --deterministic and moves the weights; grpo --perturb rotate --perturb-seed 3 for one step
# gives bit for bit the weights of grpo on `temper perturb rotate --seed 3`'s files (and not those
# of grpo on the originals); --freeze-vision-tower keeps the tower, which grpo trains by default;
# image prompts on a text model, and in ppo, fail with one line. The float64 reference of a
# greedy continuation: tests/oracle/test_vl_generate.py. About 20 s of CPU.
cd "$(dirname "$0")/../.."
T=$(realpath "${TEMPER:-build/temper}")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fi; }
PY=/usr/bin/python3

# the vision tokenizer, plus one special token for the model's 264th id (sampled, never decoded as text)
$PY -c "
import json, sys; sys.path.insert(0, 'tests/oracle'); import tiny_tokenizer
tiny_tokenizer.write('$tmp/vtok', vision=True)
t = json.load(open('$tmp/vtok/tokenizer.json'))
t['added_tokens'].append(dict(t['added_tokens'][-1], id=263, content='<|extra_0|>'))
json.dump(t, open('$tmp/vtok/tokenizer.json', 'w'), ensure_ascii=False)"
"$T" init --arch qwen2_5_vl --preset tiny --tokenizer "$tmp/vtok" --vocab-size 264 --out "$tmp/vm" --seed 5 --quiet 2>/dev/null
echo '{"min_pixels": 3136, "max_pixels": 12544}' >"$tmp/vm/preprocessor_config.json"
"$T" task visual --n 8 --seed 1 --out "$tmp/vt" --quiet 2>/dev/null
$PY - "$tmp/vt" <<'P'
import json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/visual.jsonl")]
with open(d + "/mixed.jsonl", "w") as f:  # image rows, a text row, a single-image column
    for i, r in enumerate(rows[:4]):
        if i == 1: r = {"prompt": "What is 2+3?", "answer": "5"}
        if i == 2: r = dict(r, image=r["images"][0]); del r["images"]
        f.write(json.dumps(r) + "\n")
with open(d + "/sft.jsonl", "w") as f:
    for r in rows: f.write(json.dumps({"images": r["images"], "prompt": r["prompt"], "completion": "#### " + r["answer"]}) + "\n")
P

for b in 1 8; do
  "$T" sample --deterministic --model "$tmp/vm" --data "$tmp/vt/mixed.jsonl" --n 2 --max-new-tokens 6 --temperature 1 --seed 3 \
      --batch $b --out "$tmp/s$b.jsonl" 2>"$tmp/err"; rc=$?
done
C=$($PY - "$tmp/s8.jsonl" <<'P'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pads = [r["prompt_input_ids"].count(261) for r in rows]
ok = len(rows) == 8 and pads[2] == pads[3] == 0 and all(p > 1 for p in pads[:2] + pads[4:]) \
     and all(("images" in r) == (p > 0) for r, p in zip(rows, pads)) and all(0 < len(r["completion_logprobs"]) <= 6 for r in rows) \
     and all(261 not in r["completion_input_ids"] for r in rows)
print("PASS" if ok else "FAIL", "image pads per prompt", pads)
P
)
ok "sample on image rows mixed with a text row: images kept, pads expanded ($C)" '[ $rc -eq 0 ] && [[ "$C" == PASS* ]]'
ok "sample --deterministic: the same bytes for batch 1 and 8" '[ -s "$tmp/s1.jsonl" ] && cmp -s "$tmp/s1.jsonl" "$tmp/s8.jsonl"'
cat > "$tmp/cmp.py" <<'P'
import json, sys
n = bad = 0; w = 0.0
for l in open(sys.argv[1]):
    r = json.loads(l)
    for a, b in zip(r["completion_logprobs"], r["token_logprobs"]):
        n += 1; bad += a != b; w = max(w, abs(a - b))
tol = float(sys.argv[2])
print("%d of %d tokens differ (max %.1e)" % (bad, n, w), "PASS" if n > 0 and (bad == 0 if tol == 0 else w <= tol) else "FAIL")
P
"$T" score --deterministic --model "$tmp/vm" --data "$tmp/s8.jsonl" --out "$tmp/sc8.jsonl" --per-token 2>/dev/null
r=$($PY "$tmp/cmp.py" "$tmp/sc8.jsonl" 0)
ok "sample --deterministic log-probs on image prompts == temper score's (the trainer's forward, with the images), bit for bit: $r" '[[ "$r" == *PASS ]]'
"$T" sample --model "$tmp/vm" --data "$tmp/vt/mixed.jsonl" --n 2 --max-new-tokens 6 --temperature 1 --seed 3 --batch 8 --out "$tmp/sn.jsonl" 2>/dev/null
"$T" score --model "$tmp/vm" --data "$tmp/sn.jsonl" --out "$tmp/scn.jsonl" --per-token 2>/dev/null
r=$($PY "$tmp/cmp.py" "$tmp/scn.jsonl" 1e-5)
ok "without --deterministic: within 1e-5: $r" '[[ "$r" == *PASS ]]'

"$T" sft --model "$tmp/vm" --data "$tmp/vt/sft.jsonl" --output-dir "$tmp/s" --max-steps 30 --per-device-train-batch-size 8 \
    --learning-rate 4e-3 --save-steps 0 --quiet >/dev/null 2>&1
cp "$tmp/vm/preprocessor_config.json" "$tmp/s/"
"$T" eval --model "$tmp/s" --data "$tmp/vt/visual.jsonl" --prompt-style plain --max-new-tokens 8 --output-dir "$tmp/ev" --quiet >/dev/null 2>"$tmp/err"; rc=$?
E=$($PY -c "import json; s = json.load(open('$tmp/ev/summary.json')); print(s['graded_problems'], 'graded, pass@1', s['pass@1'])" 2>&1)
ok "eval on temper task visual rows runs and grades, after the sft ($E)" '[ $rc -eq 0 ] && [[ "$E" == "8 graded"* ]] && [ $(grep -c "\"correct\"" "$tmp/ev/samples.jsonl") -eq 8 ]'
g=(--deterministic --max-steps 1 --per-device-train-batch-size 8 --num-generations 4 --max-completion-length 8 --temperature 1
   --learning-rate 1e-3 --logging-steps 1 --save-steps 0 --quiet)
"$T" grpo --model "$tmp/s" --data "$tmp/vt/visual.jsonl" --output-dir "$tmp/g" "${g[@]}" --max-steps 2 >/dev/null 2>"$tmp/err"; rc=$?
M=$($PY - "$tmp/g/metrics.jsonl" <<'P'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
ks = ["sampling/sampling_logp_difference/max", "training/rollout_probs_diff_max", "sampling/ratio_minus_one/max"]
ok = len(rs) == 2 and all(r[k] == 0 for r in rs for k in ks) and any(r["grad_norm"] > 0 for r in rs)
print("PASS" if ok else "FAIL", [(r["reward"], r["grad_norm"], [r[k] for k in ks]) for r in rs])
P
)
ok "grpo --deterministic on image prompts: mismatch exactly 0, gradients flow ($M)" '[ $rc -eq 0 ] && [[ "$M" == PASS* ]]'

"$T" perturb rotate --data "$tmp/vt/visual.jsonl" --out "$tmp/pr" --seed 3 --quiet >/dev/null 2>&1
"$T" grpo --model "$tmp/s" --data "$tmp/pr/visual.jsonl" --output-dir "$tmp/ga" "${g[@]}" >/dev/null 2>&1
"$T" grpo --model "$tmp/s" --data "$tmp/vt/visual.jsonl" --output-dir "$tmp/gb" "${g[@]}" --perturb rotate --perturb-seed 3 >/dev/null 2>"$tmp/err"; rc=$?
"$T" grpo --model "$tmp/s" --data "$tmp/vt/visual.jsonl" --output-dir "$tmp/gc" "${g[@]}" >/dev/null 2>&1
"$T" grpo --model "$tmp/s" --data "$tmp/vt/visual.jsonl" --output-dir "$tmp/gf" "${g[@]}" --freeze-vision-tower >/dev/null 2>&1
ok "grpo --perturb rotate --perturb-seed 3 trains exactly as grpo on temper perturb rotate --seed 3's files ($(tail -1 "$tmp/err"))" \
   '[ $rc -eq 0 ] && [ -s "$tmp/ga/model.safetensors" ] && cmp -s "$tmp/ga/model.safetensors" "$tmp/gb/model.safetensors"'
W=$($PY - "$tmp/s" "$tmp/ga" "$tmp/gc" "$tmp/gf" <<'P'
import sys, torch
sys.path.insert(0, "tests/oracle")
import torch_ref as R
s, ga, gc, gf = (R.read_model_tensors(d) for d in sys.argv[1:5])
vis = [k for k in s if k.startswith("visual.") and k.endswith("weight")]
differs = any(not torch.equal(ga[k], gc[k]) for k in ga) and any(not torch.equal(ga[k], s[k]) for k in ga)
moved = all(not torch.equal(s[k], gc[k]) for k in vis)
kept = all(torch.equal(s[k], gf[k]) for k in s if k.startswith("visual."))
lm = any(not torch.equal(s[k], gf[k]) for k in s if k.startswith("model.layers."))
print(("PASS" if differs and moved and kept and lm else "FAIL") + f" perturbed step moved and != plain {differs}, tower trained {moved}, frozen kept {kept}, LM moved {lm}")
P
)
ok "grpo: perturbed images train otherwise than the originals; the tower trains, and not under --freeze-vision-tower ($W)" '[[ "$W" == PASS* ]]'

"$T" init --arch qwen2 --preset tiny --tokenizer "$tmp/vtok" --out "$tmp/vq" --quiet 2>/dev/null
"$T" grpo --model "$tmp/vq" --data "$tmp/vt/visual.jsonl" --output-dir "$tmp/gq" --max-steps 1 --quiet >/dev/null 2>"$tmp/err"; rc=$?
ok "grpo: image prompts on a text model fail with one line ($(tail -1 "$tmp/err"))" '[ $rc -ne 0 ] && [ $(wc -l <"$tmp/err") -eq 1 ] && grep -q "visual.jsonl:1:" "$tmp/err"'
"$T" ppo --model "$tmp/vm" --data "$tmp/vt/visual.jsonl" --output-dir "$tmp/pp" --max-steps 1 --quiet >/dev/null 2>"$tmp/err"; rc=$?
ok "ppo refuses image prompts, one line ($(tail -1 "$tmp/err"))" '[ $rc -ne 0 ] && [ $(wc -l <"$tmp/err") -eq 1 ] && grep -q "images" "$tmp/err"'
