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
# GRPO (TRL GRPOTrainer) and DPH-RL's rehearsal divergences. The references below are TRL's
# _generate_and_score_completions / _compute_loss and DPH-RL's dp_actor / core_algos code, with
# the per-micro-batch normalizers replaced by the whole step's (the caller's grpo_norm).
def pad_tok(req, key, fill=0.0):
    """A per-token array of req gathered into the padded [S, T] layout of tensors()."""
    sp = req["spans"]
    S = len(sp) // 2
    T = max([sp[2 * i + 1] - sp[2 * i] for i in range(S)] + [1])
    out = torch.full((S, T), fill, dtype=torch.float64)
    v = torch.tensor(req[key], dtype=torch.float64)
    for i in range(S):
        L = sp[2 * i + 1] - sp[2 * i]
        out[i, :L] = v[sp[2 * i]:sp[2 * i + 1]]
    return out


def kl_ref(est, logp, ref):
    """Per-token KL estimator, as TRL (k3) and verl (kl_penalty) write it."""
    if est == "k1":
        return logp - ref
    if est == "k2":
        return 0.5 * (logp - ref).square()
    if est == "k3":  # TRL GRPO: no clamps
        return torch.exp(ref - logp) - (ref - logp) - 1
    kl = torch.clamp(ref - logp, min=-20, max=20)  # verl low_var_kl
    return torch.clamp(torch.exp(kl) - kl - 1, min=-10, max=10)


def grpo_ref(req):
    lp, P, R, M, W = tensors(req)
    A = pad_tok(req, "adv")
    old = pad_tok(req, "old_logp") if req.get("old_logp") is not None else P.detach()
    eps, eps_high, delta, beta = req["epsilon"], req["epsilon_high"], req.get("delta"), req.get("beta", 0.0)
    has_ref = req.get("ref_logp") is not None
    coef_1 = torch.exp(P - old)
    if has_ref:
        per_token_kl = kl_ref(req.get("kl_estimator", "k3"), P, R)
        if req.get("kl_bias_correction"):
            per_token_kl = per_token_kl * coef_1
    coef_2 = torch.clamp(coef_1, 1 - eps, 1 + eps_high)
    if delta:
        coef_1 = torch.clamp(coef_1, max=delta)
    per_token_loss = -torch.min(coef_1 * A, coef_2 * A)
    if req.get("weight") is not None:
        per_token_loss = per_token_loss * W  # TRL: the vLLM IS ratio / entropy mask multiply the policy term
    if beta:
        per_token_loss = per_token_loss + beta * per_token_kl
    norm, lt = req["norm"], req["loss_type"]
    if lt == "grpo":
        loss = ((per_token_loss * M).sum(-1) / M.sum(-1).clamp(min=1.0)).sum() / norm["sequences"]
    elif lt == "dr_grpo":
        loss = (per_token_loss * M).sum() / (norm["sequences"] * norm["max_completion_length"])
    else:  # bnpo, dapo over the whole step
        loss = (per_token_loss * M).sum() / max(norm["tokens"], 1.0)
    g = grad_of(loss, lp)
    with torch.no_grad():
        ntok = M.sum()
        gm = lambda x: float((x * M).sum() / ntok.clamp(min=1.0))
        low = ((coef_1 < 1 - eps) & (A < 0)).double()
        high = ((coef_1 > 1 + eps_high) & (A > 0)).double()
        met = {"num_tokens": float(ntok), "clip_ratio/low_mean": gm(low), "clip_ratio/high_mean": gm(high),
               "clip_ratio/region_mean": gm(((low + high) > 0).double())}
        if has_ref:
            met["kl"] = gm(per_token_kl)
        if req.get("entropy") is not None:
            met["entropy"] = gm(pad_tok(req, "entropy"))
        if req.get("sampler_logp") is not None:
            S = pad_tok(req, "sampler_logp")
            d = (old - S).abs()[M > 0]
            pd = (old.exp() - S.exp()).abs()[M > 0]
            met["sampling/sampling_logp_difference/mean"] = float(d.mean()) if d.numel() else 0.0
            met["sampling/sampling_logp_difference/max"] = float(d.max()) if d.numel() else 0.0
            met["training/rollout_probs_diff_mean"] = float(pd.mean()) if pd.numel() else 0.0
            met["training/rollout_probs_diff_max"] = float(pd.max()) if pd.numel() else 0.0
    return float(loss), g, met


