#!/usr/bin/python3
"""PyTorch eager baseline for `make bench`: one training step (forward + backward +
torch.optim.AdamW) of the model in --model, the way Hugging Face transformers runs it on
CPU in float32: full causal mask per sequence of length T, B x T x V logits materialized,
cross entropy on the shifted labels. No torch.compile, no fused kernels.

    bench/torch_train_step.py --model DIR --batch B --seq T --steps S --warmup W --threads 2

Prints one JSON line:
    {"tok_per_s", "pairs_per_s", "ms_per_step", "peak_mib", "blas", "threads", "isa", ...}
tok_per_s counts every input token of the step (B*T), ms_per_step is the mean over the
S timed steps after W warm-up steps, peak_mib is ru_maxrss of this process (Python and
torch's own footprint included), blas the BLAS libraries mapped into the process after a
matmul, isa the vector ISA of ATen's own kernels ("CPU capability usage").

--objective dpo --lm-head all is what a TRL user runs (B x T x V logits everywhere);
--lm-head completion applies the lm-head to the completion positions only, the work
temper does, so the two dpo_step ratios bracket the comparison.
"""
import argparse
import json
import os
import sys
import time


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--autocast", action="store_true", help="forward and loss under torch.autocast('cpu', torch.bfloat16)")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--objective", choices=["sft", "dpo"], default="sft",
                    help="dpo: --batch pairs of chosen/rejected sequences of --seq tokens (first half prompt), "
                         "reference log-probs precomputed, sigmoid DPO with beta 0.1 (TRL's DPOTrainer math)")
    ap.add_argument("--lm-head", choices=["all", "completion"], default="all",
                    help="dpo: all = B x T x V logits at every position, as TRL computes them; completion = "
                         "the hidden states sliced to the positions that predict completion tokens before "
                         "the lm-head (the work temper does)")
    return ap.parse_args()


args = parse()
# OpenBLAS (pthread build) sizes its own pool from these when it is loaded, and
# torch.set_num_threads does not reach it: set them before torch is imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import resource  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import torch_ref as R  # noqa: E402


def blas_libraries():
    seen = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6:
                continue
            path = parts[5]
            base = os.path.basename(path)
            if ("blas" in base or "mkl" in base) and path not in seen:
                seen.append(path)
    return seen


def aten_isa():
    """The vector ISA ATen's own CPU kernels dispatch to here (AVX2, AVX512, DEFAULT)."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = R.load_model(args.model, torch.float32)
    model.train()
    cfg = model.cfg
    B, T, V = args.batch, args.seq, cfg.vocab_size
    g = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, V, (B, T), generator=g)
    # HF ForCausalLMLoss: labels padded with -100 and shifted; mean over real targets
    labels = F.pad(tokens, (0, 1), value=-100)[:, 1:]
    positions = torch.arange(T)[None].expand(B, T)

    params = dict(model.named_parameters())
    decay = [p for n, p in params.items() if R.decay_mask(n, p)]
    no_decay = [p for n, p in params.items() if not R.decay_mask(n, p)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)

    if args.objective == "dpo":
        # rows 2i (chosen) and 2i+1 (rejected) share their prompt, the first T/2 tokens
        tokens = torch.randint(0, V, (2 * B, T), generator=g)
        tokens[1::2, : T // 2] = tokens[0::2, : T // 2]
        positions = torch.arange(T)[None].expand(2 * B, T)
        comp = torch.zeros(2 * B, T - 1, dtype=torch.bool)
        comp[:, T // 2 - 1:] = True  # targets t+1 >= T/2 are completion tokens

        def seq_logps():
            mask = R.causal_mask(2 * B, T, torch.float32)
            if args.lm_head == "completion":
                # positions T/2-1 .. T-2 predict the completion tokens T/2 .. T-1
                h = model.hidden(tokens, positions, mask)[:, T // 2 - 1: T - 1]
                logits = F.linear(h, model.lm_head_weight())  # [2B, T/2, V]
                lp = torch.log_softmax(logits, dim=-1).gather(2, tokens[:, T // 2:, None])[..., 0]
                return lp.sum(-1)
            logits = model(tokens, positions, mask)  # [2B, T, V]
            lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, tokens[:, 1:, None])[..., 0]
            return (lp * comp).sum(-1)

        with torch.no_grad():
            ref = seq_logps()

        def step():
            lp = seq_logps()
            d = (lp[0::2] - ref[0::2]) - (lp[1::2] - ref[1::2])
            loss = -F.logsigmoid(0.1 * d).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.item()
    else:
        step = None

    def sft_step():
        mask = R.causal_mask(B, T, torch.float32)
        logits = model(tokens, positions, mask)  # [B, T, V], as HF materializes it
        loss = F.cross_entropy(logits.view(-1, V), labels.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    step = step or sft_step
    if args.autocast:  # mixed precision as TRL's --bf16 runs it on CPU: fp32 weights, bf16 matmuls
        inner = step
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return inner()
    losses = []
    for _ in range(args.warmup):
        losses.append(step())
    times, cpu = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        losses.append(step())
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    ms = 1000 * sum(times) / len(times)
    nparams = sum(p.numel() for p in params.values())
    out = {
        "tok_per_s": B * T * (2 if args.objective == "dpo" else 1) / (ms / 1000),
        "pairs_per_s": B / (ms / 1000),
        "ms_per_step": ms,
        "cpu_ms_per_step": 1000 * sum(cpu) / len(cpu),
        "autocast": args.autocast,
        "ms_min": 1000 * min(times),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "blas": ", ".join(blas_libraries()) or "none found in /proc/self/maps",
        "threads": torch.get_num_threads(),
        "os_threads": len(os.listdir("/proc/self/task")),
        "arch": cfg.arch, "params": nparams, "batch": B, "seq": T, "steps": args.steps,
        "warmup": args.warmup, "loss_first": losses[0], "loss_last": losses[-1],
        "torch": torch.__version__, "lm_head": args.lm_head, "isa": aten_isa(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
