#!/usr/bin/env bash
# grpo_step lines (issue 11): one GRPO generation batch and its optimizer step, temper
# (bench/grpo_step.c, the library's rollout_run + trainer + grpo_loss) against a PyTorch
# eager step doing the same work (bench/torch_grpo_step.py): PROMPTS prompts of PROMPT
# random tokens x GENS generations, exactly NEW new tokens each (no early stop on either
# side) with a KV cache at temperature 1, then the dapo loss (beta 0) forward/backward in
# micro-batches of MICRO completions and one AdamW step. ratio = torch s/step / temper
# s/step, also split into generation and training (forward + loss, backward, optimizer).
# The load average beside each line: other processes on the machine change these numbers.
# Smaller sizes for a smoke test: CONFIGS=tiny PROMPTS=2 GENS=2 NEW=4 bash bench/bench_grpo.sh
KIND=grpo exec bash "$(dirname "$0")/rl_step.sh"
