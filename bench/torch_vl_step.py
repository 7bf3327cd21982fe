#!/usr/bin/python3
"""PyTorch side of the vl_forward_backward line (bench/bench_vl.sh): the same step as
bench/vl_step.c (one sequence, one square image of --image px, --text text tokens; forward and
backward of the mean NLL of the text) on tests/oracle/test_vl.py's reference of Qwen2.5-VL
(written from transformers' modeling_qwen2_5_vl.py: eager attention per window, full logits),
in float32. Prints {"ms_per_step", "cpu_ms_per_step", "peak_mib"}."""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import torch  # noqa: E402

import test_vl as V  # noqa: E402
import torch_ref as R  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--image", type=int, default=448)
ap.add_argument("--text", type=int, default=64)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
V.DT = torch.float32
cfg = json.load(open(os.path.join(a.model, "config.json")))
W = {k: v.float().requires_grad_(True) for k, v in R.read_model_tensors(a.model).items()}
g = a.image // 14
ni, pre = g * g // 4, a.text // 3
T = a.text + ni + 2
ids = [100 + i if i < pre else cfg["vision_start_token_id"] if i == pre else cfg["image_token_id"] if i <= pre + ni
       else cfg["vision_end_token_id"] if i == pre + ni + 1 else 200 + i for i in range(T)]
pix = torch.randn(g * g, 3 * 2 * 14 * 14)
n = sum(1 for t in ids[1:] if t != cfg["image_token_id"])
total = cpu = 0.0
for s in range(a.warmup + a.steps):
    t0, c0 = time.perf_counter(), time.process_time()
    for w in W.values():
        w.grad = None
    _, lp = V.vl_logprobs(W, cfg, [ids], pix, [(1, g, g)])
    (-lp.sum() / n).backward()
    if s >= a.warmup:
        total += time.perf_counter() - t0
        cpu += time.process_time() - c0
print(json.dumps({"ms_per_step": 1e3 * total / a.steps, "cpu_ms_per_step": 1e3 * cpu / a.steps,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
