#!/usr/bin/python3
"""The offline trainers under LoRA (--use-peft), end to end on the tiny Llama with the byte
tokenizer (as test_train.py):
- DPO with all-linear adapters (r 16, alpha 32) on an SFT'd model reaches the full fine-tune
  test's accuracy bar: eval rewards/accuracies on the training pairs > 0.9; its reference is the
  base (adapters off), so the first step's rewards are 0 (policy = reference);
- the output is a PEFT adapter directory (adapter_config.json with PEFT's fields,
  adapter_model.safetensors with PEFT's key names, no model.safetensors); the optimizer state
  in a checkpoint holds the adapters' moments only;
- a run resumed from a checkpoint ends bit-identical to an uninterrupted one (adapters and
  metrics.jsonl);
- `temper score` takes the adapter directory, and `temper merge` writes a plain HF directory
  that scores the same (log-probs within 1e-4 relative: the merged W + sBA is rounded to fp32
  once, the adapter path rounds x A^T and its product separately);
- TRL's adapter dropout 0.05 is on in the other runs (resume included: the masks are a function
  of the seed, the step and the micro-batch);
- --model may be an adapter directory (training continues from it); --lora-dropout outside [0, 1)
  is refused with a message."""
import json, os, shutil, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref
from tap import check, done
from tiny_setup import temper, why, metrics, start


