#!/usr/bin/env bash
# The offline trainers' files and metrics (issue 12, items 5 and 6):
# - reference log-probs only for the examples the run's steps draw: --max-steps 2 on a
#   2000-example file does 4 reference forwards, not 2000; a run resumed from a
#   checkpoint computes the same ones and ends bit-identical;
# - generation_config.json and pad_token_id in every checkpoint and output directory;
#   the last step always gets a checkpoint, so a finished run can be extended;
# - TRL's mean_token_accuracy, entropy, logits/chosen|rejected, num_tokens over all
#   tokens, and the final train_runtime / train_loss entry; TensorBoard event files.
# A tiny tokenizer-less Llama with pre-tokenized data keeps every run to a second or two.
T=${TEMPER:-build/temper}
cd "$(dirname "$0")/../.."
T=$(realpath "$T")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
PY=/usr/bin/python3
cd "$tmp"

"$T" init --preset tiny --out m --seed 3 2>/dev/null
ok "init a tiny model" '[ -f m/model.safetensors ]'
$PY - <<'P'
import json
def w(name, rows):
    with open(name, "w") as f:
        for r in rows: f.write(json.dumps(r) + "\n")
w("dpo2000.jsonl", [{"prompt_input_ids": [1, 2, 3 + i % 500, 7 + i % 13], "chosen_input_ids": [4, 5, 6 + i % 7],
                     "rejected_input_ids": [7, 8 + i % 5]} for i in range(2000)])
w("kto2000.jsonl", [{"prompt_input_ids": [1, 2, 3 + i % 500], "completion_input_ids": [4, 5, 6 + i % 7], "label": i % 3 == 0}
                    for i in range(2000)])
w("dpo16.jsonl", [{"prompt_input_ids": [1, 2, 3 + i, 9], "chosen_input_ids": [4, 5, 6 + i % 7], "rejected_input_ids": [7, 8 + i % 5, 3]}
                  for i in range(16)])
w("sft16.jsonl", [{"prompt_input_ids": [1, 2, 3 + i], "completion_input_ids": [4, 5 + i % 3, 6, 7]} for i in range(16)])
P
get() { $PY -c "import json,sys; rows=[json.loads(l) for l in open('$1')]; print(rows[$2].get('$3'))"; }

# ---- item 5: reference log-probs for the examples the run draws
"$T" dpo --model m --data dpo2000.jsonl --output-dir d2 --max-steps 2 --per-device-train-batch-size 2 --quiet 2>err; rc=$?
ok "dpo --max-steps 2 on 2000 pairs runs (rc $rc)" '[ $rc -eq 0 ]'
ok "dpo: reference log-probs for the 4 examples its 2 steps draw, not 2000" 'grep -q "reference log-probs for 4 of 2000 training examples" err'
ok "dpo: metrics.jsonl logs ref_examples 4" '[ "$(get d2/metrics.jsonl 0 ref_examples)" = 4 ]'
"$T" kto --model m --data kto2000.jsonl --output-dir k2 --max-steps 2 --per-device-train-batch-size 2 --quiet 2>err; rc=$?
ok "kto: reference log-probs for 4 of 2000 (rc $rc)" '[ $rc -eq 0 ] && grep -q "reference log-probs for 4 of 2000 training examples" err'
"$T" dpo --model m --data dpo16.jsonl --output-dir full --num-train-epochs 2 --per-device-train-batch-size 4 --quiet 2>err
ok "a run over whole epochs computes every reference (16 of 16)" 'grep -q "reference log-probs for 16 of 16" err'
ok "--precompute-ref-log-probs, which did nothing, is gone" '! "$T" dpo --help 2>&1 | grep -q precompute-ref-log-probs'
# resumed from a checkpoint, the run marks the same examples (from step 0) and ends bit-identical
args="--data dpo2000.jsonl --max-steps 4 --save-steps 2 --per-device-train-batch-size 2 --logging-steps 1 --learning-rate 1e-3 --quiet"
"$T" dpo --model m --output-dir r4 $args 2>/dev/null
"$T" dpo --model m --output-dir r4b $args --resume-from-checkpoint r4/checkpoint-2 2>err; rc=$?
ok "a --max-steps 4 run resumed from checkpoint-2 computes the same 8 references (rc $rc)" '[ $rc -eq 0 ] && grep -q "reference log-probs for 8 of 2000" err'
ok "... and ends bit-identical to the uninterrupted run" 'cmp -s r4/model.safetensors r4b/model.safetensors'

# ---- item 6: generation_config.json, pad_token_id, a checkpoint at the last step
ok "every checkpoint and the output directory have generation_config.json" \
  '[ -f r4/generation_config.json ] && [ -f r4/checkpoint-2/generation_config.json ] && [ -f r4/checkpoint-4/generation_config.json ]'
