#!/usr/bin/python3
"""--bf16 mixed-precision training end to end, on the tiny Llama with the byte-level
tokenizer of test_train.py:
- `temper sft --bf16` reports the bf16 GEMM path once and drives the completion loss down
  (to half, test_train.py's bar for fp32);
- `temper dpo --bf16` from that model reaches test_train.py's fp32 bar: eval
  rewards/accuracies on the training pairs > 0.9 after 30 steps;
- five DPO steps log losses within 1% of the same run in fp32 (bf16 rounds each linear's
  inputs to 8 significant bits: relative 2^-9; the fp32 master weights and AdamW state keep
  the runs together)."""
import os, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import check, done
from tiny_setup import metrics, start, temper

tmp = tempfile.mkdtemp(prefix="temper-bf16-")
tok, base, facts, write = start(tmp)
sft = write("sft.jsonl", [{"prompt": p, "completion": c} for p, c, _ in facts])
dpo = write("dpo.jsonl", [{"prompt": p, "chosen": c, "rejected": w} for p, c, w in facts])

out_sft = os.path.join(tmp, "sft")
r = temper("sft", "--bf16", "--model", base, "--data", sft, "--output-dir", out_sft, "--learning-rate", "1e-3", "--max-steps", "40",
           "--logging-steps", "5", "--per-device-train-batch-size", "8", "--quiet")
check(r.returncode == 0, "temper sft --bf16 runs (%s)" % r.stderr.strip()[-300:])
lines = [l for l in r.stderr.splitlines() if l.startswith("temper: bf16 GEMM on ")]
check(len(lines) == 1, "sft --bf16 reports the GEMM path once: %s" % lines)
m = metrics(out_sft) if r.returncode == 0 else [{"loss": 0}]
check(m[-1]["loss"] < 0.5 * m[0]["loss"], "sft --bf16: completion loss falls %.3f -> %.3f" % (m[0]["loss"], m[-1]["loss"]))

out_dpo = os.path.join(tmp, "dpo")
r = temper("dpo", "--bf16", "--model", out_sft, "--data", dpo, "--eval-data", dpo, "--output-dir", out_dpo, "--learning-rate", "5e-4",
           "--max-steps", "30", "--logging-steps", "10", "--eval-steps", "30", "--beta", "0.1", "--quiet")
check(r.returncode == 0, "temper dpo --bf16 runs (%s)" % r.stderr.strip()[-300:])
ev = [x for x in metrics(out_dpo) if "eval_loss" in x] if r.returncode == 0 else []
acc = ev[-1].get("eval_rewards/accuracies", 0) if ev else 0
check(acc > 0.9, "dpo --bf16: eval rewards/accuracies on the training pairs %.3f > 0.9 (the fp32 bar)" % acc)

small = write("dpo6.jsonl", [{"prompt": p, "chosen": c, "rejected": w} for p, c, w in facts[:6]])
losses = {}
for prec in ("fp32", "bf16"):
    out = os.path.join(tmp, "e2e-" + prec)
    r = temper("dpo", *(["--bf16"] if prec == "bf16" else []), "--model", out_sft, "--data", small, "--output-dir", out,
               "--learning-rate", "1e-3", "--beta", "0.1", "--max-steps", "5", "--per-device-train-batch-size", "6",
               "--logging-steps", "1", "--quiet")
    check(r.returncode == 0, "dpo e2e %s (%s)" % (prec, r.stderr.strip()[-300:]))
    losses[prec] = [x["loss"] for x in metrics(out)] if r.returncode == 0 else []
a, b = losses["fp32"], losses["bf16"]
check(len(a) == 5 and len(b) == 5 and all(abs(x - y) <= 1e-2 * abs(x) for x, y in zip(a, b)),
      "five DPO steps: --bf16 losses within 1%% of fp32: fp32 %s bf16 %s" % (["%.5f" % x for x in a], ["%.5f" % x for x in b]))
done()
