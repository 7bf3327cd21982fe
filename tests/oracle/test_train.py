#!/usr/bin/python3
"""The offline trainers end to end, on a tiny Llama with a byte-level tokenizer
(tests/oracle/tiny_tokenizer.py, 259 ids, so every id is known in Python):
- five DPO steps through `temper dpo` and through a float64 PyTorch reference
  (same weights, data, hyperparameters: full-batch steps, AdamW, linear decay,
  clipping) log the same losses within 1e-4;
- SFT drives the completion loss down; DPO drives rewards/accuracies on its training
  pairs above 0.9; KTO moves the rewards of desirable and undesirable completions apart;
- a run resumed from a checkpoint ends bit-identical to an uninterrupted one
  (weights and metrics.jsonl), checkpoints are complete HF directories, and
  --save-total-limit prunes them;
- a malformed line is a one-line file:line error; temper plot draws the metrics."""
import json, os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import torch.nn.functional as F
import torch_ref
import tiny_tokenizer
from tap import TEMPER, check, done
from tiny_setup import temper, metrics, start

tmp = tempfile.mkdtemp(prefix="temper-train-")
# string rows as plain text, as the PyTorch references below tokenize them: without a
# template in the tokenizer (the prompt rule); the message-list tests name chatml
tok, base, facts, write = start(tmp)
sft = write("sft.jsonl", [{"prompt": p, "completion": c} for p, c, _ in facts])
dpo = write("dpo.jsonl", [{"prompt": p, "chosen": c, "rejected": w} for p, c, w in facts])
kto = write("kto.jsonl", [{"prompt": p, "completion": c if i % 2 == 0 else w, "label": i % 2 == 0} for i, (p, c, w) in enumerate(facts)])

# ---- SFT: the loss falls
out_sft = os.path.join(tmp, "sft")
r = temper("sft", "--model", base, "--data", sft, "--output-dir", out_sft, "--learning-rate", "1e-3", "--max-steps", "40",
           "--logging-steps", "5", "--per-device-train-batch-size", "8", "--quiet")
check(r.returncode == 0, "temper sft runs (%s)" % r.stderr.strip()[-300:])
m = metrics(out_sft) if r.returncode == 0 else [{"loss": 0}]
check(m[-1]["loss"] < 0.5 * m[0]["loss"], "sft: completion loss falls %.3f -> %.3f" % (m[0]["loss"], m[-1]["loss"]))
check(all(k in m[-1] for k in ("step", "epoch", "loss", "grad_norm", "learning_rate")), "sft: log_history fields")
for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "trainer_state.json"):
    check(os.path.exists(os.path.join(out_sft, f)), "sft output directory has " + f)

# ---- DPO: accuracies above 0.9 on the training pairs (evaluated on them)
out_dpo = os.path.join(tmp, "dpo")
r = temper("dpo", "--model", out_sft, "--data", dpo, "--eval-data", dpo, "--output-dir", out_dpo, "--learning-rate", "5e-4",
           "--max-steps", "30", "--logging-steps", "10", "--eval-steps", "30", "--beta", "0.1", "--quiet")
check(r.returncode == 0, "temper dpo runs (%s)" % r.stderr.strip()[-300:])
ev = [x for x in metrics(out_dpo) if "eval_loss" in x] if r.returncode == 0 else []
acc = ev[-1].get("eval_rewards/accuracies", 0) if ev else 0
check(acc > 0.9, "dpo: eval rewards/accuracies on the training pairs %.3f > 0.9" % acc)
check(ev and all(k in ev[-1] for k in ("eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/margins", "eval_logps/chosen")),
      "dpo: TRL metric names")

# ---- KTO: rewards of desirable and undesirable completions move apart
out_kto = os.path.join(tmp, "kto")
r = temper("kto", "--model", out_sft, "--data", kto, "--output-dir", out_kto, "--learning-rate", "5e-4", "--max-steps", "30",
           "--logging-steps", "5", "--quiet")
check(r.returncode == 0, "temper kto runs (%s)" % r.stderr.strip()[-300:])
m = metrics(out_kto) if r.returncode == 0 else [{}]
gap = [x.get("rewards/chosen", 0) - x.get("rewards/rejected", 0) for x in m]
check(gap[-1] > gap[0] and gap[-1] > 0.5, "kto: reward gap desirable - undesirable grows %.3f -> %.3f" % (gap[0], gap[-1]))
check("kl" in m[-1], "kto: logs kl (z0)")