# a model with a tokenizer: pad_token_id from its pad token, else its eos token (TRL's pad = eos)
$PY - <<'P'
import json, os, shutil
def model_with(dirname, tok_cfg, cfg_extra):
    shutil.copytree("m", dirname)
    cfg = json.load(open("m/config.json")); cfg.update(cfg_extra)
    json.dump(cfg, open(dirname + "/config.json", "w"), indent=2)
    if tok_cfg is not None: json.dump(tok_cfg, open(dirname + "/tokenizer_config.json", "w"))
    if os.path.exists(dirname + "/generation_config.json"):  # init wrote one from the config before this edit
        os.remove(dirname + "/generation_config.json")
model_with("mpad", {"pad_token": "<pad>", "added_tokens_decoder": {"7": {"content": "<pad>", "special": True}}}, {"bos_token_id": 1, "eos_token_id": 2})
model_with("meos", None, {"bos_token_id": 1, "eos_token_id": [2, 3]})
model_with("mhas", None, {"eos_token_id": 2, "pad_token_id": 5})
P
for mm in mpad meos mhas; do
  "$T" sft --model $mm --data sft16.jsonl --output-dir o_$mm --max-steps 1 --per-device-train-batch-size 4 --quiet 2>/dev/null
done
cfgval() { $PY -c "import json; print(json.dumps(json.load(open('$1')).get('$2')))"; }
$PY - <<'P' || fail=1
import json
def check(cond, name):
    print(("ok - " if cond else "not ok - ") + name)
    return cond
