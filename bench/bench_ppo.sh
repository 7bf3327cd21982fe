#!/usr/bin/env bash
# ppo_step lines (issue 13): one PPO step with a shared value head, temper (bench/ppo_step.c:
# rollout_run, trainer_forward + the value head, ppo_rewards / ppo_gae / ppo_whiten, ppo_loss,
# trainer_backward_extra, trainer_step and the head's AdamW, as train/ppo_trainer.c) against a
# PyTorch eager PPO step doing the same work (bench/torch_ppo_step.py, TRL's PPOTrainer loop):
# grpo_step's generation batch (PROMPTS prompts x GENS generations, exactly NEW new tokens, no
# early stop), then the rollout forward (old log-probs and values, no gradient), GAE (γ 1,
# λ 0.95, KL coefficient 0) and whitening, one PPO epoch of the clipped policy + value loss in
# micro-batches of MICRO completions, and one AdamW step. ratio = torch s/step / temper s/step,
# split into generation and training (the rollout forward and GAE count as training).
# The load average beside each line: other processes on the machine change these numbers.
# Smaller sizes for a smoke test: CONFIGS=tiny PROMPTS=2 GENS=2 NEW=4 bash bench/bench_ppo.sh
KIND=ppo exec bash "$(dirname "$0")/rl_step.sh"
