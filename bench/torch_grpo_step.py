#!/usr/bin/python3
"""PyTorch eager baseline of the `grpo_step` bench lines: the work of bench/grpo_step.c
(one GRPO generation batch and its optimizer step) the way TRL's GRPOTrainer does it on
CPU in float32, with tests/oracle/torch_ref.py's model:

  generation  --prompts random prompts of --prompt tokens (the same shape as temper's; the
              tokens differ), prefilled once as one batch, each prompt's KV cache copied to
              its --generations samples, then one token per step for all of them with a
              KV cache (bench/torch_generate.py's step: torch.cat appends, as transformers'
              DynamicCache does), exactly --new tokens (no stop), temperature 1
              (torch.multinomial), the sampled tokens' log-probs recorded (TRL keeps the
              sampler's log-probs for importance sampling);
  rewards     0/1 from a fixed generator, group advantages (mean / (std + 1e-4));
  training    gradient accumulation over micro-batches of --micro completions: hidden
              states of prompt + completion, the lm-head on the completion positions only
              (TRL's logits_to_keep), log_softmax + gather, the entropy under no_grad (TRL
              logs it), the dapo loss with β 0 and ε 0.2 (ratio against the sampler's
              log-probs, Σ over tokens / the step's token count), backward; then
              clip_grad_norm_(1.0), torch.optim.AdamW (lr 1e-6, weight decay 0), zero_grad.

    bench/torch_grpo_step.py --model DIR --prompts 8 --generations 8 --new 128 --threads 2

Prints one JSON line like bench/grpo_step.c: {"seconds", "gen_s", "fwd_s", "bwd_s",
"opt_s", "peak_mib", "isa", ...}; the best of --steps timed steps after --warmup steps of
--warmup-new new tokens."""
import argparse
import json
import os
import sys
import time


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--micro", type=int, default=8, help="completions per micro-batch (gradient accumulation)")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--warmup-new", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--progress", action="store_true", help="each phase's time on stderr as it ends")
    return ap.parse_args()


args = parse()
# OpenBLAS (pthread build) sizes its own pool from these when it is loaded, and
# torch.set_num_threads does not reach it: set them before torch is imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import resource  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "oracle"))
sys.path.insert(0, here)
import torch_ref as R  # noqa: E402
from torch_generate import forward as kv_forward  # noqa: E402

EPS_LOW = EPS_HIGH = 0.2


def generate(model, prompts, G, T, gen):
    """prompts [P, L] -> (completions [P*G, T], sampler log-probs [P*G, T])."""
    logits, caches = kv_forward(model, prompts, 0, None)  # one prefill for the P prompts
    logits = logits.repeat_interleave(G, 0)
    caches = [(k.repeat_interleave(G, 0), v.repeat_interleave(G, 0)) for k, v in caches]
    pos = prompts.shape[1]
    toks, logps = [], []
    for t in range(T):
        lp = F.log_softmax(logits, -1)
        tok = torch.multinomial(lp.exp(), 1, generator=gen)
        toks.append(tok)
        logps.append(lp.gather(1, tok))
        if t + 1 < T:  # the last token needs no forward (temper's sampler stops there too)
            logits, caches = kv_forward(model, tok, pos, caches)
            pos += 1
    return torch.cat(toks, 1), torch.cat(logps, 1)


def advantages(reward, G):
    r = reward.view(-1, G)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1)


def train(model, opt, params, prompts, comp, old, adv, G, micro, tm):
    n, T = comp.shape
    L = prompts.shape[1]
    ids = torch.cat([prompts.repeat_interleave(G, 0), comp], 1)  # [n, L + T]
    ntok = float(n * T)  # dapo: the step's completion tokens (all trained here)
    mask = R.causal_mask(micro, L + T, torch.float32)
    pos = torch.arange(L + T)[None].expand(micro, L + T)
    for i0 in range(0, n, micro):
        t0 = time.perf_counter()
        x = ids[i0:i0 + micro]
        b = x.shape[0]
        h = model.hidden(x, pos[:b], mask[:b])[:, L - 1:L + T - 1]  # the positions predicting completion tokens
        logits = F.linear(h, model.lm_head_weight())  # [b, T, V]
        logp_all = F.log_softmax(logits, -1)
        logp = logp_all.gather(2, x[:, L:, None])[..., 0]
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)  # noqa: F841 (TRL's entropy metric)
        ratio = torch.exp(logp - old[i0:i0 + micro])
        a = adv[i0:i0 + micro, None]
        per_tok = -torch.min(ratio * a, torch.clamp(ratio, 1 - EPS_LOW, 1 + EPS_HIGH) * a)
        loss = per_tok.sum() / ntok
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        tm["fwd_s"] += t1 - t0
        tm["bwd_s"] += t2 - t1
        tm["loss"] += loss.item()
    t0 = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    tm["opt_s"] += time.perf_counter() - t0


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = R.load_model(args.model, torch.float32)
    model.train()  # no dropout in the reference model: train/eval only matter for autograd here
    P, G = args.prompts, args.generations
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    gen = torch.Generator().manual_seed(5)
    prompts = torch.randint(0, model.cfg.vocab_size, (P, args.prompt), generator=gen)
    best = None
    for s in range(args.warmup + args.steps):
        T = args.new if s >= args.warmup else min(args.new, args.warmup_new)
        tm = {"gen_s": 0.0, "fwd_s": 0.0, "bwd_s": 0.0, "opt_s": 0.0, "loss": 0.0}
        t0 = time.perf_counter()
        with torch.no_grad():
            comp, old = generate(model, prompts, G, T, gen)
        tm["gen_s"] = time.perf_counter() - t0
        tm["gen_tokens"] = comp.numel()
        if args.progress:
            print(f"step {s}: generation {tm['gen_s']:.2f} s ({T} new tokens)", file=sys.stderr, flush=True)
        reward = torch.randint(0, 2, (P * G,), generator=gen).float()
        train(model, opt, params, prompts, comp, old, advantages(reward, G), G, args.micro, tm)
        tm["seconds"] = tm["gen_s"] + tm["fwd_s"] + tm["bwd_s"] + tm["opt_s"]
        if args.progress:
            print(f"step {s}: forward+loss {tm['fwd_s']:.2f} s, backward {tm['bwd_s']:.2f} s, optimizer {tm['opt_s']:.3f} s",
                  file=sys.stderr, flush=True)
        if s >= args.warmup and (best is None or tm["seconds"] < best["seconds"]):
            best = tm
    isa = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability usage:" in l]
    n = P * G
    best.update({
        "gen_tok_per_s": n * args.new / best["gen_s"],
        "train_tok_per_s": n * (args.prompt + args.new) / (best["fwd_s"] + best["bwd_s"] + best["opt_s"]),
        "prompts": P, "generations": G, "new": args.new, "prompt": args.prompt, "micro": args.micro,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "isa": isa[0] if isa else "unknown",
    })
    print(json.dumps(best))


if __name__ == "__main__":
    main()
