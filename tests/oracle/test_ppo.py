#!/usr/bin/python3
"""PPO's per-token rewards, GAE, advantage whitening, clipped policy loss and clipped value loss
(src/objectives/ppo.c) against PyTorch autograd in float64.

The reference is written from TRL's experimental PPOTrainer.train (rewards: -kl_coef * kl plus the
score at the last real token; masked_whiten; pg = max(-A*ratio, -A*clamp(ratio)); vf = 0.5 *
max((V-R)^2, (clamp(V, V_old +- eps_v) - R)^2); loss = pg + vf_coef * vf) and from verl's
compute_gae_advantage_return, which skips response_mask = 0 tokens (tool observations): the next
value and the running advantage are carried through them. Inputs are random, with prompts, tool
spans inside the completions (mask 0), fully masked sequences and batches of one. temper's
pipeline runs in build/tools/ppo_eval on the same float32 inputs; compared: rewards, advantages and
returns (on active tokens), whitened advantages, loss, dL/dlogp and dL/dV, the metric sums.
Tolerance: rtol 1e-5 on each entry plus 1e-6 of the array's largest magnitude (float32 storage
of advantages and returns is ~6e-8 relative).
"""
import json, math, os, random, subprocess, sys
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.environ.get("TEMPER_TOOLS", os.path.join(HERE, "../../build/tools"))
EVAL = os.path.join(TOOLS, "ppo_eval")
RTOL, ATOL_REL = 1e-5, 1e-6
fails = 0


def check(ok, name, detail=""):
    global fails
    print(("ok - " if ok else "not ok - ") + name + ("" if ok else ": " + detail), flush=True)
    fails += not ok


def close_arr(a, b, idx=None):
    a = torch.tensor(a, dtype=torch.float64)
    b = b.detach().to(torch.float64)
    if idx is not None:
        a, b = a[idx], b[idx]
    if a.numel() == 0:
        return True, ""
    err = (a - b).abs()
    ok = bool((err <= RTOL * b.abs() + ATOL_REL * float(b.abs().max()) + 1e-30).all())
    i = int(err.argmax())
    return ok, "max |diff| %.3g at %d (temper %.9g, torch %.9g)" % (float(err.max()), i, float(a[i]), float(b[i]))


def f32(x):
    return float(torch.tensor(x, dtype=torch.float32))


def make_batch(rng, n_seq, full_mask_prob=0.15):
    """Packed sequences: a prompt (mask 0), then completion tokens with tool spans (mask 0)."""
    spans, mask = [], []
    for _ in range(n_seq):
        start = len(mask)
        plen, clen = rng.randint(1, 4), rng.randint(1, 9)
        mask += [0] * plen
        masked = rng.random() < full_mask_prob
        c = [0 if masked else 1] * clen
        if not masked and clen > 3 and rng.random() < 0.6:  # a tool observation inside
            a = rng.randint(1, clen - 2)
            for k in range(a, min(clen - 1, a + rng.randint(1, 3))):
                c[k] = 0
        mask += c
        spans += [start, len(mask)]
    n = len(mask)
    old = [f32(-rng.uniform(0.05, 3.0)) for _ in range(n)]
    logp = [f32(o + rng.gauss(0, 0.3)) for o in old]
    ref = [f32(o + rng.gauss(0, 0.5)) for o in old]
    oval = [f32(rng.gauss(0, 1)) for _ in range(n)]
    val = [f32(v + rng.gauss(0, 0.3)) for v in oval]
    ent = [f32(rng.uniform(0, 3)) for _ in range(n)]
    scores = [f32(rng.gauss(0, 2)) for _ in range(n_seq)]
    return dict(logp=logp, old_logp=old, ref_logp=ref, values=val, old_values=oval, entropy=ent, mask=mask, spans=spans,
                scores=scores)


def kl_est(est, d):
    """kl_estimate of d = logp - ref_logp (divergence.h)."""
    if est == "k1":
        return d
    if est == "k2":
        return 0.5 * d * d
    return torch.exp(-d) - 1 + d  # k3


