#!/usr/bin/python3
"""temper's objectives (src/objectives) against PyTorch autograd.

The references below are written from TRL's formulas (DPOTrainer loss ladder incl. the
<=0.28 `label_smoothing`/`robust`/`rpo_alpha` forms, KTOTrainer, RewardTrainer, SFT's
completion-only token mean) and from Critical-Tokens-Matter's CDPOTrainer.dpo_loss, on
TRL-style padded tensors: per-token log-probs gathered into [B, T], masked to 0, summed.
Autograd gives dL/dlogp, compared with temper's dlogp from build/tools/objective_eval
(rtol 1e-5), together with the loss and every TRL metric, for every loss type and flag
combination, random inputs including fully masked sequences and batches of one; plus
gradient accumulation (micro-batches with the step's normalizers add up to the full
batch) and bad-input errors.
"""
import itertools, json, math, os, random, subprocess, sys
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.environ.get("TEMPER_TOOLS", os.path.join(HERE, "../../build/tools"))
EVAL = os.path.join(TOOLS, "objective_eval")
RTOL = 1e-5
fails = 0
checks = 0


def check(ok, name, detail=""):
    global fails, checks
    checks += 1
    print(("ok - " if ok else "not ok - ") + name + ("" if ok else ": " + detail), flush=True)
    fails += not ok


def run(reqs):
    r = subprocess.run([EVAL], input=json.dumps(reqs), capture_output=True, text=True)
    if r.returncode != 0:
        print("not ok - objective_eval failed: " + r.stderr.strip()[-300:])
        sys.exit(1)
    return json.loads(r.stdout)


def close(a, b, rtol=RTOL):
    return abs(a - b) <= rtol * abs(b) + 1e-12


def close_arr(a, b, rtol=RTOL):
    a = torch.tensor(a, dtype=torch.float64)
    b = b.detach().to(torch.float64)
    if a.shape != b.shape:
        return False, "shape %s vs %s" % (tuple(a.shape), tuple(b.shape))
    if a.numel() == 0:
        return True, ""
    scale = float(b.abs().max())
    err = (a - b).abs()
    ok = bool((err <= rtol * b.abs() + 1e-8 * scale + 1e-30).all())
    i = int(err.argmax())
    return ok, "max |diff| %.3g at %d (temper %.9g, torch %.9g)" % (float(err.max()), i, float(a[i]), float(b[i]))


# ---------------------------------------------------------------------------
# random batches
rnd = random.Random(1234)


def f32(x):
    return float(torch.tensor(x, dtype=torch.float32))


def make_seqs(n_seq, full_mask_prob=0.25, with_ref=True, with_weight=False, with_mask=True, lens=None):
    """Flat token arrays and spans, as the trainer would pack them."""
    logp, ref, mask, weight, spans = [], [], [], [], []
    for i in range(n_seq):
        L = lens[i] if lens else rnd.randint(1, 9)
        s = len(logp)
        prompt = rnd.randint(0, 3)
        full = rnd.random() < full_mask_prob
        for t in range(L):
            lp = f32(-rnd.random() * 4 - 0.01)
            logp.append(lp)
            ref.append(f32(lp + rnd.gauss(0, 0.7)))
            weight.append(f32(rnd.random()))
            # a prompt prefix, a masked "tool output" hole, or a fully masked sequence
            m = 0 if (full or t < prompt or rnd.random() < 0.15) else 1
            mask.append(m)
        spans += [s, s + L]
    d = {"logp": logp, "spans": spans}
    if with_ref:
        d["ref_logp"] = ref
    if with_mask:
        d["mask"] = mask
    if with_weight:
        d["weight"] = weight
    return d


