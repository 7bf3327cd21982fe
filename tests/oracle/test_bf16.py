#!/usr/bin/python3
"""A model stored in bf16 (as Hugging Face models are) keeps its updates (issue 10 item 7):
- the run trains fp32 master weights; a checkpoint stores them (master_weights.safetensors,
  F32) beside the optimizer state, so updates far below bf16's resolution survive there:
  after 2 steps at lr 1e-5 the norm weights (1.0, where a bf16 step is 2^-7) have moved;
- the saved model keeps the original dtype (BF16);
- resuming a bf16 run from a checkpoint ends bit-identical to the uninterrupted run
  (weights and metrics.jsonl), which rounding the checkpoint to bf16 breaks."""
import json, os, struct, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from tap import TEMPER, check, done


def temper(*args):
    return subprocess.run([TEMPER, *args], capture_output=True, text=True)


def read_st(path):
    """{name: (dtype, float64 tensor)} of a safetensors file (F32 or BF16)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        dt = {"F32": torch.float32, "BF16": torch.bfloat16}[v["dtype"]]
        out[k] = (v["dtype"], torch.frombuffer(buf, dtype=dt).reshape(v["shape"]).double())
    return out


WALL_CLOCK = {"tokens_per_second", "train_runtime", "train_samples_per_second", "train_steps_per_second"}
def timeless(out):  # the rates are wall-clock
    rows = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]


tmp = tempfile.mkdtemp(prefix="temper-bf16-")
base = os.path.join(tmp, "base")
r = temper("init", "--preset", "tiny", "--dtype", "bfloat16", "--out", base, "--seed", "5")
check(r.returncode == 0, "init a tiny bf16 model (%s)" % r.stderr.strip()[-200:])
data = os.path.join(tmp, "sft.jsonl")
with open(data, "w") as f:
    for i in range(8):
        f.write(json.dumps({"prompt_input_ids": [1, 2 + i, 3], "completion_input_ids": [40 + i, 41, 42, 43]}) + "\n")
common = ["--data", data, "--per-device-train-batch-size", "4", "--logging-steps", "1", "--save-steps", "1", "--quiet"]

# ---- small updates survive in the checkpoint's fp32 master weights
small = os.path.join(tmp, "small")
r = temper("sft", "--model", base, "--output-dir", small, "--learning-rate", "1e-5", "--max-steps", "2", *common)
check(r.returncode == 0, "sft 2 steps at lr 1e-5 on the bf16 model (%s)" % r.stderr.strip()[-300:])
init = read_st(os.path.join(base, "model.safetensors"))
mpath = os.path.join(small, "checkpoint-1", "master_weights.safetensors")
check(os.path.exists(mpath), "checkpoint-1 holds master_weights.safetensors")
master = read_st(mpath) if os.path.exists(mpath) else {}
norm = master.get("model.norm.weight", ("?", torch.zeros(1)))
moved = int((norm[1] != init["model.norm.weight"][1]).sum())
check(norm[0] == "F32" and moved > 200, "after 1 step at lr 1e-5, %d of 256 fp32 norm weights moved (dtype %s)" % (moved, norm[0]))
ok = bool(master) and all(master[k][0] == "F32" for k in init)
check(ok, "the master weights cover every tensor, in F32")
final = read_st(os.path.join(small, "model.safetensors")) if r.returncode == 0 else {}
check(final and all(v[0] == "BF16" for v in final.values()), "the trained model is saved in its original dtype (BF16)")
cfg = json.load(open(os.path.join(small, "config.json"))) if r.returncode == 0 else {}
check(cfg.get("torch_dtype") == "bfloat16", "config.json keeps torch_dtype bfloat16")

# ---- resume from a bf16 checkpoint is bit-identical
full, part = os.path.join(tmp, "full"), os.path.join(tmp, "part")
r1 = temper("sft", "--model", base, "--output-dir", full, "--learning-rate", "1e-3", "--max-steps", "4", *common)
r2 = temper("sft", "--model", base, "--output-dir", part, "--learning-rate", "1e-3", "--max-steps", "4", *common,
            "--resume-from-checkpoint", os.path.join(full, "checkpoint-2"))
check(r1.returncode == 0 and r2.returncode == 0, "bf16: full and resumed runs (%s)" % (r1.stderr + r2.stderr).strip()[-300:])
same = r1.returncode == 0 and r2.returncode == 0 and \
    open(os.path.join(full, "model.safetensors"), "rb").read() == open(os.path.join(part, "model.safetensors"), "rb").read()
check(same, "bf16: the resumed run's weights are bit-identical to the uninterrupted run's")
mf = timeless(full) if r1.returncode == 0 else []
mp = timeless(part) if r2.returncode == 0 else [{}]
check(mf == mp, "bf16: the resumed run's metrics.jsonl equals the uninterrupted one's (losses %s vs %s)" %
      ([x.get("loss") for x in mf], [x.get("loss") for x in mp]))
done()
