#!/usr/bin/python3
"""PyTorch eager baseline of the lora_dpo_step bench lines: one DPO step under LoRA, the
work bench/train_step --objective dpo --lora-r R does. The model of --model in float32
(transformers' eager attention: softmax(q k^T) materialized, the only kind this torch has),
the base frozen, a hand-written LoRA on every linear projection (PEFT's LoraLayer:
y = base(x) + lora_B(lora_A(x)) * alpha / r; A Kaiming-uniform, B zero, alpha = 2r), the
reference log-probs precomputed with the adapters off, then per step: the policy forward
on B pairs (chosen and rejected share the first T/2 tokens), the lm-head on the completion
positions only (the work temper does), sigmoid DPO (beta 0.1), backward, AdamW on the
adapters. --gradient-checkpointing wraps every decoder layer in torch.utils.checkpoint, as
transformers' gradient_checkpointing_enable() does.

    bench/torch_lora_dpo_step.py --model DIR --batch B --seq T --lora-r R [--gradient-checkpointing]

Prints one JSON line: {"pairs_per_s", "ms_per_step", "cpu_s_per_step", "peak_mib",
"step_peak_mib", ...}. peak_mib is ru_maxrss (loading included); step_peak_mib the
resident peak from just before the reference forward to the end (VmHWM after resetting it
through /proc/self/clear_refs), the figure comparable with temper's.
"""
import argparse
import json
import math
import os
import sys
import time


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


args = parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import resource  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.utils.checkpoint  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import torch_ref as R  # noqa: E402


class LoraLinear(nn.Module):
    """PEFT's LoRA Linear (default adapter, dropout 0, bias none); off: the base alone."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r
        self.on = True

    def forward(self, x):
        y = self.base_layer(x)
        return y + self.lora_B(self.lora_A(x)) * self.scaling if self.on else y


def load_frozen(model_dir):
    """The model without a random init first (the fp32 copy exists once) and frozen."""
    saved = nn.Linear.reset_parameters, nn.Embedding.reset_parameters
    nn.Linear.reset_parameters = nn.Embedding.reset_parameters = lambda self: None  # torch.empty: no pages touched
    try:
        cfg = R.Config.load(model_dir)
        model = R.CausalLM(cfg)
    finally:
        nn.Linear.reset_parameters, nn.Embedding.reset_parameters = saved
    tensors = R.read_model_tensors(model_dir, torch.float32)
    for name, p in dict(model.named_parameters()).items():
        p.data = tensors.pop(name)
        p.requires_grad_(False)
    return model


def rss_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def vm_hwm_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = load_frozen(args.model)
    cfg = model.cfg
    loras = []
    for layer in model.model.layers:
        for parent, names in ((layer.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
                              (layer.mlp, ("gate_proj", "up_proj", "down_proj"))):
            for n in names:
                ll = LoraLinear(getattr(parent, n), args.lora_r, 2.0 * args.lora_r)
                setattr(parent, n, ll)
                loras.append(ll)
    model.train()
    if args.gradient_checkpointing:
        for layer in model.model.layers:
            fwd = layer.forward
            layer.forward = (lambda f: lambda *a: torch.utils.checkpoint.checkpoint(f, *a, use_reentrant=False))(fwd)
    adapters = [p for ll in loras for p in (ll.lora_A.weight, ll.lora_B.weight)]
    opt = torch.optim.AdamW(adapters, lr=1e-5, weight_decay=0.0)

    B, T, V = args.batch, args.seq, cfg.vocab_size
    g = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, V, (2 * B, T), generator=g)
    tokens[1::2, : T // 2] = tokens[0::2, : T // 2]
    positions = torch.arange(T)[None].expand(2 * B, T)
    mask = R.causal_mask(2 * B, T, torch.float32)

    def seq_logps():
        h = model.hidden(tokens, positions, mask)[:, T // 2 - 1: T - 1]  # the positions predicting completion tokens
        logits = F.linear(h, model.lm_head_weight())
        return torch.log_softmax(logits, dim=-1).gather(2, tokens[:, T // 2:, None])[..., 0].sum(-1)

    reset_ok = rss_reset()
    with torch.no_grad():
        for ll in loras:
            ll.on = False
        ref = seq_logps()
        for ll in loras:
            ll.on = True

    def step():
        lp = seq_logps()
        d = (lp[0::2] - ref[0::2]) - (lp[1::2] - ref[1::2])
        loss = -F.logsigmoid(0.1 * d).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, cpus = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), cpu_seconds()
        step()
        times.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
    ms = 1000 * sum(times) / len(times)
    print(json.dumps({
        "pairs_per_s": B / (ms / 1000), "ms_per_step": ms, "cpu_s_per_step": sum(cpus) / len(cpus),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "step_peak_mib": vm_hwm_mib() if reset_ok else float("nan"),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "batch": B, "seq": T, "lora_r": args.lora_r,
        "gradient_checkpointing": args.gradient_checkpointing, "steps": args.steps, "warmup": args.warmup,
        "adapter_params": sum(p.numel() for p in adapters),
    }))


if __name__ == "__main__":
    main()
