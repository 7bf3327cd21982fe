#!/usr/bin/python3
"""LoRA parity: temper's adapters against a float64 PyTorch LoRA written as PEFT defines it
(peft/tuners/lora/layer.py: result = base(x) + lora_B(lora_A(dropout(x))) * scaling,
scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora; lora_dropout 0 here).

Each case writes a PEFT adapter directory by hand (adapter_config.json with PEFT's fields,
adapter_model.safetensors with PEFT's key names base_model.model.<module>.lora_A.weight /
lora_B.weight, and base_model.model.<name> for modules_to_save) over a perturbed tiny model
from `temper init`, with B nonzero (PEFT starts it at 0, which would hide A's gradient).
grad_dump loads the adapter directory (base from base_model_name_or_path) and dumps the
log-probs, mean-NLL loss, the gradients of the trainable tensors only, and those tensors after
one AdamW step. The oracle freezes the base. Checks, with the full model's tolerance
(test_parity.py: rel = max|c - t| / max|t| < 1e-4): log-probs, loss, each gradient and each
step; and that grad_dump dumps no gradient for a frozen base tensor.
Target sets: q_proj,v_proj (PEFT's default for llama/qwen), all-linear with rsLoRA, and
all-linear with modules_to_save lm_head; and all-linear with lora_dropout 0.1 in a training
forward (grad_dump --dropout-key): the oracle draws temper's mask (model/lora.c's hash, here
in numpy) and applies PEFT's dropout, mask * x / (1 - p), on each adapter's input.
"""
import json
import math
import os
import shutil
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch_ref as R  # noqa: E402
import test_parity as P  # noqa: E402

TOL = 1e-4
passed = failed = 0