def grpo_counts(req):
    M = req.get("mask") or [1] * len(req["logp"])
    sp = req["spans"]
    return {"sequences": len(sp) // 2, "tokens": sum(sum(M[sp[2 * i]:sp[2 * i + 1]]) for i in range(len(sp) // 2)),
            "max_completion_length": 12}


def grpo_batch(n_seq, old=True, weight=False, extras=True, full_mask_prob=0.2, spread=0.35):
    d = make_seqs(n_seq, with_weight=weight, full_mask_prob=full_mask_prob)
    sp = d["spans"]
    # one advantage per sequence, both signs and some exact zeros (zero-std groups), broadcast
    advs = [f32(rnd.choice([0.0, rnd.gauss(0, 1.2), rnd.gauss(0, 1.2)])) for _ in range(n_seq)]
    d["adv"] = [advs[i] for i in range(n_seq) for _ in range(sp[2 * i + 1] - sp[2 * i])]
    if old:  # ρ = e^{N(0, spread)}: inside and outside [1-ε, 1+ε_high], above δ
        d["old_logp"] = [f32(x + rnd.gauss(0, spread)) for x in d["logp"]]
    if extras:
        base = d.get("old_logp", d["logp"])
        d["sampler_logp"] = [f32(x + rnd.gauss(0, 0.05)) for x in base]
        d["entropy"] = [f32(rnd.random() * 3) for _ in d["logp"]]
    return d


def grpo_request(base, loss_type, eps, eps_high, delta, beta, est, bias=False):
    req = dict(base)
    req.update(objective="grpo", loss_type=loss_type, epsilon=eps, epsilon_high=eps_high, beta=beta,
               kl_estimator=est or "k3", kl_bias_correction=bool(bias))
    if delta:
        req["delta"] = delta
    req["norm"] = grpo_counts(req)
    return req


KL_VARIANTS = [(0.0, None, False), (0.04, "k1", False), (0.04, "k2", False), (0.04, "k3", False),
               (0.04, "low_var_kl", False), (0.04, "k3", True)]
g_cases, g_names = [], []
cover = {"low clipped (A<0, ρ<1-ε)": 0, "high clipped (A>0, ρ>1+ε_high)": 0, "dual clip (A<0, ρ>δ)": 0,
         "unclipped outside region (A>0, ρ<1-ε)": 0, "unclipped above region (A<0, 1+ε_high<ρ<δ)": 0}
for lt, (eps, eh), delta, (beta, est, bias) in itertools.product(["grpo", "bnpo", "dr_grpo", "dapo"], [(0.2, 0.2), (0.2, 0.28)],
                                                                  [None, 1.5], KL_VARIANTS):
    base = grpo_batch(rnd.choice([5, 6]), weight=rnd.random() < 0.4, extras=rnd.random() < 0.7)
    req = grpo_request(base, lt, eps, eh, delta, beta, est, bias)
    if beta == 0 and rnd.random() < 0.5:
        del req["ref_logp"]  # β = 0: no reference policy at all (TRL's default)
    g_cases.append(req)
    g_names.append("grpo %s eps=%g/%g delta=%s beta=%g kl=%s%s weights=%d" % (lt, eps, eh, delta, beta, est, "·ρ" if bias else "",
                                                                            "weight" in req))
    M = req["mask"]
    for a, lp_, o, m in zip(req["adv"], req["logp"], req["old_logp"], M):
        r = math.exp(lp_ - o)
        if not m:
            continue
        cover["low clipped (A<0, ρ<1-ε)"] += a < 0 and r < 1 - eps
        cover["high clipped (A>0, ρ>1+ε_high)"] += a > 0 and r > 1 + eh
        cover["dual clip (A<0, ρ>δ)"] += bool(delta) and a < 0 and r > delta
        cover["unclipped outside region (A>0, ρ<1-ε)"] += a > 0 and r < 1 - eps
        cover["unclipped above region (A<0, 1+ε_high<ρ<δ)"] += bool(delta) and a < 0 and 1 + eh < r < delta