tmp = tempfile.mkdtemp(prefix="temper-lora-train-")
try:
    # string rows as plain text (as test_train.py): without a template in the tokenizer (the prompt rule)
    tok, base, facts, write = start(tmp)
    sft = write("sft.jsonl", [{"prompt": p, "completion": c} for p, c, _ in facts])
    dpo = write("dpo.jsonl", [{"prompt": p, "chosen": c, "rejected": w} for p, c, w in facts])
    out_sft = os.path.join(tmp, "sft")
    r = temper("sft", "--model", base, "--data", sft, "--output-dir", out_sft, "--learning-rate", "1e-3", "--max-steps", "40",
               "--per-device-train-batch-size", "8", "--quiet")
    check(r.returncode == 0, "temper sft (full) runs (%s)" % why(r))

    # TRL's default adapter dropout (0.05) is on: the masks are drawn from (seed, step, micro-batch)
    lora = ["--use-peft", "--lora-r", "16", "--lora-alpha", "32", "--lora-target-modules", "all-linear"]
    # ---- DPO under LoRA: the accuracy bar of the full fine-tune test
    out = os.path.join(tmp, "dpo")
    # (without adapter dropout: its noise at this tiny scale and step count blurs the bar; dropout is
    # on in the runs below.) lr 1e-3 x 40 steps, not 5e-3 x 30: AdamW's first steps move every adapter
    # element by ~lr whatever the gradient's size, and with alpha/r = 2 on all 28 linears of this
    # 256-wide model 5e-3 wrecks it at step 3 (chosen log-probs fall ~20 nats; a float64 PyTorch
    # replica, PEFT-style LoRA + AdamW + clip, does the same to 1e-6: the recipe, not a bug), and the
    # rest of the run is chaotic: acc 0.79-0.92, an 80-step run diverging, flipping with the BLAS
    # kernel (SkylakeX vs Haswell). 1e-3 x 40 gives acc 1.000, loss 0.693 -> 0.37 on both kernels,
    # 1 or 2 threads, and its neighbours (7e-4..1.5e-3, 35..50 steps) all give acc >= 0.958.
    r = temper("dpo", "--model", out_sft, "--data", dpo, "--eval-data", dpo, "--output-dir", out, *lora, "--lora-dropout", "0",
               "--learning-rate", "1e-3",
               "--max-steps", "40", "--logging-steps", "1", "--eval-steps", "40", "--beta", "0.1", "--quiet")
    check(r.returncode == 0, "temper dpo --use-peft runs (%s)" % why(r))
    m = metrics(out) if r.returncode == 0 else []
    ev = [x for x in m if "eval_loss" in x]
    acc = ev[-1].get("eval_rewards/accuracies", 0) if ev else 0
    check(acc > 0.9, "dpo under LoRA: eval rewards/accuracies on the training pairs %.3f > 0.9" % acc)
    tr = [x for x in m if "loss" in x]
    check(tr and abs(tr[0]["loss"] - 0.693147) < 1e-4 and abs(tr[0]["rewards/margins"]) < 1e-6,
          "dpo under LoRA: first step at policy = reference (loss ln 2 = %.6f, margin %.1g): the reference is the base" %
          (tr[0]["loss"] if tr else -1, tr[0]["rewards/margins"] if tr else -1))
    last = sum(x["loss"] for x in tr[-5:]) / 5 if tr else 0
    check(tr and last < 0.7 * tr[0]["loss"], "dpo under LoRA: loss falls %.3f -> %.3f (mean of the last 5 steps)" % (tr[0]["loss"] if tr else 0, last))
    files = set(os.listdir(out)) if os.path.isdir(out) else set()
    check({"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= files and "model.safetensors" not in files,
          "the output is a PEFT adapter directory (%s)" % sorted(files))
    cfg = json.load(open(os.path.join(out, "adapter_config.json"))) if files else {}
    want = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 16, "lora_alpha": 32, "bias": "none", "use_rslora": False,
            "fan_in_fan_out": False, "base_model_name_or_path": os.path.realpath(out_sft)}
    check(all(cfg.get(k) == v for k, v in want.items()) and sorted(cfg.get("target_modules", [])) ==
          sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
          "adapter_config.json: PEFT's fields and values")
    ts, _ = torch_ref.read_safetensors(os.path.join(out, "adapter_model.safetensors")) if files else ({}, None)
    check(len(ts) == 4 * 7 * 2 and "base_model.model.model.layers.3.mlp.down_proj.lora_B.weight" in ts and
          list(ts["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].shape) == [16, 256],
          "adapter_model.safetensors: 56 tensors with PEFT's names and shapes")

    # ---- resume: bit-identical
    full, part = os.path.join(tmp, "full"), os.path.join(tmp, "part")
    common = ["--data", dpo, *lora, "--learning-rate", "5e-3", "--max-steps", "6", "--save-steps", "3", "--logging-steps", "1",
              "--per-device-train-batch-size", "4", "--quiet"]
    r1 = temper("dpo", "--model", out_sft, "--output-dir", full, *common)
    r2 = temper("dpo", "--model", out_sft, "--output-dir", part, *common, "--resume-from-checkpoint", os.path.join(full, "checkpoint-3"))
    check(r1.returncode == 0 and r2.returncode == 0, "dpo --use-peft full and resumed runs (%s)" % why(r1, r2))
    ck = os.path.join(full, "checkpoint-3")
    names = list(torch_ref.read_safetensors(os.path.join(ck, "optimizer.safetensors"))[0]) if r1.returncode == 0 else []
    check(len(names) == 2 * 56 and all(".lora_" in n for n in names),
          "checkpoint optimizer state: AdamW moments of the 56 adapter tensors only (%d tensors)" % len(names))
    same = r1.returncode == 0 and r2.returncode == 0 and \
        open(os.path.join(full, "adapter_model.safetensors"), "rb").read() == open(os.path.join(part, "adapter_model.safetensors"), "rb").read()
    check(same, "resumed LoRA run's adapters are bit-identical to the uninterrupted run's")
    strip = lambda rows: [{k: v for k, v in x.items() if k != "tokens_per_second"} for x in rows]
    check(same and strip(metrics(full)) == strip(metrics(part)), "resumed LoRA run's metrics.jsonl equals the uninterrupted run's")

    # ---- score the adapter directory; merge; the merged model scores the same
    merged = os.path.join(tmp, "merged")
    r = temper("merge", "--model", out_sft, "--adapter", out, "--out", merged)
    check(r.returncode == 0 and os.path.exists(os.path.join(merged, "model.safetensors")) and os.path.exists(os.path.join(merged, "config.json")),
          "temper merge writes a plain HF directory (%s)" % why(r))
    s_ad, s_m, s_base = (os.path.join(tmp, f"score_{k}.jsonl") for k in ("ad", "m", "base"))
    r1 = temper("score", "--model", out, "--data", sft, "--out", s_ad, "--quiet")
    r2 = temper("score", "--model", merged, "--data", sft, "--out", s_m, "--quiet")
    r3 = temper("score", "--model", out_sft, "--data", sft, "--out", s_base, "--quiet")
    ok = r1.returncode == 0 and r2.returncode == 0 and r3.returncode == 0
    check(ok, "temper score takes the adapter directory (%s)" % why(r1, r2, r3))
    la = [json.loads(l)["logprob"] for l in open(s_ad)] if ok else [0]
    lm = [json.loads(l)["logprob"] for l in open(s_m)] if ok else [1]
    lb = [json.loads(l)["logprob"] for l in open(s_base)] if ok else [0]
    rel = max(abs(a - b) for a, b in zip(la, lm)) / max(abs(b) for b in lm)
    check(ok and rel < 1e-4, "merged model scores as base + adapter (rel %.1e < 1e-4)" % rel)
    check(ok and max(abs(a - b) for a, b in zip(la, lb)) > 1e-2, "the adapter changes the scores (vs the base)")

    # ---- sample from the adapter directory = sample from the merged model (same seed)
    prompts = write("prompts.jsonl", [{"prompt": p, "answer": c} for p, c, _ in facts[:6]])
    notok = os.path.join(tmp, "dpo_notok")  # an adapter directory without tokenizer files (as PEFT saves by default)
    shutil.copytree(out, notok)
    for f in os.listdir(notok):
        if f.startswith("tokenizer"):
            os.remove(os.path.join(notok, f))
    runs = [temper("sample", "--model", d, *extra, "--data", prompts, "--n", "2", "--max-new-tokens", "6", "--seed", "3",
                   "--quiet") for d, extra in ((out, []), (merged, []), (notok, ["--base-model", out_sft]))]
    comp = [[json.loads(l)["completion"] for l in r.stdout.splitlines()] if r.returncode == 0 else [] for r in runs]
    check(all(r.returncode == 0 for r in runs) and comp[0] == comp[1] == comp[2] and len(comp[0]) == 12,
          "temper sample from the adapter directory (also tokenizer-less, --base-model) = from the merged model %s" % why(*runs))

    # ---- reward-model under LoRA: the new score head is a module to save (PEFT's SEQ_CLS)
    rm, rm_m = os.path.join(tmp, "rm"), os.path.join(tmp, "rm_merged")
    r = temper("reward-model", "--model", out_sft, "--data", dpo, "--output-dir", rm, *lora, "--learning-rate", "5e-3", "--max-steps", "4",
               "--quiet")
    cfg = json.load(open(os.path.join(rm, "adapter_config.json"))) if r.returncode == 0 else {}
    check(r.returncode == 0 and cfg.get("task_type") == "SEQ_CLS" and cfg.get("modules_to_save") == ["score"],
          "reward-model --use-peft: adapter directory with task_type SEQ_CLS, modules_to_save [score] %s" % why(r))
    r1 = temper("score", "--model", rm, "--data", sft, "--out", os.path.join(tmp, "rm_ad.jsonl"), "--quiet")
    r2 = temper("merge", "--adapter", rm, "--out", rm_m)
    r3 = temper("score", "--model", rm_m, "--data", sft, "--out", os.path.join(tmp, "rm_m.jsonl"), "--quiet")
    ok = r1.returncode == 0 and r2.returncode == 0 and r3.returncode == 0
    ra = [json.loads(l)["reward"] for l in open(os.path.join(tmp, "rm_ad.jsonl"))] if ok else [0]
    rb = [json.loads(l)["reward"] for l in open(os.path.join(tmp, "rm_m.jsonl"))] if ok else [1]
    d = max(abs(a - b) for a, b in zip(ra, rb)) / max(abs(b) for b in rb)
    check(ok and d < 1e-4, "reward adapter scores rewards; merged (a SequenceClassification directory) scores the same (rel %.1e) %s" % (d, why(r1, r2, r3)))

    # ---- --model ADAPTER_DIR continues training the adapter; dropout refused
    cont = os.path.join(tmp, "cont")
    r = temper("dpo", "--model", out, "--data", dpo, "--output-dir", cont, "--learning-rate", "5e-3", "--max-steps", "2", "--quiet")
    check(r.returncode == 0 and os.path.exists(os.path.join(cont, "adapter_model.safetensors")),
          "dpo --model ADAPTER_DIR trains the adapter further (%s)" % why(r))
    r = temper("dpo", "--model", out_sft, "--data", dpo, "--output-dir", os.path.join(tmp, "drop"), "--use-peft", "--lora-dropout", "1",
               "--max-steps", "1", "--quiet")
    check(r.returncode != 0 and "--lora-dropout" in r.stderr, "--lora-dropout 1 is refused with a message: %s" % r.stderr.strip()[-150:])
    for bad, flag in ((["--lora-r", "0"], "--lora-r"), (["--lora-target-modules", "q_proj,zz"], "zz")):
        d = os.path.join(tmp, "bad")
        r = temper("dpo", "--model", out_sft, "--data", dpo, "--output-dir", d, "--use-peft", *bad, "--quiet")
        check(r.returncode != 0 and flag in r.stderr and not os.path.exists(d),
              "%s is refused before any work (no output directory): %s" % (" ".join(bad), r.stderr.strip()[-120:]))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
done()
