#!/usr/bin/python3
"""The Qwen2-VL image processor (src/image/qwen2vl_processor.c) against a PIL + numpy
re-implementation of Hugging Face's Qwen2VLImageProcessor (slow path): smart_resize,
PIL BICUBIC, rescale 1/255 in float64 then float32, CLIP mean/std in float32, the
(t, h/2, w/2, 2, 2) x (c, 2, 14, 14) patch layout. pixel_values within 1e-6 and
image_grid_thw equal, on images that go up (under min_pixels), down (over max_pixels,
from a preprocessor_config.json), stay (already multiples of 28) or round. Also
Pillow's Image.resize BILINEAR / BICUBIC / LANCZOS, up and down, within 1 (expected 0)."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import check, done  # noqa: E402
from qwen2vl_ref import CLIP_MEAN, CLIP_STD, hf_process  # noqa: E402

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/tools/image_tool")


def ours(path, cfg, out):
    args = [TOOL, "patches", path] + ([cfg] if cfg else []) + [out]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr.strip()
    raw = open(out, "rb").read()
    t, h, w, n, dim = np.frombuffer(raw[:20], dtype=np.int32)
    return (np.frombuffer(raw[20:], dtype=np.float32).reshape(n, dim), (int(t), int(h), int(w))), ""


def make_image(path, w, h, seed):
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * y) % 256], -1) + rs.randint(-40, 40, (h, w, 3))
    a[h // 3:h // 2, w // 4:w // 2] = rs.randint(0, 256, 3)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path)


def main():
    if not os.path.exists(TOOL):
        print("# build/tools/image_tool missing (make all)")
        check(False, "image_tool is built")
        done()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "preprocessor_config.json")
        json.dump({"min_pixels": 3136, "max_pixels": 200704, "patch_size": 14, "temporal_patch_size": 2,
                   "merge_size": 2, "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
                   "image_processor_type": "Qwen2VLImageProcessor"}, open(cfg, "w"))
        cases = [(30, 20, None, {}), (100, 57, None, {}), (56, 84, None, {}), (97, 131, None, {}),
                 (700, 500, cfg, {"max_pixels": 200704}), (1000, 90, cfg, {"max_pixels": 200704})]
        for i, (w, h, c, kw) in enumerate(cases):
            path = os.path.join(tmp, f"im{i}.png")
            make_image(path, w, h, i)
            want, want_thw = hf_process(path, **kw)
            got, msg = ours(path, c, os.path.join(tmp, f"p{i}.bin"))
            if got is None:
                check(False, f"qwen2vl processor {w}x{h}: {msg}")
                continue
            pv, thw = got
            err = float(np.abs(pv - want).max()) if pv.shape == want.shape else float("inf")
            check(thw == want_thw and pv.shape == want.shape and err <= 1e-6,
                  f"qwen2vl processor {w}x{h}{' (config)' if c else ''}: grid_thw {thw} = {want_thw}, "
                  f"pixel_values {pv.shape}, max abs diff {err:.2e} <= 1e-6")
        src = os.path.join(tmp, "r.png")
        make_image(src, 61, 43, 9)
        im = Image.open(src).convert("RGB")
        for name, f in [("bilinear", Image.Resampling.BILINEAR), ("bicubic", Image.Resampling.BICUBIC),
                        ("lanczos", Image.Resampling.LANCZOS)]:
            worst = 0
            for (w, h) in [(150, 97), (23, 17), (61, 120), (40, 43)]:
                out = os.path.join(tmp, f"{name}{w}.png")
                r = subprocess.run([TOOL, "resize", name, str(w), str(h), src, out], capture_output=True, text=True)
                if r.returncode:
                    worst = 999
                    print("# " + r.stderr.strip())
                    continue
                want = np.array(im.resize((w, h), f)).astype(int)
                worst = max(worst, int(np.abs(np.array(Image.open(out)).astype(int) - want).max()))
            check(worst <= 1, f"PIL {name} resize, up and down: per-channel max abs diff {worst} <= 1")
    done()


main()