for k, v in cover.items():
    check(v >= 20, "grpo cases cover %s: %d active tokens" % (k, v))
# old log-probs absent: ρ = 1 (TRL's num_iterations = 1 shortcut), every loss type
for lt in ("grpo", "bnpo", "dr_grpo", "dapo"):
    g_cases.append(grpo_request(grpo_batch(4, old=False), lt, 0.2, 0.28, 3.0, 0.04, "k3"))
    g_names.append("grpo %s on-policy (old log-probs = logπθ detached)" % lt)
# every token masked; a batch of one sequence
for lt in ("grpo", "dapo"):
    g_cases.append(grpo_request(grpo_batch(3, full_mask_prob=1.0), lt, 0.2, 0.2, None, 0.04, "k3"))
    g_names.append("grpo %s every token masked: loss 0, no gradient" % lt)
    g_cases.append(grpo_request(grpo_batch(1, full_mask_prob=0.0), lt, 0.2, 0.28, 1.5, 0.04, "k2"))
    g_names.append("grpo %s one sequence" % lt)
# far-off reference: low_var_kl's clamps bind (|δ| > 20 and value > 10), k3 stays unclamped
for est in ("low_var_kl", "k3"):
    b = grpo_batch(4, full_mask_prob=0.0)
    b["ref_logp"] = [f32(x + rnd.choice([-25.0, 25.0, -4.0, 4.0, 0.5, -0.5])) for x in b["logp"]]
    g_cases.append(grpo_request(b, "dapo", 0.2, 0.28, None, 0.1, est))
    g_names.append("grpo reference far off: %s (clamps bind for low_var_kl)" % est)

res = run(g_cases)
grpo_err = 0.0
for name, req, got in zip(g_names, g_cases, res):
    loss, g, met = grpo_ref(req)
    if "dlogp" in got and len(got["dlogp"]) == g.numel():
        scale = float(g.abs().max()) or 1.0
        grpo_err = max(grpo_err, float((torch.tensor(got["dlogp"], dtype=torch.float64) - g).abs().max()) / scale,
                       abs(got["loss"] - loss) / max(abs(loss), 1e-12))
    compare(name, got, loss, {"dlogp": g}, met)
print("# grpo: %d cases, max relative error (loss, dlogp / max|dlogp|) %.3g" % (len(g_cases), grpo_err), file=sys.stderr)


# Group advantages (TRL sum_then_normalize with nanmean / nanstd; NaN = unscorable).
def nanstd_ref(t, dim=None):
    mean = torch.nanmean(t, dim=dim, keepdim=True)
    var = torch.nanmean((t - mean) ** 2, dim=dim, keepdim=True)
    cnt = torch.sum(~torch.isnan(t), dim=dim, keepdim=True)
    corr = torch.where(cnt > 1, cnt / (cnt - 1), torch.full_like(var, float("nan")))
    s = torch.sqrt(var * corr)
    return s.squeeze() if dim is None else s.squeeze(dim)


