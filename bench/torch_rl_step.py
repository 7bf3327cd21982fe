"""What bench/torch_grpo_step.py and bench/torch_ppo_step.py share (the PyTorch side of
bench/rl_step.h): the flags, the generation batch and the warmup-then-best-of-steps loop.

Importing it parses the calling script's flags (its docstring is the --help text) and sets the
thread variables before torch is imported: OpenBLAS (pthread build) sizes its own pool from
them when it is loaded, and torch.set_num_threads does not reach it.

  generation  --prompts random prompts of --prompt tokens (the same shape as temper's; the
              tokens differ), prefilled once as one batch, each prompt's KV cache copied to
              its --generations samples, then one token per step for all of them with a
              KV cache (bench/torch_generate.py's step: torch.cat appends, as transformers'
              DynamicCache does), exactly --new tokens (no stop), temperature 1
              (torch.multinomial), the sampled tokens' log-probs recorded.

run() prints one JSON line like bench/rl_step.h: {"seconds", "gen_s", "roll_s", "fwd_s",
"bwd_s", "opt_s", "peak_mib", "isa", ...}; the best of --steps timed steps after --warmup
steps of --warmup-new new tokens."""
import argparse
import json
import os
import sys
import time


def parse():
    main = sys.modules["__main__"]
    ap = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def run(lr, train_step, heads=None):
    """The step loop. train_step(model, heads, opt, params, prompts, comp, old, gen, tm) does
    everything after generation and adds its times to tm; heads(model) -> extra modules whose
    parameters the optimizer also updates (PPO's value head)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = R.load_model(args.model, torch.float32)
    model.train()  # no dropout in the reference model: train/eval only matter for autograd here
    extra = heads(model) if heads else []
    P, G = args.prompts, args.generations
    params = [p for p in model.parameters() if p.requires_grad] + [p for m in extra for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    gen = torch.Generator().manual_seed(5)
    prompts = torch.randint(0, model.cfg.vocab_size, (P, args.prompt), generator=gen)
    best = None
    for s in range(args.warmup + args.steps):
        T = args.new if s >= args.warmup else min(args.new, args.warmup_new)
        tm = {"gen_s": 0.0, "roll_s": 0.0, "fwd_s": 0.0, "bwd_s": 0.0, "opt_s": 0.0, "loss": 0.0}
        t0 = time.perf_counter()
        with torch.no_grad():
            comp, old = generate(model, prompts, G, T, gen)
        tm["gen_s"] = time.perf_counter() - t0
        tm["gen_tokens"] = comp.numel()
        if args.progress:
            print(f"step {s}: generation {tm['gen_s']:.2f} s ({T} new tokens)", file=sys.stderr, flush=True)
        train_step(model, extra, opt, params, prompts, comp, old, gen, tm)
        tm["seconds"] = tm["gen_s"] + tm["roll_s"] + tm["fwd_s"] + tm["bwd_s"] + tm["opt_s"]
        if args.progress:
            print(f"step {s}: rollout {tm['roll_s']:.2f} s, forward+loss {tm['fwd_s']:.2f} s, backward {tm['bwd_s']:.2f} s, "
                  f"optimizer {tm['opt_s']:.3f} s", file=sys.stderr, flush=True)
        if s >= args.warmup and (best is None or tm["seconds"] < best["seconds"]):
            best = tm
    isa = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability usage:" in l]
    n = P * G
    best.update({
        "gen_tok_per_s": n * args.new / best["gen_s"],
        "train_tok_per_s": n * (args.prompt + args.new) / (best["roll_s"] + best["fwd_s"] + best["bwd_s"] + best["opt_s"]),
        "prompts": P, "generations": G, "new": args.new, "prompt": args.prompt, "micro": args.micro,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "isa": isa[0] if isa else "unknown",
    })
    print(json.dumps(best))