def tensors(req):
    """Flat leaf tensor for logp (grad), and padded [S, T] views gathered from it (TRL layout)."""
    lp = torch.tensor(req["logp"], dtype=torch.float64, requires_grad=True)
    n = len(req["logp"])
    ref = torch.tensor(req["ref_logp"], dtype=torch.float64) if req.get("ref_logp") is not None else torch.zeros(n, dtype=torch.float64)
    mask = torch.tensor(req["mask"], dtype=torch.float64) if req.get("mask") is not None else torch.ones(n, dtype=torch.float64)
    w = torch.tensor(req["weight"], dtype=torch.float64) if req.get("weight") is not None else torch.ones(n, dtype=torch.float64)
    sp = req["spans"]
    S = len(sp) // 2
    T = max([sp[2 * i + 1] - sp[2 * i] for i in range(S)] + [1])
    idx = torch.zeros(S, T, dtype=torch.long)
    valid = torch.zeros(S, T, dtype=torch.float64)
    for i in range(S):
        L = sp[2 * i + 1] - sp[2 * i]
        idx[i, :L] = torch.arange(sp[2 * i], sp[2 * i + 1])
        valid[i, :L] = 1
    if n == 0:
        z = torch.zeros(S, T, dtype=torch.float64)
        return lp, z + 0 * lp.sum(), z, z, z
    m = mask[idx] * valid
    return lp, lp[idx], ref[idx], m, w[idx] * valid


def grad_of(loss, lp):
    if not loss.requires_grad:
        return torch.zeros_like(lp)
    g, = torch.autograd.grad(loss, lp, allow_unused=True)
    return torch.zeros_like(lp) if g is None else g