# ---- resume is bit-identical
full, part = os.path.join(tmp, "full"), os.path.join(tmp, "part")
common = ["--data", dpo, "--learning-rate", "3e-4", "--max-steps", "6", "--logging-steps", "1", "--save-steps", "3",
          "--per-device-train-batch-size", "4", "--gradient-accumulation-steps", "2", "--quiet"]
r1 = temper("dpo", "--model", out_sft, "--output-dir", full, *common)
# the second run starts from the first run's step-3 checkpoint, as after a crash
r2 = temper("dpo", "--model", out_sft, "--output-dir", part, *common, "--resume-from-checkpoint", os.path.join(full, "checkpoint-3"))
check(r1.returncode == 0 and r2.returncode == 0, "dpo full and resumed runs (%s)" % (r1.stderr + r2.stderr).strip()[-300:])
ck = os.path.join(full, "checkpoint-3")
for f in ("config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json", "tokenizer.json"):
    check(os.path.exists(os.path.join(ck, f)), "checkpoint-3 has " + f)
same = r1.returncode == 0 and r2.returncode == 0 and \
    open(os.path.join(full, "model.safetensors"), "rb").read() == open(os.path.join(part, "model.safetensors"), "rb").read()
check(same, "resumed run's weights are bit-identical to the uninterrupted run's")
def timeless(out):  # tokens_per_second is a wall-clock rate
    return [{k: v for k, v in x.items() if k != "tokens_per_second"} for x in metrics(out)]
check(r1.returncode == 0 and r2.returncode == 0 and timeless(full) == timeless(part),
      "resumed run's metrics.jsonl equals the uninterrupted run's (but for tokens_per_second)")
# a run killed with SIGKILL mid-training resumes from its newest complete checkpoint
# ("--resume-from-checkpoint last") and ends bit-identical to an uninterrupted run
import signal, time
long_args = ["--data", dpo, "--learning-rate", "3e-4", "--max-steps", "60", "--logging-steps", "1", "--save-steps", "3",
             "--per-device-train-batch-size", "4", "--quiet"]
