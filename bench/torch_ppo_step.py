#!/usr/bin/python3
"""PyTorch eager baseline of the `ppo_step` bench lines: the work of bench/ppo_step.c (one PPO
step with a shared value head) the way TRL's PPOTrainer does it on CPU in float32, with
tests/oracle/torch_ref.py's model and a value head nn.Linear(hidden, 1) on its last hidden state:

  generation  bench/torch_rl_step.py's (the same as torch_grpo_step.py's);
  rollout     no_grad, micro-batches of --micro completions: hidden states of prompt +
              completion, the lm-head on the completion positions only, log_softmax + gather
              (TRL recomputes the old log-probs), the value head at the same positions;
  advantages  0/1 scores from a fixed generator on the last token (KL coefficient 0: no
              reference, as grpo_step's β 0), TRL's GAE loop (γ 1, λ 0.95, reversed over the
              tokens), returns = A + V, masked_whiten of the advantages;
  training    one PPO epoch, one mini-batch: micro-batches of --micro completions, the
              forward with the value head, the entropy and TRL's approxkl / clipfrac metrics
              under no_grad, the clipped policy loss (ε 0.2) + 0.1 x the clipped value loss
              (ε_v 0.2), Σ over tokens / the step's token count, backward; then
              clip_grad_norm_(1.0) over policy and head, torch.optim.AdamW (lr 3e-6: TRL's
              PPOConfig; weight decay 0), zero_grad.

    bench/torch_ppo_step.py --model DIR --prompts 8 --generations 8 --new 128 --threads 2

Prints one JSON line like bench/ppo_step.c (roll_s: the rollout forward and the advantages)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_rl_step import F, R, args, run, torch  # noqa: E402 (parses the flags, then imports torch)

CLIP, CLIP_V, VF_COEF, GAMMA, LAM = 0.2, 0.2, 0.1, 1.0, 0.95


def value_head(model):
    head = torch.nn.Linear(model.cfg.hidden_size, 1)
    with torch.no_grad():
        head.weight.uniform_(-0.02, 0.02)
        head.bias.zero_()
    return [head]


def forward(model, head, x, L, pos, mask):
    """(log-probs of the completion tokens [b, T], their full log-softmax, values [b, T])."""
    T = x.shape[1] - L
    b = x.shape[0]
    h = model.hidden(x, pos[:b], mask[:b])[:, L - 1:L + T - 1]  # the positions predicting completion tokens
    logp_all = F.log_softmax(F.linear(h, model.lm_head_weight()), -1)
    return logp_all.gather(2, x[:, L:, None])[..., 0], logp_all, head(h)[..., 0]


def whiten(x):
    mean, var = x.mean(), x.var()  # TRL masked_whiten: Bessel-corrected variance, every token active here
    return (x - mean) * torch.rsqrt(var + 1e-8)  # shift_mean=True: the mean is not added back


def step(model, heads, opt, params, prompts, comp, old_sampler, gen, tm):
    head, micro = heads[0], args.micro
    n, T = comp.shape
    L = prompts.shape[1]
    ids = torch.cat([prompts.repeat_interleave(args.generations, 0), comp], 1)  # [n, L + T]
    mask = R.causal_mask(micro, L + T, torch.float32)
    pos = torch.arange(L + T)[None].expand(micro, L + T)
    t0 = time.perf_counter()
    with torch.no_grad():
        olds, vals = [], []
        for i0 in range(0, n, micro):
            lp, _, v = forward(model, head, ids[i0:i0 + micro], L, pos, mask)
            olds.append(lp)
            vals.append(v)
        old, values = torch.cat(olds), torch.cat(vals)
        score = torch.randint(0, 2, (n,), generator=gen).float()
        rewards = torch.zeros(n, T)
        rewards[:, -1] += score  # the last token (all trajectories are T tokens: no stop)
        lastgaelam, rev = 0, []
        for t in reversed(range(T)):
            nextvalues = values[:, t + 1] if t < T - 1 else 0.0
            delta = rewards[:, t] + GAMMA * nextvalues - values[:, t]
            lastgaelam = delta + GAMMA * LAM * lastgaelam
            rev.append(lastgaelam)
        adv = torch.stack(rev[::-1], 1)
        ret = adv + values
        adv = whiten(adv)
    tm["roll_s"] += time.perf_counter() - t0
    ntok = float(n * T)
    t0 = time.perf_counter()
    for i0 in range(0, n, micro):
        sl = slice(i0, i0 + micro)
        logp, logp_all, vpred = forward(model, head, ids[sl], L, pos, mask)
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)  # noqa: F841 (TRL's entropy metric)
        vclip = values[sl] + torch.clamp(vpred - values[sl], -CLIP_V, CLIP_V)
        vf = 0.5 * torch.max((vpred - ret[sl]) ** 2, (vclip - ret[sl]) ** 2).sum() / ntok
        logr = logp - old[sl]
        ratio = torch.exp(logr)
        a = adv[sl]
        pg_losses, pg_losses2 = -a * ratio, -a * torch.clamp(ratio, 1 - CLIP, 1 + CLIP)
        pg = torch.max(pg_losses, pg_losses2).sum() / ntok
        loss = pg + VF_COEF * vf
        with torch.no_grad():  # TRL's policy/approxkl and policy/clipfrac
            approxkl = 0.5 * (logr ** 2).mean()  # noqa: F841
            clipfrac = (pg_losses2 > pg_losses).float().mean()  # noqa: F841
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        tm["fwd_s"] += t1 - t0
        tm["bwd_s"] += t2 - t1
        tm["loss"] += loss.item()
        t0 = t2
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    tm["opt_s"] += time.perf_counter() - t0


if __name__ == "__main__":
    run(3e-6, step, value_head)  # TRL's PPOConfig lr