# ---------------------------------------------------------------------------
# references from TRL's formulas
def dpo_ref(req):
    lp, P, R, M, W = tensors(req)
    pairs = req["pairs"]
    ci = torch.tensor(pairs[0::2], dtype=torch.long)
    ri = torch.tensor(pairs[1::2], dtype=torch.long)
    beta = req["beta"]
    eps = req.get("label_smoothing", 0.0)
    lw = req["loss_weights"]
    norm = req["norm"]
    per_token = P * M  # per_token_logps[completion_mask == 0] = 0
    ref_per_token = R * M
    if req.get("form") == "position":
        # CDPOTrainer.dpo_loss: per-token masked log-ratios, chosen and rejected paired by position
        u = (per_token - ref_per_token) * W
        logits = u[ci] - u[ri]
        losses = -(1 - eps) * F.logsigmoid(beta * logits) - eps * F.logsigmoid(-beta * logits)
        lens = torch.tensor([req["spans"][2 * i + 1] - req["spans"][2 * i] for i in range(len(req["spans"]) // 2)])
        kmax = torch.maximum(lens[ci], lens[ri])
        n_pad = float((logits.shape[1] - kmax).sum())  # padded positions: const log 2, no gradient
        loss = lw.get("sigmoid", 0.0) * losses.sum() / norm["positions"]
        pad_const = lw.get("sigmoid", 0.0) * n_pad * math.log(2) / norm["positions"]
        logps = (per_token * W).sum(1)
        ratios = ((per_token - ref_per_token) * W).sum(1)
    else:
        pad_const = 0.0
        logps = (per_token * W).sum(1)
        ref_logps = (ref_per_token * W).sum(1)
        if req.get("length_normalize"):
            size = M.sum(1).clamp(min=1)  # TRL divides by size_completion (0/0 for an empty one: temper takes 0)
            logps = logps / size
            ref_logps = ref_logps / size
        ratios = logps - ref_logps
        chosen_logratios, rejected_logratios = ratios[ci], ratios[ri]
        d = chosen_logratios - rejected_logratios  # delta_log_odds
        loss = torch.zeros((), dtype=torch.float64)
        for t, wt in lw.items():
            if t == "sigmoid":
                l = -F.logsigmoid(beta * d) * (1 - eps) - F.logsigmoid(-beta * d) * eps
            elif t == "hinge":
                l = torch.relu(1 - beta * d)
            elif t == "ipo":
                l = (d - 1 / (2 * beta)) ** 2
            elif t == "robust":
                l = (-F.logsigmoid(beta * d) * (1 - eps) + F.logsigmoid(-beta * d) * eps) / (1 - 2 * eps)
            elif t == "nca_pair":
                cr, rr = beta * chosen_logratios, beta * rejected_logratios
                l = -F.logsigmoid(cr) - 0.5 * F.logsigmoid(-cr) - 0.5 * F.logsigmoid(-rr)
            elif t == "sft":
                continue
            loss = loss + wt * l.sum() / norm["pairs"]
    # sft / rpo: F.cross_entropy over the chosen completion tokens (token NLL), step-normalized
    w_sft = lw.get("sft", 0.0) + req.get("rpo_alpha", 0.0)
    chosen_nll = -(per_token[ci]).sum()
    chosen_tokens = M[ci].sum()
    if w_sft:
        loss = loss + w_sft * chosen_nll / norm["chosen_tokens"]
    g = grad_of(loss, lp)
    with torch.no_grad():
        cr = beta * ratios[ci]
        rr = beta * ratios[ri]
        met = {
            "rewards/chosen": cr.mean().item(), "rewards/rejected": rr.mean().item(),
            "rewards/accuracies": (cr > rr).double().mean().item(), "rewards/margins": (cr - rr).mean().item(),
            "logps/chosen": logps[ci].mean().item(), "logps/rejected": logps[ri].mean().item(),
            "nll_loss": (chosen_nll / chosen_tokens).item() if chosen_tokens > 0 else 0.0,
        }
    return float(loss), g, met, pad_const


def kto_ref(req):
    lp, P, R, M, W = tensors(req)
    beta, z0 = req["beta"], req["z0"]
    lab = torch.tensor(req["labels"], dtype=torch.bool)
    logps = (P * M * W).sum(1)
    ref_logps = (R * M * W).sum(1)
    ratios = logps - ref_logps
    ch, rj = ratios[lab], ratios[~lab]
    kl = torch.tensor(z0, dtype=torch.float64)
    if req.get("loss_type", "kto") == "kto":
        chosen_losses = 1 - torch.sigmoid(beta * (ch - kl))
        rejected_losses = 1 - torch.sigmoid(beta * (kl - rj))
    else:  # apo_zero_unpaired
        chosen_losses = 1 - torch.sigmoid(beta * ch)
        rejected_losses = torch.sigmoid(beta * rj)
    losses = torch.cat((req["desirable_weight"] * chosen_losses, req["undesirable_weight"] * rejected_losses), 0)
    loss = losses.sum() / req["norm"]  # TRL: nanmean over the micro-batch
    g = grad_of(loss, lp)
    with torch.no_grad():
        nc, nr = int(lab.sum()), int((~lab).sum())
        rc = (beta * ch).sum().item() / nc if nc else 0.0
        rr_ = (beta * rj).sum().item() / nr if nr else 0.0
        met = {"rewards/chosen": rc, "rewards/rejected": rr_, "rewards/margins": rc - rr_,
               "logps/chosen": logps[lab].sum().item() / nc if nc else 0.0,
               "logps/rejected": logps[~lab].sum().item() / nr if nr else 0.0,
               "kl": z0, "count/chosen": nc, "count/rejected": nr}
    return float(loss), g, met


def kto_z0_ref(req):
    lp, P, R, M, W = tensors(req)
    d = ((P - R) * M * W).sum(1)
    return float(d.mean().clamp(min=0)) if d.numel() else 0.0


def sft_ref(req):
    lp, P, R, M, W = tensors(req)
    nll = -(P * M * W)
    if req.get("per_sequence"):
        n = M.sum(1)
        per = torch.where(n > 0, nll.sum(1) / n.clamp(min=1), torch.zeros_like(n))
        loss = per.sum() / req["norm"]
    else:
        loss = nll.sum() / req["norm"]
    g = grad_of(loss, lp)
    with torch.no_grad():
        nt = M.sum().item()
        met = {"num_tokens": nt, "nll": (-(P * M).sum()).item() / nt if nt else 0.0}
    return float(loss), g, met


def rm_ref(req):
    rw = torch.tensor(req["r_chosen"], dtype=torch.float64, requires_grad=True)
    rl = torch.tensor(req["r_rejected"], dtype=torch.float64, requires_grad=True)
    if req.get("margin") is not None:
        loss = -F.logsigmoid(rw - rl - torch.tensor(req["margin"], dtype=torch.float64)).sum() / req["norm"]
    else:
        loss = -F.logsigmoid(rw - rl).sum() / req["norm"]
    c = req.get("center_coef", 0.0)
    if c:
        loss = loss + c * ((rw + rl) ** 2).sum() / req["norm"]
    gw, gl = torch.autograd.grad(loss, (rw, rl))
    with torch.no_grad():
        met = {"rewards/chosen": rw.mean().item(), "rewards/rejected": rl.mean().item(),
               "rewards/accuracies": (rw > rl).double().mean().item(), "rewards/margins": (rw - rl).mean().item()}
    return float(loss), gw, gl, met


def compare(name, got, loss, grads, met):
    if "error" in got:
        check(False, name, "temper error: " + got["error"])
        return
    problems = []
    if not close(got["loss"], loss):
        problems.append("loss %.12g vs torch %.12g" % (got["loss"], loss))
    for key, g in grads.items():
        ok, why = close_arr(got[key], g)
        if not ok:
            problems.append(key + " " + why)
    for k, v in met.items():
        if k not in got["metrics"] or not close(got["metrics"][k], v):
            problems.append("metric %s %s vs torch %.12g" % (k, got["metrics"].get(k), v))
    check(not problems, name, "; ".join(problems))


# ---------------------------------------------------------------------------
# DPO: every loss type and flag combination
def pair_batch(n_pairs, **kw):
    d = make_seqs(2 * n_pairs, **kw)
    order = list(range(2 * n_pairs))
    rnd.shuffle(order)  # pairs name any two sequences of the packed batch
    d["pairs"] = order
    return d


def dpo_request(base, loss_weights, beta, eps, length_norm, rpo, form="sequence"):
    req = dict(base)
    req.update(objective="dpo", beta=beta, loss_weights=loss_weights, label_smoothing=eps,
               length_normalize=bool(length_norm), rpo_alpha=rpo, form=form)
    M = req.get("mask") or [1] * len(req["logp"])
    sp = req["spans"]
    ci = req["pairs"][0::2]
    ntok = sum(sum(M[sp[2 * i]:sp[2 * i + 1]]) for i in ci)
    npos = sum(max(sp[2 * c + 1] - sp[2 * c], sp[2 * r + 1] - sp[2 * r]) for c, r in zip(req["pairs"][0::2], req["pairs"][1::2]))
    T = max(sp[2 * i + 1] - sp[2 * i] for i in range(len(sp) // 2))
    # the micro-batch's own counts: TRL's .mean() (the released cDPO code: mean over B×T)
    req["norm"] = {"pairs": len(ci), "chosen_tokens": max(ntok, 1), "positions": len(ci) * T}
    return req


LOSSES = {
    "sigmoid": {"sigmoid": 1.0}, "hinge": {"hinge": 1.0}, "ipo": {"ipo": 1.0}, "robust": {"robust": 1.0},
    "nca_pair": {"nca_pair": 1.0}, "sft": {"sft": 1.0}, "sigmoid+sft": {"sigmoid": 1.0, "sft": 0.1},
    "all": {"sigmoid": 0.7, "hinge": 0.3, "ipo": 0.05, "robust": 0.4, "nca_pair": 0.6, "sft": 0.2},
}
cases, names = [], []
for (lname, lw), eps, ln, wts, rpo, bsz in itertools.product(LOSSES.items(), [0.0, 0.2], [0, 1], [0, 1], [0.0, 0.5], [4, 1]):
    if eps and not any(k in lw for k in ("sigmoid", "robust")):
        continue  # smoothing only changes sigmoid and robust
    beta = rnd.choice([0.1, 0.5, 2.0])
    base = pair_batch(bsz, with_weight=bool(wts), full_mask_prob=0.25 if bsz > 1 else 0.1)
    cases.append(dpo_request(base, lw, beta, eps, ln, rpo))
    names.append("dpo %s eps=%g length_norm=%d weights=%d rpo=%g pairs=%d beta=%g" % (lname, eps, ln, wts, rpo, bsz, beta))
# reference-free, no mask given
for lname in ("sigmoid", "ipo", "nca_pair"):
    base = pair_batch(3, with_ref=False, with_mask=False)
    cases.append(dpo_request(base, LOSSES[lname], 0.1, 0.0, 0, 0.0))
    names.append("dpo %s reference-free, mask absent" % lname)
# every sequence fully masked
base = pair_batch(3, full_mask_prob=1.0)
cases.append(dpo_request(base, {"sigmoid": 1.0, "ipo": 0.5, "nca_pair": 0.5}, 0.1, 0.1, 1, 0.0))
names.append("dpo all sequences fully masked")
# large log-ratios: no overflow in the stable softplus/sigmoid
base = pair_batch(3)
base["logp"] = [x * 60 for x in base["logp"]]
cases.append(dpo_request(base, {"sigmoid": 1.0, "robust": 0.5, "nca_pair": 1.0}, 1.0, 0.1, 0, 0.0))
names.append("dpo large log-ratios stay finite")
# cDPO position form (the released code) with chosen/rejected weights
for eps, wts, rpo, bsz in itertools.product([0.0, 0.2], [0, 1], [0.0, 0.5], [4, 1]):
    base = pair_batch(bsz, with_weight=bool(wts))
    cases.append(dpo_request(base, {"sigmoid": 1.0}, 0.1, eps, 0, rpo, form="position"))
    names.append("cdpo position eps=%g weights=%d rpo=%g pairs=%d" % (eps, wts, rpo, bsz))

# KTO
kto_cases, kto_names = [], []
for lt, wts, z0, bsz, lam in itertools.product(["kto", "apo_zero_unpaired"], [0, 1], [0.0, "rand"], [6, 1], [(1.0, 1.0), (1.0, 1.33)]):
    req = make_seqs(bsz, with_weight=bool(wts))
    labels = [rnd.random() < 0.5 for _ in range(bsz)]
    if bsz > 2:
        labels[0], labels[1] = True, False
    zz = f32(rnd.random() * 0.8) if z0 == "rand" else 0.0
    req.update(objective="kto", labels=labels, z0=zz, beta=rnd.choice([0.1, 0.5]), loss_type=lt,
               desirable_weight=lam[0], undesirable_weight=lam[1], norm=bsz)
    kto_cases.append(req)
    kto_names.append("kto %s weights=%d z0=%g seqs=%d lambda=%s" % (lt, wts, zz, bsz, lam))
req = make_seqs(3)
req.update(objective="kto", labels=[True, True, True], z0=0.2, beta=0.1, desirable_weight=1.0, undesirable_weight=1.0, norm=3)
kto_cases.append(req)
kto_names.append("kto only desirable completions")
z0_cases = []
for bsz in (5, 1):
    for i in range(3):
        r = make_seqs(bsz)
        r["objective"] = "kto_z0"
        if i == 2:
            r["ref_logp"] = [x - 3 for x in r["logp"]]  # positive KL: not clamped
        z0_cases.append(r)

# SFT
sft_cases = []
for per_seq, wts, bsz in itertools.product([0, 1], [0, 1], [5, 1]):
    r = make_seqs(bsz, with_weight=bool(wts), with_ref=False)
    M = r["mask"]
    ntok = sum(M)
    r.update(objective="sft", per_sequence=bool(per_seq), norm=(bsz if per_seq else max(ntok, 1)))
    sft_cases.append(r)

# Bradley–Terry reward model
rm_cases = []
for margin, center, n in itertools.product([0, 1], [0.0, 0.01], [7, 1]):
    r = {"objective": "rm", "r_chosen": [f32(rnd.gauss(0, 2)) for _ in range(n)],
         "r_rejected": [f32(rnd.gauss(0, 2)) for _ in range(n)], "center_coef": center, "norm": n}
    if margin:
        r["margin"] = [f32(rnd.random()) for _ in range(n)]
    rm_cases.append(r)

# ---------------------------------------------------------------------------
all_reqs = cases + kto_cases + z0_cases + sft_cases + rm_cases
res = run(all_reqs)
check(len(res) == len(all_reqs), "objective_eval answers every request")
k = 0
for name, req in zip(names, cases):
    loss, g, met, pad = dpo_ref(req)
    # position form: temper leaves out the padded positions' constant log 2 (same gradient)
    compare(name, res[k], loss - pad, {"dlogp": g}, met)
    k += 1
for name, req in zip(kto_names, kto_cases):
    loss, g, met = kto_ref(req)
    compare(name, res[k], loss, {"dlogp": g}, met)
    k += 1
for i, req in enumerate(z0_cases):
    z = kto_z0_ref(req)
    got = res[k]
    check("loss" in got and close(got["loss"], z), "kto z0 = clamp_min(mean mismatched log-ratio, 0), case %d (%s vs %s)" % (i, got.get("loss"), z))
    k += 1
for req in sft_cases:
    loss, g, met = sft_ref(req)
    compare("sft per_sequence=%d weights=%d seqs=%d" % (req["per_sequence"], "weight" in req, len(req["spans"]) // 2),
            res[k], loss, {"dlogp": g}, met)
    k += 1
for req in rm_cases:
    loss, gw, gl, met = rm_ref(req)
    compare("reward model margin=%d center=%g pairs=%d" % ("margin" in req, req["center_coef"], len(req["r_chosen"])),
            res[k], loss, {"d_chosen": gw, "d_rejected": gl}, met)
    k += 1

# ---------------------------------------------------------------------------
# Gradient accumulation: micro-batches run with the whole step's normalizers add up to
# the big batch's loss and gradient (1e-6).
def split(req, parts):
    """Splits a pair/sequence batch into micro-batch requests (token arrays re-based)."""
    out = []
    sp = req["spans"]
    for part in parts:  # part: list of sequence indices
        r = {k: v for k, v in req.items() if k not in ("logp", "ref_logp", "mask", "weight", "spans", "pairs", "labels")}
        remap, spans = {}, []
        for key in ("logp", "ref_logp", "mask", "weight"):
            if key in req:
                r[key] = []
        for j, i in enumerate(part):
            remap[i] = j
            s, e = sp[2 * i], sp[2 * i + 1]
            spans += [len(r["logp"]), len(r["logp"]) + e - s]
            for key in ("logp", "ref_logp", "mask", "weight"):
                if key in req:
                    r[key] += req[key][s:e]
        r["spans"] = spans
        if "pairs" in req:
            r["pairs"] = [remap[i] for i in req["pairs"] if i in remap]
        if "labels" in req:
            r["labels"] = [req["labels"][i] for i in part]
        out.append(r)
    return out


def flat_order(req, parts):
    sp = req["spans"]
    return [t for part in parts for i in part for t in range(sp[2 * i], sp[2 * i + 1])]


acc = []
big = dpo_request(pair_batch(6, with_weight=True), LOSSES["all"], 0.1, 0.1, 0, 0.3)
prs = big["pairs"]
acc.append(("dpo all loss types + rpo", big, [prs[0:4], prs[4:8], prs[8:12]]))
bigp = dpo_request(pair_batch(4, with_weight=True), {"sigmoid": 1.0}, 0.1, 0.1, 0, 0.3, form="position")
prs = bigp["pairs"]
acc.append(("cdpo position", bigp, [prs[0:2], prs[2:8]]))
bigk = make_seqs(8, with_weight=True)
bigk.update(objective="kto", labels=[i % 3 == 0 for i in range(8)], z0=0.3, beta=0.1, desirable_weight=1.0,
            undesirable_weight=1.2, norm=8)
acc.append(("kto", bigk, [[0, 1, 2], [3, 4, 5, 6, 7]]))
bigs = make_seqs(6, with_ref=False)
bigs.update(objective="sft", per_sequence=False, norm=max(sum(bigs["mask"]), 1))
acc.append(("sft per token", bigs, [[0, 1], [2, 3, 4, 5]]))
bigs2 = dict(bigs, per_sequence=True, norm=6)
acc.append(("sft per sequence", bigs2, [[0, 1, 2, 3], [4, 5]]))
reqs = []
for _, b, parts in acc:
    reqs.append(b)
    reqs += split(b, parts)
res = run(reqs)
k = 0
for name, b, parts in acc:
    full = res[k]
    micro = res[k + 1:k + 1 + len(parts)]
    k += 1 + len(parts)
    loss = sum(m["loss"] for m in micro)
    g = [x for m in micro for x in m["dlogp"]]
    gf = [full["dlogp"][t] for t in flat_order(b, parts)]
    md = max(abs(x - y) for x, y in zip(g, gf))
    check(abs(loss - full["loss"]) <= 1e-6 * abs(full["loss"]) and md <= 1e-6 * max(abs(x) for x in gf) and len(g) == len(gf),
          "gradient accumulation: %s over %d micro-batches equals one batch (loss %.9g vs %.9g, max grad diff %.3g)"
          % (name, len(parts), loss, full["loss"], md))

# ---------------------------------------------------------------------------
# Bad input is an error, not a crash or a NaN.
base = pair_batch(2)
bad = [
    ("robust with label_smoothing 0.5", dpo_request(base, {"robust": 1.0}, 0.1, 0.5, 0, 0.0)),
    ("beta 0", dpo_request(base, {"sigmoid": 1.0}, 0.0, 0.0, 0, 0.0)),
    ("position form with ipo", dpo_request(base, {"ipo": 1.0}, 0.1, 0.0, 0, 0.0, form="position")),
    ("position form with length_normalize", dpo_request(base, {"sigmoid": 1.0}, 0.1, 0.0, 1, 0.0, form="position")),
    ("unknown loss type", dpo_request(base, {"simpo": 1.0}, 0.1, 0.0, 0, 0.0)),
    ("pairs normalizer 0", dict(dpo_request(base, {"sigmoid": 1.0}, 0.1, 0.0, 0, 0.0), norm={"pairs": 0})),
    ("pair names a missing sequence", dict(dpo_request(base, {"sigmoid": 1.0}, 0.1, 0.0, 0, 0.0), pairs=[0, 9])),
    ("span outside the tokens", dict(dpo_request(base, {"sigmoid": 1.0}, 0.1, 0.0, 0, 0.0), spans=[0, 999, 0, 1, 1, 2, 2, 3])),
    ("kto normalizer 0", dict(make_seqs(2), objective="kto", labels=[1, 0], z0=0, norm=0)),
    ("sft normalizer 0", dict(make_seqs(2), objective="sft", norm=0)),
]
res = run([r for _, r in bad])
for (name, _), got in zip(bad, res):
    check("error" in got, "rejects " + name + (": " + got["error"] if "error" in got else ""))

print("%d checks, %d failed" % (checks, fails), file=sys.stderr)
sys.exit(1 if fails else 0)