ref12, killed = os.path.join(tmp, "ref12"), os.path.join(tmp, "killed")
r1 = temper("dpo", "--model", out_sft, "--output-dir", ref12, *long_args)
p = subprocess.Popen([TEMPER, "dpo", "--model", out_sft, "--output-dir", killed, *long_args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t0 = time.time()
while p.poll() is None and not os.path.isdir(os.path.join(killed, "checkpoint-3")) and time.time() - t0 < 120:
    time.sleep(0.005)
was_running = p.poll() is None
p.send_signal(signal.SIGKILL)
p.wait()
finished = os.path.exists(os.path.join(killed, "model.safetensors"))  # written only at the end of a run
r2 = temper("dpo", "--model", out_sft, "--output-dir", killed, *long_args, "--resume-from-checkpoint", "last")
same = r1.returncode == 0 and r2.returncode == 0 and \
    open(os.path.join(ref12, "model.safetensors"), "rb").read() == open(os.path.join(killed, "model.safetensors"), "rb").read()
# the kill must land mid-run, before the final save: otherwise this proves nothing
check(was_running and not finished, "SIGKILL landed mid-run (after checkpoint-3, before the final save)")
check(same, "SIGKILL mid-run, resume from the last checkpoint: bit-identical weights (%s)" % (r1.stderr + r2.stderr).strip()[-200:])
check(r2.returncode == 0 and timeless(ref12) == timeless(killed), "SIGKILL and resume: metrics.jsonl as the uninterrupted run's")
lim = os.path.join(tmp, "lim")
r = temper("sft", "--model", base, "--data", sft, "--output-dir", lim, "--max-steps", "8", "--save-steps", "2", "--save-total-limit", "2", "--quiet")
cks = sorted(d for d in os.listdir(lim) if d.startswith("checkpoint-")) if r.returncode == 0 else []
check(cks == ["checkpoint-6", "checkpoint-8"], "--save-total-limit 2 keeps the last two (the last step always saves): %s" % cks)

# ---- five DPO steps against a PyTorch reference
model_dir = out_sft
pairs = facts[:6]
small = write("dpo6.jsonl", [{"prompt": p, "chosen": c, "rejected": w} for p, c, w in pairs])
lr, beta, steps = 1e-3, 0.1, 5
out_e2e = os.path.join(tmp, "e2e")
r = temper("dpo", "--model", model_dir, "--data", small, "--output-dir", out_e2e, "--learning-rate", str(lr), "--beta", str(beta),
           "--max-steps", str(steps), "--per-device-train-batch-size", "6", "--logging-steps", "1", "--quiet")
check(r.returncode == 0, "dpo e2e run (%s)" % r.stderr.strip()[-300:])
got = [x["loss"] for x in metrics(out_e2e)] if r.returncode == 0 else []
policy = torch_ref.load_model(model_dir, torch.float64)
ref = torch_ref.load_model(model_dir, torch.float64)
seqs, masks = [], []
for p, c, w in pairs:
    for comp in (c, w):
        ids = tiny_tokenizer.ids(p) + tiny_tokenizer.ids(comp) + [tiny_tokenizer.EOS]
        seqs.append(ids)
        masks.append([0] * len(tiny_tokenizer.ids(p)) + [1] * (len(ids) - len(tiny_tokenizer.ids(p))))
flat = [t for s in seqs for t in s]
lens = [len(s) for s in seqs]
def seq_logps(model):
    lp, _ = torch_ref.token_logprobs(model, flat, lens)
    out, o = [], 0
    for s, mk in zip(seqs, masks):
        # lp[o + t - 1] is the log-prob of token t
        out.append(sum(lp[o + t - 1] for t in range(1, len(s)) if mk[t]))
        o += len(s)
    return torch.stack(out)
with torch.no_grad():
    ref_lp = seq_logps(ref)
params = [p for _, p in policy.named_parameters()]
opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (steps - s) / steps))
want, want_m = [], []
for s in range(steps):
    lp = seq_logps(policy)
    d = (lp[0::2] - ref_lp[0::2]) - (lp[1::2] - ref_lp[1::2])
    loss = -F.logsigmoid(beta * d).mean()
    with torch.no_grad():  # TRL's DPO metrics, from the same forward as the loss
        rc, rr = beta * (lp[0::2] - ref_lp[0::2]), beta * (lp[1::2] - ref_lp[1::2])
        want_m.append({"rewards/chosen": float(rc.mean()), "rewards/rejected": float(rr.mean()),
                       "rewards/margins": float((rc - rr).mean()), "rewards/accuracies": float((rc > rr).double().mean()),
                       # a pair whose rewards tie in float64 (every pair at step 1: policy = reference) can
                       # come out either way in fp32: the accuracy may be anywhere in [lo, hi]
                       "rewards/accuracies_hi": float((rc > rr - 1e-6).double().mean()),
                       "logps/chosen": float(lp[0::2].mean()), "logps/rejected": float(lp[1::2].mean())})
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    want.append(float(loss))
ok = len(got) == steps and all(abs(g - w) <= 1e-4 * max(1.0, abs(w)) for g, w in zip(got, want))
dpo5 = got
check(ok, "five DPO steps match PyTorch within 1e-4: temper %s torch %s" % (["%.6f" % x for x in got], ["%.6f" % x for x in want]))

def metrics_match(got_rows, want_rows, keys, what):
    """Each logged metric against the oracle's: 1e-4 relative, or 1e-6 absolute near 0 (rewards
    and kl start at 0 up to fp32 noise); an accuracy within its [lo, hi] tie range."""
    worst, bad = 0.0, []
    for g, w in zip(got_rows, want_rows):
        for k in keys:
            if k not in g:
                bad.append(k); continue
            if k == "rewards/accuracies" and w[k] - 1e-9 <= g[k] <= w[k + "_hi"] + 1e-9:
                continue
            e = abs(g[k] - w[k]) / max(1e-2, abs(w[k]))
            worst = max(worst, e)
            if e > 1e-4: bad.append("%s %.6g vs %.6g" % (k, g[k], w[k]))
    check(len(got_rows) == len(want_rows) and not bad,
          "%s: logged %s match the oracle (worst rel %.1e)%s" % (what, ", ".join(keys), worst, (": " + "; ".join(bad[:4])) if bad else ""))