def adv_ref(req):
    r = torch.tensor([float("nan") if x is None else x for x in req["rewards"]], dtype=torch.float64)
    G, sc = req["num_generations"], req["scale_rewards"]
    mean_g = torch.nanmean(r.view(-1, G), dim=1).repeat_interleave(G)
    if sc in ("group", "none"):
        std = nanstd_ref(r.view(-1, G), dim=1).repeat_interleave(G) if G > 1 else torch.zeros_like(r)
    else:
        std = nanstd_ref(r).expand_as(r) if r.numel() > 1 else torch.zeros_like(r)
    adv = r - mean_g
    if sc != "none":
        adv = adv / (std + req.get("std_eps", 1e-4))
    zero = torch.isclose(std, torch.zeros_like(std))
    adv = torch.nan_to_num(adv, nan=0.0)
    groups = r.view(-1, G)
    eq = []
    for row in groups:
        v = row[~torch.isnan(row)]
        eq.append(int(v.numel() < 2 or bool((v == v[0]).all())))
    rs = nanstd_ref(r) if r.numel() > 1 else torch.tensor(float("nan"))
    met = {"reward": float(torch.nanmean(r)) if (~torch.isnan(r)).any() else 0.0,
           "reward_std": 0.0 if math.isnan(float(rs)) else float(rs),
           "frac_reward_zero_std": float(zero.double().mean()), "groups_all_equal": sum(eq),
           "unscorable": int(torch.isnan(r).sum())}
    return adv, eq, met


a_cases = []
for G, sc, nan, kind in itertools.product([1, 2, 4, 8], ["group", "batch", "none"], [0, 1], ["binary", "real"]):
    n_groups = rnd.choice([3, 4])
    rw = []
    for gi in range(n_groups):
        if gi == 0:
            grp = [1.0] * G  # all correct: zero std
        elif gi == 1 and kind == "binary":
            grp = [0.0] * G  # all wrong
        else:
            grp = [float(rnd.random() < 0.5) if kind == "binary" else f32(rnd.gauss(0.3, 1.0)) for _ in range(G)]
        rw += grp
    if nan:
        for _ in range(2):
            rw[rnd.randrange(len(rw))] = None
    a_cases.append({"objective": "grpo_advantages", "rewards": rw, "num_generations": G, "scale_rewards": sc,
                    "std_eps": rnd.choice([1e-4, 1e-6])})
a_cases.append({"objective": "grpo_advantages", "rewards": [None, None, 1.0, 1.0], "num_generations": 2, "scale_rewards": "group"})
a_cases.append({"objective": "grpo_advantages", "rewards": [0.7], "num_generations": 1, "scale_rewards": "batch"})
res = run(a_cases)
adv_err = 0.0
for req, got in zip(a_cases, res):
    name = "grpo advantages G=%d scale=%s rewards=%s" % (req["num_generations"], req["scale_rewards"],
                                                         ",".join("nan" if x is None else "%.3g" % x for x in req["rewards"][:8]))
    if "error" in got:
        check(False, name, got["error"])
        continue
    adv, eq, met = adv_ref(req)
    ok, why = close_arr(got["advantages"], adv)
    if adv.numel():
        adv_err = max(adv_err, float((torch.tensor(got["advantages"], dtype=torch.float64) - adv).abs().max()))
    problems = [] if ok else ["advantages " + why]
    if got["group_all_equal"] != eq:
        problems.append("group_all_equal %s vs %s" % (got["group_all_equal"], eq))
    for k, v in met.items():
        if not close(got["metrics"][k], v):
            problems.append("metric %s %s vs torch %.12g" % (k, got["metrics"][k], v))
    check(not problems, name, "; ".join(problems))
print("# grpo advantages: %d cases, max |diff| %.3g" % (len(a_cases), adv_err), file=sys.stderr)


