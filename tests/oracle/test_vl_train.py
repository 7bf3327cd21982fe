#!/usr/bin/python3
"""`temper sft` on rows with images against the float64 Qwen2.5-VL reference of test_vl.py.

A tiny Qwen2.5-VL (random weights, made sensitive as test_vl.py does) with the byte tokenizer plus
the vision tokens (tiny_tokenizer.write(vision=True)); two rows, one with TRL's "images" list and
one with an "image" string, paths relative to the JSONL's folder, images of different sizes. One
step of `temper sft` (batch 2, chat template) logs the loss and the gradient norm; the reference
builds the same rows by hand: the user turn <|vision_start|><|image_pad|>*k<|vision_end|> + prompt
(k = grid_t*grid_h*grid_w/4), the assistant's completion and <|im_end|> trained, pixel values from
a PIL re-implementation (test_image.py's) of the Qwen2-VL processor, and computes the mean NLL of the
trained tokens and the norm of its gradient over every parameter (tower included). Both within
1e-4 relative (the text model's tolerance); with --freeze-vision-tower, the norm over the language
model's parameters only. So the data layer's ids, the images' pixels and grids, and their way
through the trainer's micro-batch into the model are what the proven model-level path takes.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import test_vl as V  # noqa: E402
import tiny_tokenizer  # noqa: E402
import torch_ref as R  # noqa: E402

DT = torch.float64
# Qwen2VLImageProcessor in PIL, as tests/oracle/test_image.py proves ours against it
from qwen2vl_ref import hf_process  # noqa: E402


MAXPIX = 112 * 112


def main():
    tmp = tempfile.mkdtemp(prefix="temper_vl_train_")
    try:
        tok = tiny_tokenizer.write(os.path.join(tmp, "tok"), vision=True)
        mdir = os.path.join(tmp, "m")
        V.run([V.TEMPER, "init", "--arch", "qwen2_5_vl", "--preset", "tiny", "--tokenizer", tok, "--vocab-size", "264",
               "--out", mdir, "--seed", "3", "--quiet"])
        cfg = json.load(open(os.path.join(mdir, "config.json")))
        V.report(cfg["image_token_id"] == 261 and cfg["vision_start_token_id"] == 259, "vision ids are the tokenizer's",
                 f"{cfg['vision_start_token_id']} {cfg['image_token_id']}")
        W32 = R.read_model_tensors(mdir)
        g = torch.Generator().manual_seed(7)
        for k in sorted(W32):
            t = W32[k]
            if "norm" in k or "ln_q" in k:
                W32[k] = 1 + 0.2 * torch.randn(t.shape, generator=g)
            elif k.startswith("visual."):
                W32[k] = 0.08 * torch.randn(t.shape, generator=g)
            elif "q_proj.weight" in k or "k_proj.weight" in k:
                W32[k] = 0.15 * torch.randn(t.shape, generator=g)
            elif k.endswith(".bias"):
                W32[k] = 0.05 * torch.randn(t.shape, generator=g)
        R.write_model_dir(mdir, cfg, W32)
        for f in os.listdir(tok):
            shutil.copy(os.path.join(tok, f), mdir)
        json.dump({"min_pixels": 56 * 56, "max_pixels": MAXPIX, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2},
                  open(os.path.join(mdir, "preprocessor_config.json"), "w"))

        d = os.path.join(tmp, "data")
        os.makedirs(os.path.join(d, "images"))
        rs = np.random.RandomState(5)
        paths = []
        for i, (w, h) in enumerate([(90, 60), (50, 110)]):
            p = os.path.join(d, "images", f"im{i}.png")
            Image.fromarray(rs.randint(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
            paths.append(p)
        rows = [{"images": ["images/im0.png"], "prompt": "How many?", "completion": "3"},
                {"image": "images/im1.png", "prompt": "Which one?", "completion": "12"}]
        with open(os.path.join(d, "train.jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

        def sft(out, extra):
            V.run([V.TEMPER, "sft", "--model", mdir, "--data", os.path.join(d, "train.jsonl"), "--output-dir", out,
                   "--max-steps", "1", "--per-device-train-batch-size", "2", "--logging-steps", "1", "--learning-rate", "1e-3",
                   "--quiet"] + extra)
            return json.loads(open(os.path.join(out, "metrics.jsonl")).readline())

        m_full = sft(os.path.join(tmp, "full"), [])
        m_frozen = sft(os.path.join(tmp, "frozen"), ["--freeze-vision-tower"])

        # the reference: the same rows built by hand
        pix, grid, seqs, trained = [], [], [], []
        B = tiny_tokenizer.ids
        for p, r in zip(paths, rows):
            flat, thw = hf_process(p, max_pixels=MAXPIX)
            pix.append(torch.from_numpy(flat.copy()))
            grid.append(thw)
            k = thw[0] * thw[1] * thw[2] // 4
            prompt = [257] + B("user\n") + [259] + [261] * k + [260] + B(r["prompt"]) + [258] + B("\n") + [257] + B("assistant\n")
            comp = B(r["completion"]) + [258]
            seqs.append(prompt + comp + B("\n"))
            trained.append([0] * len(prompt) + [1] * len(comp) + [0])
        W = {k: v.to(DT).requires_grad_(True) for k, v in W32.items()}
        _, lp = V.vl_logprobs(W, cfg, seqs, torch.cat(pix).to(DT), grid)
        sel = torch.tensor(sum(([m for m in t[1:]] + [0] for t in trained), []), dtype=torch.bool)
        n = int(sel.sum())
        loss = -lp[sel].sum() / n
        loss.backward()
        norm_all = float(torch.sqrt(sum((W[k].grad ** 2).sum() for k in W)))
        norm_lm = float(torch.sqrt(sum((W[k].grad ** 2).sum() for k in W if not k.startswith("visual."))))
        rl = abs(m_full["loss"] - float(loss)) / abs(float(loss))
        V.report(rl < V.TOL, "sft step with images: loss equals the float64 reference", f"{m_full['loss']:.6f} vs {float(loss):.6f} rel {rl:.1e}")
        rg = abs(m_full["grad_norm"] - norm_all) / norm_all
        V.report(rg < V.TOL, "sft step with images: gradient norm (tower + language model) equals the reference",
                 f"{m_full['grad_norm']:.6f} vs {norm_all:.6f} rel {rg:.1e}")
        rf = abs(m_frozen["grad_norm"] - norm_lm) / norm_lm
        V.report(rf < V.TOL and abs(norm_all - norm_lm) / norm_all > 1e-3,
                 "--freeze-vision-tower: gradient norm equals the reference's language-model part",
                 f"{m_frozen['grad_norm']:.6f} vs {norm_lm:.6f} rel {rf:.1e} (with tower {norm_all:.6f})")
        Wf, Wz = R.read_model_tensors(os.path.join(tmp, "full")), R.read_model_tensors(os.path.join(tmp, "frozen"))
        vis = [k for k in W32 if k.startswith("visual.")]
        V.report(all(not torch.equal(Wf[k], W32[k]) for k in vis if "weight" in k) and all(torch.equal(Wz[k], W32[k]) for k in vis),
                 "the tower's weights move in the step (every weight), and not at all when frozen")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        V.report(False, "test_vl_train", repr(e))
    print(f"# {V.passed} passed, {V.failed} failed")
    sys.exit(1 if V.failed else 0)