def reference(rq):
    spans, n_seq = rq["spans"], len(rq["spans"]) // 2
    T = max(spans[2 * i + 1] - spans[2 * i] for i in range(n_seq))

    def pad(key, grad=False):
        out = torch.zeros(n_seq, T, dtype=torch.float64)
        for i in range(n_seq):
            s, e = spans[2 * i], spans[2 * i + 1]
            out[i, : e - s] = torch.tensor(rq[key][s:e], dtype=torch.float64)
        return out.requires_grad_(grad)

    logp, old, ref, V, Vo, m = pad("logp", True), pad("old_logp"), pad("ref_logp"), pad("values", True), pad("old_values"), pad("mask")
    g, lam, kc, est = rq["gamma"], rq["lam"], rq["kl_coef"], rq["kl_estimator"]
    # TRL: rewards = -kl_coef * kl (of the rollout's log-probs), score added at the last real token
    kl = kl_est(est, old - ref) * m
    rewards = torch.zeros_like(old) if rq["kl_loss"] else -kc * kl
    for i in range(n_seq):
        act = [t for t in range(T) if m[i, t] > 0]
        if act:
            rewards[i, act[-1]] += rq["scores"][i]
    # verl compute_gae_advantage_return: skips response_mask = 0
    nextvalues, lastgaelam, rev = torch.zeros(n_seq, dtype=torch.float64), torch.zeros(n_seq, dtype=torch.float64), []
    for t in reversed(range(T)):
        delta = rewards[:, t] + g * nextvalues - Vo[:, t]
        lg = delta + g * lam * lastgaelam
        nextvalues = Vo[:, t] * m[:, t] + (1 - m[:, t]) * nextvalues
        lastgaelam = lg * m[:, t] + (1 - m[:, t]) * lastgaelam
        rev.append(lastgaelam)
    adv = torch.stack(rev[::-1], dim=1)
    ret = adv + Vo
    # TRL masked_whiten (unbiased variance, rsqrt(var + 1e-8))
    cnt = m.sum()
    mean = (adv * m).sum() / max(float(cnt), 1)
    var = (((adv - mean) ** 2) * m).sum() / max(float(cnt), 1)
    white = (adv - mean) * torch.rsqrt(var * cnt / (cnt - 1) + 1e-8) if cnt > 1 else adv - mean if cnt > 0 else adv
    # TRL's losses
    ratio = torch.exp(logp - old)
    e, ev = rq["cliprange"], rq["cliprange_value"]
    pg = torch.max(-white * ratio, -white * torch.clamp(ratio, 1 - e, 1 + e))
    vpc = torch.clamp(V, Vo - ev, Vo + ev)
    vf = 0.5 * torch.max((V - ret) ** 2, (vpc - ret) ** 2)
    per = pg + rq["vf_coef"] * vf
    if rq["kl_loss"]:
        per = per + kc * kl_est(est, logp - ref)
    loss = (per * m).sum() / max(rq["norm_tokens"], 1)
    loss.backward()

    def unpad(x):
        out = torch.zeros(len(rq["mask"]), dtype=torch.float64)
        for i in range(n_seq):
            s, e2 = spans[2 * i], spans[2 * i + 1]
            out[s:e2] = x[i, : e2 - s]
        return out

    pgc = ((-white * torch.clamp(ratio, 1 - e, 1 + e) > -white * ratio).double() * m).sum()
    vfc = ((((vpc - ret) ** 2) > ((V - ret) ** 2)).double() * m).sum()
    metrics = dict(tokens=float(cnt), pg_sum=float((pg * m).sum()), vf_sum=float((vf * m).sum()),
                   pg_clip=float(pgc), vf_clip=float(vfc), approxkl_sum=float((0.5 * (logp - old) ** 2 * m).sum()),
                   ratio_sum=float((ratio * m).sum()))
    return dict(rewards=unpad(rewards), adv=unpad(adv), ret=unpad(ret), adv_white=unpad(white), loss=float(loss),
                dlogp=unpad(logp.grad), dvalue=unpad(V.grad), metrics=metrics)


def main():
    rng = random.Random(20261202)
    cases = []
    for est in ["k1", "k3", "k2"]:
        for kl_loss in [False, True]:
            for (g, lam) in [(1.0, 0.95), (0.9, 0.8), (1.0, 1.0)]:
                for n_seq in [1, 4]:
                    rq = make_batch(rng, n_seq)
                    ntok = sum(rq["mask"])
                    rq.update(kl_estimator=est, kl_loss=kl_loss, gamma=g, lam=lam, kl_coef=0.05 if not kl_loss else 0.1,
                              cliprange=0.2, cliprange_value=0.2, vf_coef=0.1, norm_tokens=ntok)
                    cases.append(rq)
    # a batch where every token clips (large ratio spread) and another with vf_coef 0.5, ev 0.5 (verl)
    rq = make_batch(rng, 3, 0)
    rq["logp"] = [f32(o + rng.choice([-1, 1]) * rng.uniform(0.5, 1.0)) for o in rq["old_logp"]]
    rq.update(kl_estimator="k1", kl_loss=False, gamma=1.0, lam=0.95, kl_coef=0.05, cliprange=0.2, cliprange_value=0.2, vf_coef=0.1,
              norm_tokens=sum(rq["mask"]))
    cases.append(rq)
    rq = make_batch(rng, 5)
    rq.update(kl_estimator="k3", kl_loss=False, gamma=1.0, lam=0.95, kl_coef=0.05, cliprange=0.2, cliprange_value=0.5, vf_coef=0.5,
              norm_tokens=3 * max(1, sum(rq["mask"])))  # a micro-batch share of a larger step
    cases.append(rq)
    r = subprocess.run([EVAL], input=json.dumps(cases), capture_output=True, text=True)
    if r.returncode != 0:
        print("not ok - ppo_eval failed: " + r.stderr.strip()[-300:])
        sys.exit(1)
    outs = json.loads(r.stdout)
    clipped = 0
    for k, (rq, out) in enumerate(zip(cases, outs)):
        name = "ppo case %d (%s, kl %s, gamma %g lam %g, %d seqs)" % (k, rq["kl_estimator"], "loss" if rq["kl_loss"] else "reward",
                                                                   rq["gamma"], rq["lam"], len(rq["spans"]) // 2)
        if "error" in out:
            check(False, name, out["error"])
            continue
        ref = reference(rq)
        act = [i for i, x in enumerate(rq["mask"]) if x]
        for key in ["rewards", "adv", "ret", "adv_white", "dlogp", "dvalue"]:
            ok, d = close_arr(out[key], ref[key], act if key in ("adv", "ret", "adv_white") else None)
            check(ok, "%s: %s" % (name, key), d)
        check(abs(out["loss"] - ref["loss"]) <= RTOL * abs(ref["loss"]) + 1e-9, name + ": loss",
              "temper %.9g torch %.9g" % (out["loss"], ref["loss"]))
        bad = [key for key, v in ref["metrics"].items() if abs(out["metrics"][key] - v) > RTOL * abs(v) + 1e-7]
        check(not bad, name + ": metric sums", ", ".join("%s %.9g vs %.9g" % (key, out["metrics"][key], ref["metrics"][key]) for key in bad))
        clipped += ref["metrics"]["pg_clip"] > 0 and ref["metrics"]["vf_clip"] > 0
    check(clipped >= 5, "the cases exercise both clips (%d cases with clipped policy and value tokens)" % clipped)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