def report(ok, name, detail=""):
    global passed, failed
    print(f"{'ok' if ok else 'not ok'} - {name}" + (f" {detail}" if detail else ""), flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


class LoraLinear(nn.Module):
    """PEFT's LoRA Linear (default adapter, no dropout, bias none)."""

    def __init__(self, base, r, alpha, rslora):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.scaling = alpha / math.sqrt(r) if rslora else alpha / r

        self.mask = None  # dropout: m / (1 - p) on the adapter's input, [N, in]

    def forward(self, x):
        xd = x if self.mask is None else x * self.mask
        return self.base_layer(x) + self.lora_B(self.lora_A(xd)) * self.scaling


M64 = (1 << 64) - 1


def mix64(z):
    """splitmix64's finalizer on numpy uint64 (model/lora.c mix64)."""
    with np.errstate(over="ignore"):
        z = (z + np.uint64(0x9e3779b97f4a7c15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        return z ^ (z >> np.uint64(31))


def dropout_mask(seed, key, layer, t, n, in_f, p):
    """temper's adapter-dropout mask of one projection's input [n, in_f], scaled by 1/(1-p)."""
    s = mix64(np.uint64(seed)) ^ np.uint64(key)
    stream = mix64(mix64(s) ^ np.uint64(layer * 7 + t))
    idx = np.arange(n * in_f, dtype=np.uint64)
    u = (mix64(stream ^ mix64(idx)) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    keep = (u >= p).reshape(n, in_f)
    return torch.tensor(keep, dtype=torch.float64) / (1 - p)


ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def module_path(layer, name):
    return f"model.layers.{layer}.{'self_attn' if name in ALL[:4] else 'mlp'}.{name}"


def write_adapter(d, base_dir, cfg, targets, r, alpha, rslora, modules_to_save, seed, dropout=0.0):
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    base = R.read_model_tensors(base_dir)
    ts = {}
    for layer in range(cfg.num_hidden_layers):
        for t in targets:
            W = base[module_path(layer, t) + ".weight"]
            out_f, in_f = W.shape
            key = "base_model.model." + module_path(layer, t)
            ts[key + ".lora_A.weight"] = (torch.rand(r, in_f, generator=g) * 2 - 1) / math.sqrt(in_f)
            ts[key + ".lora_B.weight"] = torch.randn(out_f, r, generator=g) * 0.05
    for m in modules_to_save:
        ts[f"base_model.model.{m}.weight"] = base[f"{m}.weight"] + torch.randn(base[f"{m}.weight"].shape, generator=g) * 0.01
    R.write_safetensors(os.path.join(d, "adapter_model.safetensors"), ts)
    conf = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_dir, "r": r,
            "lora_alpha": alpha, "lora_dropout": dropout, "target_modules": targets, "use_rslora": rslora,
            "modules_to_save": modules_to_save or None, "bias": "none", "fan_in_fan_out": False,
            "init_lora_weights": True, "inference_mode": True}
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    return ts


def oracle(base_dir, adapter, targets, r, alpha, rslora, modules_to_save, seqs, dropout=0.0, key=None):
    model = R.load_model(base_dir, torch.float64)
    for p in model.parameters():
        p.requires_grad_(False)
    key_ = key
    for layer in range(model.cfg.num_hidden_layers):
        for t in targets:
            parent = model.get_submodule(module_path(layer, t).rsplit(".", 1)[0])
            lin = LoraLinear(getattr(parent, t), r, alpha, rslora).double()
            key = "base_model.model." + module_path(layer, t)
            lin.lora_A.weight.data = adapter[key + ".lora_A.weight"].double().clone()
            lin.lora_B.weight.data = adapter[key + ".lora_B.weight"].double().clone()
            if dropout > 0:
                N = sum(len(s) for s in seqs)
                lin.mask = dropout_mask(0, key_, layer, ALL.index(t), N, lin.base_layer.in_features, dropout)
            setattr(parent, t, lin)
    trainable = {}
    for n, p in model.named_parameters():
        if ".lora_" in n:
            p.requires_grad_(True)
            # PEFT's saved name: base_model.model.<module>.lora_A.weight (no .default)
            trainable["base_model.model." + n] = p
    for m in modules_to_save:
        p = model.get_parameter(f"{m}.weight")
        p.data = adapter[f"base_model.model.{m}.weight"].double().clone()
        p.requires_grad_(True)
        trainable[f"{m}.weight"] = p
    seq_lens = [len(s) for s in seqs]
    lp, has_target = R.token_logprobs(model, [t for s in seqs for t in s], seq_lens)
    loss = -lp.sum() / has_target.sum()
    loss.backward()
    return lp.detach(), loss.detach().reshape(1), {n: p for n, p in trainable.items()}


def grad_dump(model_dir, seqs, workdir, tag, key):
    """test_parity's grad_dump, with --dropout-key"""
    tok = os.path.join(workdir, f"{tag}.tokens.json")
    out = os.path.join(workdir, f"{tag}.dump.safetensors")
    with open(tok, "w") as f:
        json.dump({"sequences": seqs}, f)
    hp = P.HP
    P.run([P.GRAD_DUMP, "--model", model_dir, "--tokens", tok, "--out", out, "--lr", repr(hp["lr"]),
           "--weight-decay", repr(hp["weight_decay"]), "--beta1", repr(hp["beta1"]), "--beta2", repr(hp["beta2"]),
           "--eps", repr(hp["eps"]), "--dropout-key", str(key)])
    dump, _ = R.read_safetensors(out)
    return {k: v.double() for k, v in dump.items()}


def case(tag, arch, work, targets, r, alpha, rslora=False, modules_to_save=(), seed=21, dropout=0.0):
    base = os.path.join(work, f"{tag}-base")
    ad = os.path.join(work, f"{tag}-adapter")
    P.init_model(arch, base, seed)
    P.perturb(base, seed)
    cfg = R.Config.load(base)
    adapter = write_adapter(ad, base, cfg, targets, r, alpha, rslora, list(modules_to_save), seed, dropout)
    seqs = P.sequences(cfg.vocab_size, [9, 1, 14, 6], seed)
    c = grad_dump(ad, seqs, work, tag, 5 if dropout > 0 else -1)
    lp, loss, trainable = oracle(base, adapter, targets, r, alpha, rslora, list(modules_to_save), seqs, dropout, 5)
    report(R._rel(c["logprobs"], lp) < TOL, f"lora {tag} logprobs", f"rel {R._rel(c['logprobs'], lp):.1e}")
    report(R._rel(c["loss"], loss) < TOL, f"lora {tag} loss {loss.item():.6f}", f"rel {R._rel(c['loss'], loss):.1e}")
    grads = {k[5:] for k in c if k.startswith("grad.")}
    report(grads == set(trainable), f"lora {tag} gradients exactly for the {len(trainable)} trainable tensors (base frozen)",
           f"(extra {sorted(grads - set(trainable))[:3]}, missing {sorted(set(trainable) - grads)[:3]})")
    worst, bad = (0.0, ""), []
    for n, p in trainable.items():
        if f"grad.{n}" not in c:
            continue
        e = R._rel(c[f"grad.{n}"], p.grad)
        worst = max(worst, (e, n))
        if e >= TOL:
            bad.append(f"{n} rel {e:.1e}")
    report(not bad, f"lora {tag} gradient of every adapter tensor", f"worst rel {worst[0]:.1e} ({worst[1]})" + (f"; bad: {bad[0]}" if bad else ""))
    # one AdamW step on the C gradients (test_parity.py explains why the C gradients)
    params = {n: p.detach() for n, p in trainable.items() if f"grad.{n}" in c}
    stepped = R.adamw_step(params, {n: c[f"grad.{n}"] for n in params}, **P.HP)
    ws = max((R._rel(c[f"step.{n}"], stepped[n]), n) for n in params)
    report(ws[0] < TOL, f"lora {tag} AdamW step of every trainable tensor", f"worst rel {ws[0]:.1e} ({ws[1]})")


def main():
    for path in (P.TEMPER, P.GRAD_DUMP):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            report(False, "lora parity needs the build", f"{path} is not an executable (run make)")
            sys.exit(1)
    work = tempfile.mkdtemp(prefix="temper-lora-")
    try:
        for args in (("llama-qv", "llama", work, ["q_proj", "v_proj"], 4, 8),
                     ("qwen3-all-rslora", "qwen3", work, ALL, 4, 16, True),
                     ("qwen2-all-save-lm_head", "qwen2", work, ALL, 8, 16, False, ["lm_head"]),
                     ("qwen3-all-dropout", "qwen3", work, ALL, 4, 8, False, [], 21, 0.1)):
            try:
                case(*args)
            except P.Fail as e:
                report(False, f"lora {args[0]}", str(e))
    except Exception as e:
        report(False, "lora parity test crashed", f"{type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"# {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
