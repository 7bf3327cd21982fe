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
--warmup-new new tokens. The flags, generation and that loop are bench/torch_rl_step.py's
(shared with bench/torch_ppo_step.py)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_rl_step import F, R, args, run, torch  # noqa: E402 (parses the flags, then imports torch)

EPS_LOW = EPS_HIGH = 0.2


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


def step(model, heads, opt, params, prompts, comp, old, gen, tm):
    reward = torch.randint(0, 2, (comp.shape[0],), generator=gen).float()
    train(model, opt, params, prompts, comp, old, advantages(reward, args.generations), args.generations, args.micro, tm)


if __name__ == "__main__":
    run(1e-6, step)  # TRL's GRPOConfig lr
