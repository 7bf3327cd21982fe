#!/usr/bin/env python3
"""Paper model of a data-parallel DPO step (BENCHMARKS.md, issue 16): bytes each node sends
per optimizer step, the all-reduce's cost at 25 and 100 Gbit/s, and the scaling efficiency
(weak scaling: every node keeps its per-node batch; the sum is not overlapped with the
backward, as implemented). The all-reduce is src/dist's: reduce-scatter + all-gather, each
node sending and receiving 2 (W-1)/W of the fp32 gradient, in 2 (W-1) messages.
Assumptions are the constants below; change them and rerun: python3 bench/dp_model.py"""

TOKENS_PER_NODE = 8 * 2 * 1024   # per step: 8 pairs, chosen + rejected, 1024 tokens each
ALPHA = 10e-6                    # seconds per message (TCP/RoCE latency, order of magnitude)
NODES = (8, 64)
LINKS = (25, 100)                # Gbit/s per node
MODELS = (                       # name, trained parameters (fp32 gradients: 4 bytes each)
    ("Qwen2.5-Math-1.5B full", 1.54e9),
    ("Qwen2.5-Math-7B full", 7.62e9),
    ("Qwen2.5-Math-7B LoRA r=16 all-linear", 40.4e6),
)
# achieved FLOP/s per node: the CPU figure is BENCHMARKS.md's measured 81.5 GFLOP/s on
# 2 cores (train_step small, OpenBLAS) scaled to 64 cores (linear: an assumption); the GPU
# one is 8 x H100 at 40% of 989 TFLOP/s bf16 (llm.c's measured MFU range, ../shared/gpu-dist-lora.md)
NODE_FLOPS = (("64-core CPU node", 81.5e9 / 2 * 64), ("8xH100 node", 8 * 0.40 * 989e12))


def row(model, n, node, flops, w, gbit):
    grad = 4 * n
    wire = 2 * (w - 1) / w * grad
    t_comm = wire / (gbit * 1e9 / 8) + 2 * (w - 1) * ALPHA
    lora = "LoRA" in model
    t_comp = 6 * n * TOKENS_PER_NODE if not lora else 4 * 7.62e9 * TOKENS_PER_NODE  # LoRA: forward + input-grad of the frozen base
    t_comp /= flops
    eff = t_comp / (t_comp + t_comm)
    return f"| {model} | {node} | {w} | {gbit} | {grad / 1e9:.2f} GB | {wire / 1e9:.2f} GB | {t_comm:.3f} s | {t_comp:.3f} s | {100 * eff:.1f}% | {100 * min(1, t_comp / t_comm):.0f}% |"


print("| model (trained) | node | nodes | Gbit/s | fp32 gradient | sent per node | all-reduce | compute | efficiency (no overlap) | with full overlap |")
print("|---|---|---|---|---|---|---|---|---|---|")
for model, n in MODELS:
    for node, flops in NODE_FLOPS:
        for w in NODES:
            for g in LINKS:
                print(row(model, n, node, flops, w, g))