load = lambda p: json.load(open(p))
ok = check(load("o_mpad/config.json").get("pad_token_id") == 7, "pad_token_id from the tokenizer's pad token (<pad> = 7)")
ok &= check(load("o_mpad/generation_config.json") == {"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 7},
            "generation_config.json as transformers derives it from the config: bos 1, eos 2, pad 7")
ok &= check(load("o_meos/config.json").get("pad_token_id") == 2 and load("o_meos/generation_config.json")["eos_token_id"] == [2, 3],
            "no pad token: pad_token_id is the first eos id (2); an eos list stays a list")
ok &= check(open("mhas/config.json").read() == open("o_mhas/config.json").read(), "a config that has pad_token_id keeps it, byte for byte")
exit(0 if ok else 1)
P
"$T" reward-model --model mpad --data dpo16.jsonl --output-dir rm --max-steps 1 --per-device-train-batch-size 4 --quiet 2>/dev/null
ok "the reward model (*ForSequenceClassification) gets pad_token_id" \
  '[ "$(cfgval rm/config.json pad_token_id)" = 7 ] && [ "$(cfgval rm/config.json architectures)" = "[\"LlamaForSequenceClassification\"]" ]'

# a finished run extended with its optimizer state equals a straight run: 4 steps with
# --save-steps 3 (checkpoints 3 and 4), then --max-steps 6 from checkpoint-4
ext="--data sft16.jsonl --save-steps 3 --logging-steps 1 --per-device-train-batch-size 4 --learning-rate 1e-3 --lr-scheduler-type constant --quiet"
"$T" sft --model m --output-dir e6 --max-steps 6 $ext 2>/dev/null
"$T" sft --model m --output-dir e4 --max-steps 4 $ext 2>/dev/null
ok "a 4-step run with --save-steps 3 checkpoints steps 3 and 4" '[ -d e4/checkpoint-3 ] && [ -d e4/checkpoint-4 ]'
"$T" sft --model m --output-dir e4 --max-steps 6 $ext --resume-from-checkpoint e4/checkpoint-4 2>err; rc=$?
ok "extended to --max-steps 6 from checkpoint-4 (rc $rc)" '[ $rc -eq 0 ] && grep -q "resuming from e4/checkpoint-4 at step 4" err'
ok "... weights bit-identical to the straight 6-step run" 'cmp -s e4/model.safetensors e6/model.safetensors'
timeless() { $PY -c "
import json
drop = {'tokens_per_second', 'train_runtime', 'train_samples_per_second', 'train_steps_per_second'}
print([{k: v for k, v in json.loads(l).items() if k not in drop} for l in open('$1')])"; }
ok "... and metrics.jsonl equal but for the wall-clock rates" '[ "$(timeless e4/metrics.jsonl)" = "$(timeless e6/metrics.jsonl)" ]'

# ---- item 6: the metrics
$PY - e6/metrics.jsonl <<'P' && ok "the final entry: train_runtime, train_samples_per_second, train_steps_per_second, train_loss" true || ok "the final entry" false
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
last, steps = rows[-1], [r for r in rows if "loss" in r]
assert set(last) == {"step", "epoch", "train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss"}, last
assert last["step"] == 6 and last["train_runtime"] > 0 and last["train_samples_per_second"] > 0
assert abs(last["train_loss"] - sum(r["loss"] for r in steps) / 6) < 1e-6, (last, [r["loss"] for r in steps])
# num_tokens counts every token (prompt and completion): 4 sequences of 7 tokens a step
assert [r["num_tokens"] for r in steps] == [28.0 * (i + 1) for i in range(6)], [r["num_tokens"] for r in steps]
P
if $PY -c "import torch" 2>/dev/null; then
  # one micro-batch each, so a step-1 value is TRL's value of that batch at the step's
  # initial weights (e6: the straight 6-step SFT run above)
  "$T" sft --model e6 --data sft16.jsonl --output-dir om_sft --max-steps 1 --per-device-train-batch-size 16 --quiet 2>/dev/null
  "$T" dpo --model e6 --data dpo16.jsonl --output-dir om_dpo --max-steps 1 --per-device-train-batch-size 16 --quiet 2>/dev/null
  $PY - "$OLDPWD/tests/oracle" <<'P'
import json, sys
sys.path.insert(0, sys.argv[1])
import torch, torch_ref
model = torch_ref.load_model("e6", torch.float64)  # trained 6 steps: accuracies above 0
def forward(seqs):
    flat = torch.tensor([t for s in seqs for t in s])
    pos, allowed, _ = torch_ref.packed_inputs([len(s) for s in seqs])
    with torch.no_grad():
        z = model(flat[None], pos, torch_ref.additive_mask(allowed, torch.float64))[0]
    out, o = [], 0
    for s in seqs:
        out.append(z[o:o + len(s)]); o += len(s)
    return out
def entropy(z):
    return -(z.log_softmax(-1).exp() * z.log_softmax(-1)).sum(-1)
def report(name, got, want, tol):
    err = abs(got - want) / max(1e-3, abs(want))
    print(("ok - " if err <= tol else "not ok - ") + "%s %.7g vs PyTorch %.7g (rel %.1e, tolerance %g)" % (name, got, want, err, tol))
rows = [json.loads(l) for l in open("sft16.jsonl")]
seqs = [r["prompt_input_ids"] + r["completion_input_ids"] for r in rows]
zs = forward(seqs)
# TRL SFTTrainer: entropy over every position (attention mask); accuracy over the trained tokens
ent = torch.cat([entropy(z) for z in zs]).mean().item()
right = total = 0
for r, s, z in zip(rows, seqs, zs):
    p = len(r["prompt_input_ids"])
    for t in range(p, len(s)):
        total += 1; right += int(z[t - 1].argmax()) == s[t]
got = json.loads(open("om_sft/metrics.jsonl").readline())
report("sft entropy (mean over all tokens)", got["entropy"], ent, 1e-4)
report("sft mean_token_accuracy", got["mean_token_accuracy"], right / total, 1e-6)
print(("ok - " if right > 0 else "not ok - ") + "the oracle's sft accuracy is above 0 (%d of %d tokens), so the check checks something" % (right, total))
# TRL DPOTrainer: entropy over completion tokens of both, logits/* the mean logit at the
# positions predicting completion tokens, accuracy on the chosen completions
rows = [json.loads(l) for l in open("dpo16.jsonl")]
ch = [r["prompt_input_ids"] + r["chosen_input_ids"] for r in rows]
rj = [r["prompt_input_ids"] + r["rejected_input_ids"] for r in rows]
zc, zr = forward(ch), forward(rj)
def comp(rows_, seqs_, zs_):
    return [(z[len(r["prompt_input_ids"]) - 1:len(s) - 1], s[len(r["prompt_input_ids"]):]) for r, s, z in zip(rows_, seqs_, zs_)]
cc, cr = comp(rows, ch, zc), comp(rows, rj, zr)
allz = torch.cat([z for z, _ in cc + cr])
got = json.loads(open("om_dpo/metrics.jsonl").readline())
report("dpo entropy (completion tokens)", got["entropy"], entropy(allz).mean().item(), 1e-4)
report("dpo logits/chosen", got["logits/chosen"], torch.cat([z for z, _ in cc]).mean().item(), 1e-4)
report("dpo logits/rejected", got["logits/rejected"], torch.cat([z for z, _ in cr]).mean().item(), 1e-4)
acc = sum(int(z[i].argmax()) == y[i] for z, y in cc for i in range(len(y))) / sum(len(y) for _, y in cc)
report("dpo mean_token_accuracy (chosen)", got["mean_token_accuracy"], acc, 1e-6)
P
else
  echo "ok - token metrics against PyTorch # SKIP no python3-torch"
fi

[ $fail -eq 0 ]