dpo_keys = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"]
metrics_match(metrics(out_e2e) if r.returncode == 0 else [], want_m, dpo_keys, "DPO, every step")
# a logging window of 5 steps reports the average over its steps, as transformers does
out_w5 = os.path.join(tmp, "e2e-w5")
r = temper("dpo", "--model", model_dir, "--data", small, "--output-dir", out_w5, "--learning-rate", str(lr), "--beta", str(beta),
           "--max-steps", str(steps), "--per-device-train-batch-size", "6", "--logging-steps", "5", "--quiet")
avg = {k: sum(w[k] for w in want_m) / steps for k in dpo_keys + ["rewards/accuracies_hi"]}
avg["loss"] = sum(want) / steps
metrics_match(metrics(out_w5) if r.returncode == 0 else [], [avg], dpo_keys + ["loss"], "DPO, one 5-step logging window")

# ---- KTO against PyTorch: three full-batch steps; z0 from the mismatched pairs (x_i, y_{i-1}).
# The reference is the untrained base (--ref-model): against the SFT model itself the
# mismatched completions' log-ratio is negative after one step, z0 clamps to 0, and the
# kl check would check nothing.
kpairs = facts[:6]
kto_rows = [{"prompt": p, "completion": c if i % 2 == 0 else w, "label": i % 2 == 0} for i, (p, c, w) in enumerate(kpairs)]
kto_small = write("kto6.jsonl", kto_rows)
kbeta, ksteps = 0.1, 3
def kto_run(logging):
    d = os.path.join(tmp, "kto-e2e-%d" % logging)
    r = temper("kto", "--model", model_dir, "--ref-model", base, "--data", kto_small, "--output-dir", d, "--learning-rate", str(lr), "--max-steps", str(ksteps),
               "--per-device-train-batch-size", "6", "--logging-steps", str(logging), "--quiet")
    return metrics(d) if r.returncode == 0 else []
def kto_seqs(pairs_of_ids):
    seqs, masks = [], []
    for p_ids, c_ids in pairs_of_ids:
        seqs.append(p_ids + c_ids); masks.append([0] * len(p_ids) + [1] * len(c_ids))
    return seqs, masks
comp = [tiny_tokenizer.ids(r_["completion"]) + [tiny_tokenizer.EOS] for r_ in kto_rows]
prom = [tiny_tokenizer.ids(r_["prompt"]) for r_ in kto_rows]
main_s = kto_seqs(list(zip(prom, comp)))
kl_s = kto_seqs([(prom[i], comp[i - 1]) for i in range(len(prom))])  # i-1 cyclic: row 0 takes the last row's
def logps_of(model, sm):
    seqs_, masks_ = sm
    lp, _ = torch_ref.token_logprobs(model, [t for s_ in seqs_ for t in s_], [len(s_) for s_ in seqs_])
    out, o = [], 0
    for s_, mk in zip(seqs_, masks_):
        out.append(sum(lp[o + t - 1] for t in range(1, len(s_)) if mk[t])); o += len(s_)
    return torch.stack(out)
kpol = torch_ref.load_model(model_dir, torch.float64)
kref = torch_ref.load_model(base, torch.float64)
with torch.no_grad():
    ref_main, ref_kl = logps_of(kref, main_s), logps_of(kref, kl_s)