# DPH-RL rehearsal: generator functions on stored π0 samples (dp_actor.update_policy, type 2).
def rehearsal_ref(req):
    lp, P, L0, M, W = tensors(req)  # ref_logp holds the stored logπ0
    dv = req["divergence"]
    if dv == "forward_kl":  # kl_penalty(logprob=logπ0, ref_logprob=logπθ, kl_loss_type)
        f = kl_ref(req["kl_estimator"], L0, P)
    elif dv == "js":  # js_low_var
        ratio = torch.exp(P - L0)
        f = ratio * torch.log(ratio) - (ratio + 1) * torch.log((ratio + 1) / 2)
    else:  # alpha_divergence_f
        a = req["alpha"]
        u = torch.exp(P - L0)
        f = (torch.pow(u, 1 - a) - (1 - a) * u - a) / (a * (a - 1))
    loss = req["coef"] * (f * M).sum() / max(req["norm"], 1.0)
    g = grad_of(loss, lp)
    with torch.no_grad():
        nt = float(M.sum())
        met = {"num_tokens": nt, "divergence": float((f * M).sum()) / nt if nt else 0.0}
    return float(loss), g, met


def rehearsal_batch(n_seq, far=False, **kw):
    d = make_seqs(n_seq, **kw)
    # logπθ - logπ0 ~ N(0, 0.8); far: some beyond low_var_kl's clamps (value > 10, |l| > 20)
    d["ref_logp"] = [f32(x - (rnd.choice([25.0, -25.0, 4.0, -12.0]) if far and rnd.random() < 0.4 else rnd.gauss(0, 0.8)))
                     for x in d["logp"]]
    return d


r_cases, r_names = [], []
GENS = [("forward_kl", "low_var_kl", None), ("forward_kl", "k3", None), ("forward_kl", "k2", None), ("forward_kl", "k1", None),
        ("js", None, None), ("alpha", None, 0.2), ("alpha", None, 0.5), ("alpha", None, 0.8)]
for (dv, est, alpha), far, bsz in itertools.product(GENS, [0, 1], [4, 1]):
    req = rehearsal_batch(bsz, far=bool(far), full_mask_prob=0.2 if bsz > 1 else 0.0)
    req.update(objective="rehearsal", divergence=dv, coef=rnd.choice([0.01, 0.05, 0.2]))
    if est:
        req["kl_estimator"] = est
    if alpha:
        req["alpha"] = alpha
    req["norm"] = sum(req["mask"])
    r_cases.append(req)
    r_names.append("rehearsal %s%s%s far=%d seqs=%d" % (dv, " " + est if est else "", " alpha=%g" % alpha if alpha else "", far, bsz))
res = run(r_cases)
reh_err = 0.0
for name, req, got in zip(r_names, r_cases, res):
    loss, g, met = rehearsal_ref(req)
    if "dlogp" in got and len(got["dlogp"]) == g.numel():
        scale = float(g.abs().max()) or 1.0
        reh_err = max(reh_err, float((torch.tensor(got["dlogp"], dtype=torch.float64) - g).abs().max()) / scale,
                      abs(got["loss"] - loss) / max(abs(loss), 1e-12))
    compare(name, got, loss, {"dlogp": g}, met)
print("# rehearsal: %d cases, max relative error %.3g" % (len(r_cases), reh_err), file=sys.stderr)


# Whole-step normalization: micro-batches given the step's grpo_norm add up to PyTorch's loss and
# gradient for the whole batch, for every loss type (TRL's per-micro-batch bnpo would not).
def split_tokens(req, parts):
    out = split(req, parts)
    sp = req["spans"]
    for r, part in zip(out, parts):
        for key in ("adv", "old_logp", "sampler_logp", "entropy"):
            if key in req:
                r[key] = [x for i in part for x in req[key][sp[2 * i]:sp[2 * i + 1]]]
    return out


step_err = 0.0
splits = [[[0, 1, 2], [3, 4, 5, 6, 7]], [[0, 1], [2, 3], [4, 5, 6, 7]]]
step_cases = []
for lt, parts in itertools.product(["grpo", "bnpo", "dr_grpo", "dapo"], splits):
    big = grpo_request(grpo_batch(8, weight=True), lt, 0.2, 0.28, 1.5, 0.04, "k3")
    step_cases.append(("grpo " + lt, big, parts, grpo_ref))