kparams = [p_ for _, p_ in kpol.named_parameters()]
kopt = torch.optim.AdamW(kparams, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
ksched = torch.optim.lr_scheduler.LambdaLR(kopt, lambda s_: max(0.0, (ksteps - s_) / ksteps))
des = torch.tensor([r_["label"] for r_ in kto_rows])
kwant = []
for s_ in range(ksteps):
    with torch.no_grad():
        z0 = torch.clamp(logps_of(kpol, kl_s).sub(ref_kl).mean(), min=0)
    lp = logps_of(kpol, main_s)
    delta = lp - ref_main
    losses = torch.where(des, 1 - torch.sigmoid(kbeta * (delta - z0)), 1 - torch.sigmoid(kbeta * (z0 - delta)))
    loss = losses.mean()
    kwant.append({"loss": float(loss), "kl": float(z0), "rewards/chosen": float(kbeta * delta[des].mean()),
                  "rewards/rejected": float(kbeta * delta[~des].mean()), "logps/chosen": float(lp[des].mean()),
                  "logps/rejected": float(lp[~des].mean()),
                  "rewards/margins": float(kbeta * delta[des].mean() - kbeta * delta[~des].mean())})
    kopt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(kparams, 1.0); kopt.step(); ksched.step()
kto_keys = ["loss", "kl", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"]
check(sum(w["kl"] > 0.01 for w in kwant) >= 2, "KTO oracle: z0 > 0 at two steps or more (%s), so the kl check below checks something" % ["%.3g" % w["kl"] for w in kwant])
metrics_match(kto_run(1), kwant, kto_keys, "KTO, every step")
metrics_match(kto_run(3), [{k: sum(w[k] for w in kwant) / ksteps for k in kto_keys}], kto_keys, "KTO, one 3-step logging window")

# ---- cDPO: critical-token weights against PyTorch, then token-weighted DPO in both forms
pos_data = write("pos.jsonl", [{"prompt": p, "completion": c} for p, c, _ in facts])
neg_data = write("neg.jsonl", [{"prompt": p, "completion": w} for p, _, w in facts])
pos, neg = os.path.join(tmp, "pos"), os.path.join(tmp, "neg")
for d, data in ((pos, pos_data), (neg, neg_data)):
    temper("sft", "--model", out_sft, "--data", data, "--output-dir", d, "--learning-rate", "1e-3", "--max-steps", "10", "--quiet")
wfile = os.path.join(tmp, "w.jsonl")
r = temper("critical-tokens", "--positive", pos, "--negative", neg, "--data", dpo, "--out", wfile)
check(r.returncode == 0, "temper critical-tokens runs (%s)" % r.stderr.strip()[-300:])
W = [json.loads(l) for l in open(wfile)] if r.returncode == 0 else []
mp, mn = torch_ref.load_model(pos, torch.float64), torch_ref.load_model(neg, torch.float64)
worst = 0.0
with torch.no_grad():
    for row in W[:4]:
        ids = row["rejected_input_ids"]
        pos_ids, allowed, _ = torch_ref.packed_inputs([len(ids)])
        mask = torch_ref.additive_mask(allowed, torch.float64)
        zp = mp(torch.tensor([ids]), pos_ids, mask)[0]
        zn = mn(torch.tensor([ids]), pos_ids, mask)[0]
        s = torch.log_softmax(2 * zp - zn, dim=-1).exp()
        want = [1.0] + [1 - float(s[t - 1, ids[t]]) for t in range(1, len(ids))]
        want[-1] = 1.0  # the appended EOS
        worst = max(worst, max(abs(a - b) for a, b in zip(row["rejected_weights"], want)))
        worst = max(worst, max(abs(a - 1.0) for a in row["chosen_weights"]))
check(W and worst < 1e-5, "critical-token weights 1 - softmax(2 z+ - z-)[y] match PyTorch (max diff %.2g)" % worst)
for form in ("sequence", "position"):
    r = temper("dpo", "--model", out_sft, "--data", dpo, "--token-weights", wfile, "--cdpo-form", form, "--output-dir",
               os.path.join(tmp, "cdpo-" + form), "--max-steps", "6", "--logging-steps", "1", "--learning-rate", "1e-3", "--quiet")
    m = metrics(os.path.join(tmp, "cdpo-" + form)) if r.returncode == 0 else []
    check(len(m) == 6 and abs(m[0]["loss"] - 0.693147) < 1e-5 and min(x["loss"] for x in m[1:]) < 0.688 and m[-1]["rewards/margins"] > 0.05,
          "cDPO --cdpo-form %s trains: loss %s, last margin %s (%s)" % (form, ["%.3f" % x["loss"] for x in m],
          m[-1].get("rewards/margins") if m else None, r.stderr.strip()[-200:]))
bad_w = os.path.join(tmp, "w-bad.jsonl")
with open(bad_w, "w") as f:
    for row in W:
        row = dict(row)
        row["rejected_input_ids"] = [0] + row["rejected_input_ids"][1:]
        f.write(json.dumps(row) + "\n")
r = temper("dpo", "--model", out_sft, "--data", dpo, "--token-weights", bad_w, "--output-dir", os.path.join(tmp, "cdpo-bad"), "--max-steps", "1")
check(r.returncode != 0 and "differs from the trainer's tokenization" in r.stderr, "token weights for other ids are refused")

# ---- multi-turn (tool trajectories as chat messages) and Step-DPO data through the trainers
def convo(a, b, answer):
    return [{"role": "user", "content": f"{a}+{b}?"},
            {"role": "assistant", "content": f"```python\nprint({a}+{b})\n```"},
            {"role": "tool", "content": f"```output\n{a + b}\n```"},
            {"role": "assistant", "content": f"The answer is {answer}"}]
mt = write("mt.jsonl", [{"chosen": convo(int(p.split('+')[0]), int(p.split('+')[1][:-1]), c),
                         "rejected": convo(int(p.split('+')[0]), int(p.split('+')[1][:-1]), w)} for p, c, w in facts[:8]])
r = temper("dpo", "--model", out_sft, "--data", mt, "--chat-template", "chatml", "--output-dir", os.path.join(tmp, "mdpo"), "--max-steps", "6",
           "--logging-steps", "1", "--learning-rate", "1e-3", "--quiet")
m = metrics(os.path.join(tmp, "mdpo")) if r.returncode == 0 else []
check(len(m) == 6 and abs(m[0]["loss"] - 0.693147) < 1e-5 and m[-1]["loss"] < 0.6 and m[-1]["rewards/accuracies"] > 0.5,
      "multi-turn DPO on tool trajectories trains: loss %s (%s)" % (["%.3f" % x["loss"] for x in m], r.stderr.strip()[-200:]))
mk = write("mkto.jsonl", [{"messages": convo(int(p.split('+')[0]), int(p.split('+')[1][:-1]), c if i % 2 else w), "label": i % 2 == 1}
                          for i, (p, c, w) in enumerate(facts[:8])])
r = temper("kto", "--model", out_sft, "--data", mk, "--chat-template", "chatml", "--dataset-format", "trajectory", "--output-dir", os.path.join(tmp, "mkto"),
           "--max-steps", "8", "--logging-steps", "1", "--learning-rate", "1e-3", "--per-device-train-batch-size", "8", "--quiet")
m = metrics(os.path.join(tmp, "mkto")) if r.returncode == 0 else []
check(len(m) == 8 and m[-1]["loss"] < m[0]["loss"] - 0.01 and m[-1]["rewards/margins"] > 0,
      "multi-turn KTO on labelled trajectories trains: loss %s (%s)" % (["%.4f" % x["loss"] for x in m], r.stderr.strip()[-200:]))
st = write("step.jsonl", [{"prompt": p, "initial_reason_steps": "Step 1: add. ", "chosen": "Step 2: " + c, "rejected": "Step 2: " + w}
                          for p, c, w in facts[:8]])
r = temper("dpo", "--model", out_sft, "--data", st, "--step-wise", "--output-dir", os.path.join(tmp, "sdpo"), "--max-steps", "3",
           "--logging-steps", "1", "--learning-rate", "1e-4", "--quiet")
m = metrics(os.path.join(tmp, "sdpo")) if r.returncode == 0 else []
check(len(m) == 3 and m[-1]["rewards/margins"] > 0, "Step-DPO data trains and separates the steps (%s)" % r.stderr.strip()[-200:])

# ---- reward model: Bradley-Terry on a score head, saved as a sequence-classification directory
out_rm = os.path.join(tmp, "rm")
r = temper("reward-model", "--model", out_sft, "--data", dpo, "--eval-data", dpo, "--output-dir", out_rm, "--learning-rate", "3e-4",
           "--max-steps", "40", "--logging-steps", "10", "--eval-steps", "40", "--quiet")
check(r.returncode == 0, "temper reward-model runs (%s)" % r.stderr.strip()[-300:])
ev = [x for x in metrics(out_rm) if "eval_loss" in x] if r.returncode == 0 else [{}]
check(ev[-1].get("eval_rewards/accuracies", 0) > 0.9, "reward model ranks chosen over rejected: accuracy %.3f > 0.9" % ev[-1].get("eval_rewards/accuracies", 0))
check(r.returncode == 0 and "rewards/accuracies" in metrics(out_rm)[0], "reward model logs rewards/* while training")
cfg = json.load(open(os.path.join(out_rm, "config.json"))) if r.returncode == 0 else {}
check(cfg.get("architectures") == ["LlamaForSequenceClassification"] and cfg.get("id2label") == {"0": "LABEL_0"},
      "reward model config: LlamaForSequenceClassification, one label")
tensors = torch_ref.read_model_tensors(out_rm, torch.float64) if r.returncode == 0 else {}
check("score.weight" in tensors and tuple(tensors["score.weight"].shape) == (1, 256) and "lm_head.weight" not in tensors,
      "reward model tensors: score.weight [1, 256], no lm_head")
# temper score with the reward model against PyTorch: hidden state of the last token . score
sc = write("rm-score.jsonl", [{"prompt": p, "completion": c} for p, c, _ in facts[:5]])
r = temper("score", "--model", out_rm, "--data", sc)
got = [json.loads(l)["reward"] for l in r.stdout.splitlines()] if r.returncode == 0 else []
trunk_dir = os.path.join(tmp, "rm-trunk")
tcfg = dict(cfg, architectures=["LlamaForCausalLM"], tie_word_embeddings=True)
score_w = tensors.pop("score.weight", None)
torch_ref.write_model_dir(trunk_dir, tcfg, tensors)
trunk = torch_ref.load_model(trunk_dir, torch.float64)
want = []
with torch.no_grad():
    for p, c, _ in facts[:5]:
        ids = tiny_tokenizer.ids(p) + tiny_tokenizer.ids(c)
        pos_ids, allowed, _ = torch_ref.packed_inputs([len(ids)])
        h = trunk.hidden(torch.tensor([ids]), pos_ids, torch_ref.additive_mask(allowed, torch.float64))[0]
        want.append(float(h[-1] @ score_w[0]))
check(len(got) == 5 and all(abs(g - w) <= 1e-4 * max(1, abs(w)) for g, w in zip(got, want)),
      "temper score with the reward model matches PyTorch: %s vs %s" % (["%.5f" % x for x in got], ["%.5f" % x for x in want]))

# ---- pre-tokenized data with TRL's column names needs no tokenizer; --config holds flags
notok = os.path.join(tmp, "notok")
shutil.copytree(out_sft, notok)
for f in ("tokenizer.json", "tokenizer_config.json"):
    os.remove(os.path.join(notok, f))
ids_dpo = write("ids-dpo.jsonl", [{"prompt_input_ids": tiny_tokenizer.ids(p), "chosen_input_ids": tiny_tokenizer.ids(c) + [tiny_tokenizer.EOS],
                                   "rejected_input_ids": tiny_tokenizer.ids(w) + [tiny_tokenizer.EOS]} for p, c, w in pairs])
cfgfile = os.path.join(tmp, "cfg.json")
json.dump({"learning_rate": lr, "beta": beta, "max_steps": steps, "per_device_train_batch_size": 6, "logging_steps": 1}, open(cfgfile, "w"))
r = temper("dpo", "--model", notok, "--data", ids_dpo, "--output-dir", os.path.join(tmp, "ids"), "--config", cfgfile, "--quiet")
got_ids = [x["loss"] for x in metrics(os.path.join(tmp, "ids"))] if r.returncode == 0 else []
check(len(got_ids) == steps and all(abs(a - b) < 1e-6 for a, b in zip(got_ids, dpo5)), "pre-tokenized DPO data without a tokenizer, flags from --config: the same five losses %s vs %s (%s)" % (got_ids, dpo5, r.stderr.strip()[-200:]))

# ---- bad data and plot
bad = write("bad.jsonl", [{"prompt": "1+1=", "chosen": "2", "rejected": "3"}])
with open(bad, "a") as f:
    f.write("{\"prompt\": \"2+2=\", \"chosen\": 4}\n")
r = temper("dpo", "--model", base, "--data", bad, "--output-dir", os.path.join(tmp, "bad"))
msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
check(r.returncode != 0 and "bad.jsonl:2:" in msg, "malformed line is a file:line error: " + msg)
r = temper("plot", out_dpo, "--keys", "loss,rewards/accuracies,eval_loss")
svg = os.path.join(out_dpo, "metrics.svg")
check(r.returncode == 0 and os.path.exists(svg) and open(svg).read().count("<polyline") == 3, "temper plot draws three panels")
shutil.rmtree(tmp)
done()