for dv, est, alpha in [("forward_kl", "low_var_kl", None), ("js", None, None), ("alpha", None, 0.3)]:
    big = rehearsal_batch(8)
    big.update(objective="rehearsal", divergence=dv, coef=0.05, norm=sum(big["mask"]))
    if est:
        big["kl_estimator"] = est
    if alpha:
        big["alpha"] = alpha
    step_cases.append(("rehearsal " + dv, big, splits[0], rehearsal_ref))
reqs = []
for _, big, parts, _ in step_cases:
    reqs += split_tokens(big, parts)
res = run(reqs)
k = 0
for name, big, parts, ref in step_cases:
    micro = res[k:k + len(parts)]
    k += len(parts)
    if any("error" in m for m in micro):
        check(False, "whole-step normalization: " + name, str([m.get("error") for m in micro]))
        continue
    loss, g, _ = ref(big)
    order = flat_order(big, parts)
    gt = torch.zeros(len(big["logp"]), dtype=torch.float64)
    gt[order] = torch.tensor([x for m in micro for x in m["dlogp"]], dtype=torch.float64)
    got_loss = sum(m["loss"] for m in micro)
    ok, why = close_arr(gt.tolist(), g)
    scale = float(g.abs().max()) or 1.0
    step_err = max(step_err, float((gt - g).abs().max()) / scale, abs(got_loss - loss) / max(abs(loss), 1e-12))
    check(ok and close(got_loss, loss), "whole-step normalization: %s over %d micro-batches matches PyTorch on the whole batch"
          " (loss %.9g vs %.9g)" % (name, len(parts), got_loss, loss), why)
print("# whole-step splits: %d cases, max relative error %.3g" % (len(step_cases), step_err), file=sys.stderr)

# GRPO / rehearsal bad input
gb = grpo_batch(2)
bad_grpo = [
    ("grpo unknown loss type", grpo_request(gb, "cispo", 0.2, 0.2, None, 0.0, None)),
    ("grpo unknown estimator", grpo_request(gb, "dapo", 0.2, 0.2, None, 0.04, "k4")),
    ("grpo beta without reference", dict(grpo_request(gb, "dapo", 0.2, 0.2, None, 0.04, "k3"), ref_logp=None)),
    ("grpo advantages missing", dict(grpo_request(gb, "dapo", 0.2, 0.2, None, 0.0, None), adv=None)),
    ("grpo epsilon 1", grpo_request(gb, "dapo", 1.0, 0.2, None, 0.0, None)),
    ("grpo sequences normalizer 0", dict(grpo_request(gb, "grpo", 0.2, 0.2, None, 0.0, None), norm={"sequences": 0, "tokens": 5})),
    ("dr_grpo without max_completion_length", dict(grpo_request(gb, "dr_grpo", 0.2, 0.2, None, 0.0, None),
                                                  norm={"sequences": 2, "tokens": 5})),
    ("grpo advantages: 5 rewards in groups of 2", {"objective": "grpo_advantages", "rewards": [1, 0, 1, 0, 1], "num_generations": 2}),
    ("grpo advantages: num_generations 0", {"objective": "grpo_advantages", "rewards": [1], "num_generations": 0}),
    ("rehearsal alpha 1", dict(rehearsal_batch(2), objective="rehearsal", divergence="alpha", alpha=1.0, coef=0.1, norm=5)),
    ("rehearsal without π0 log-probs", dict(rehearsal_batch(2), objective="rehearsal", divergence="js", coef=0.1, norm=5,
                                            ref_logp=None)),
    ("rehearsal reverse_kl (not a generator)", dict(rehearsal_batch(2), objective="rehearsal", divergence="reverse_kl", coef=0.1,
                                                    norm=5)),
]
res = run([r for _, r in bad_grpo])
for (name, _), got in zip(bad_grpo, res):
    check("error" in got, "rejects " + name + (": " + got["error"] if "error" in got else ""))

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
