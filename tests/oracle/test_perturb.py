#!/usr/bin/python3
"""temper perturb against the Vision Matters scripts (Visual-Perturbation/*.py), run here
with Debian's OpenCV, Pillow and PyTorch on the same small images and the SAME random
draws (temper writes each example's draws with --draws-out; Python's own random streams
are not ours). Bars:
  crop, noise (with the uint8 wraparound): pixel-exact;
  concat: exact layout (sizes, original left), pixels within 1 (cv2 INTER_CUBIC);
  mixup, rotate, blur: per-channel max abs diff <= 1 (LANCZOS, warpAffine bilinear,
  GaussianBlur), the measured maximum printed.
Also: --data rewrites a dataset's `images` / `image` columns and leaves the originals."""
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import TEMPER, check, done  # noqa: E402


# ---- the repo's functions, verbatim in what they compute (draws passed in) ----
def concat_images_horizontal(img1, img2):
    h1, w1, _ = img1.shape
    h2, w2, _ = img2.shape
    if h1 != h2:
        img2 = cv2.resize(img2, (int(w2 * (h1 / h2)), h1), interpolation=cv2.INTER_CUBIC)
        h2, w2, _ = img2.shape
    half_width = max(w1, w2) // 2
    img1_resized = cv2.resize(img1, (half_width, h1), interpolation=cv2.INTER_CUBIC)
    img2_resized = cv2.resize(img2, (half_width, h2), interpolation=cv2.INTER_CUBIC)
    return np.hstack((img1_resized, img2_resized))


def load_and_pad_image(image_path, target_size):
    image = Image.open(image_path).convert('RGB')
    width, height = image.size
    target_width, target_height = target_size
    ratio = min(target_width / width, target_height / height)
    new_size = (int(width * ratio), int(height * ratio))
    image = image.resize(new_size, Image.Resampling.LANCZOS)
    padded_image = Image.new('RGB', target_size, (255, 255, 255))
    padded_image.paste(image, ((target_width - new_size[0]) // 2, (target_height - new_size[1]) // 2))
    # torchvision ToTensor: uint8 HWC -> float32 CHW / 255
    return torch.from_numpy(np.array(padded_image)).permute(2, 0, 1).contiguous().to(torch.float32).div(255)


def mixup(x1, x2, lam):
    mixed = lam * x1 + (1 - lam) * x2
    # torchvision ToPILImage on a float tensor: mul(255).byte()
    return mixed.mul(255).byte().permute(1, 2, 0).numpy()


def rotate_image(image, angle, fill_color=(255, 255, 255)):
    (h, w) = image.shape[:2]
    center = (w // 2, h // 2)
    rotation_matrix = cv2.getRotationMatrix2D(center, angle, 1.0)
    cos = np.abs(rotation_matrix[0, 0])
    sin = np.abs(rotation_matrix[0, 1])
    new_w = int((h * sin) + (w * cos))
    new_h = int((h * cos) + (w * sin))
    rotation_matrix[0, 2] += (new_w / 2) - center[0]
    rotation_matrix[1, 2] += (new_h / 2) - center[1]
    return cv2.warpAffine(image, rotation_matrix, (new_w, new_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill_color)


def add_gaussian_noise(image, noise_f64):
    noise = noise_f64.astype(np.uint8)  # the repo's cast: wraps negative noise
    return cv2.add(image, noise)


def rgb(path):
    return np.array(Image.open(path).convert('RGB'))


def make_images(d, sizes, seed=0):
    rs = np.random.RandomState(seed)
    for i, (w, h) in enumerate(sizes):
        # smooth gradients + hard-edged blocks + noise: every filter sees edges and ramps
        y, x = np.mgrid[0:h, 0:w]
        a = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], -1)
        a = a.astype(np.int32) + rs.randint(-30, 30, (h, w, 3))
        a[h // 4:h // 2, w // 3:2 * w // 3] = rs.randint(0, 256, 3)
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(os.path.join(d, f"img{i}.png"))


def run(args):
    r = subprocess.run([TEMPER, "perturb"] + args, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    sizes = [(37, 23), (64, 64), (50, 71), (20, 45), (96, 40), (6, 5)]  # (6, 5): kernels wider than the image
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        make_images(src, sizes)
        before = {f: open(os.path.join(src, f), "rb").read() for f in os.listdir(src)}
        for op in ["crop", "noise", "concat", "mixup", "rotate", "blur"]:
            out = os.path.join(tmp, op)
            draws = os.path.join(tmp, op + ".draws.jsonl")
            extra = ["--max-kernel-size", "15"] if op == "blur" else []
            rc, msg = run([op, "--images", src, "--out", out, "--seed", "7", "--draws-out", draws] + extra)
            if rc:
                check(False, f"perturb {op}: temper failed: {msg.strip()}")
                continue
            worst, exact, shape_ok, n = 0, True, True, 0
            for line in open(draws):
                d = json.loads(line)
                f = d["file"]
                got = rgb(os.path.join(out, os.path.basename(f)))
                img = rgb(f)
                if op == "crop":
                    want = img[d["y"]:d["y"] + d["h"], d["x"]:d["x"] + d["w"]]
                elif op == "noise":
                    noise = np.fromfile(d["noise_file"], dtype=np.float64).reshape(img.shape)
                    want = add_gaussian_noise(img, noise)
                elif op == "concat":
                    want = concat_images_horizontal(img, rgb(d["partner"]))
                elif op == "mixup":
                    want = mixup(load_and_pad_image(f, (256, 256)), load_and_pad_image(d["partner"], (256, 256)),
                                 np.float64(d["lambda"]))
                elif op == "rotate":
                    want = rotate_image(img, d["angle"])
                else:
                    want = cv2.GaussianBlur(img, (d["ksize"], d["ksize"]), sigmaX=0)
                n += 1
                if got.shape != want.shape:
                    shape_ok = False
                    print(f"# {op} {f}: shape {got.shape} vs {want.shape}")
                    continue
                diff = np.abs(got.astype(int) - want.astype(int)).max()
                worst = max(worst, int(diff))
                exact &= diff == 0
            print(f"# {op}: {n} images, max abs diff {worst}")
            check(n == len(sizes) and shape_ok, f"perturb {op}: {n} images, shapes as the script's")
            if op in ("crop", "noise"):
                check(exact, f"perturb {op}: pixel-exact against the script (max diff {worst})")
            else:
                check(worst <= 1, f"perturb {op}: per-channel max abs diff {worst} <= 1 against the script")
        # The OpenCV operations alone, over the parameters the draws may not have hit:
        # every kernel size to 49 (on a 6x5 image too: reflection past the far border),
        # resizes up and down, rotations at the right angles and odd ones.
        tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/tools/image_tool")
        for name, cases in [("blur", [[str(k), f] for k in (3, 5, 7, 9, 11, 15, 25, 49) for f in ("img0.png", "img5.png")]),
                            ("cvresize", [[w, h, f] for (w, h) in [("80", "51"), ("13", "9"), ("37", "60"), ("3", "23")]
                                          for f in ("img0.png", "img4.png")]),
                            ("rotate", [[a, "img2.png"] for a in ("0", "90", "-90", "180", "-180", "45", "-33.3", "137.9")])]:
            worst = 0
            for args in cases:
                f = os.path.join(src, args[-1])
                o = os.path.join(tmp, "tool.png")
                r = subprocess.run([tool, name] + args[:-1] + [f, o], capture_output=True, text=True)
                if r.returncode:
                    worst = 999
                    print("# " + r.stderr.strip())
                    continue
                img = rgb(f)
                if name == "blur":
                    want = cv2.GaussianBlur(img, (int(args[0]), int(args[0])), sigmaX=0)
                elif name == "cvresize":
                    want = cv2.resize(img, (int(args[0]), int(args[1])), interpolation=cv2.INTER_CUBIC)
                else:
                    want = rotate_image(img, float(args[0]))
                got = rgb(o)
                worst = max(worst, 999 if got.shape != want.shape else int(np.abs(got.astype(int) - want.astype(int)).max()))
            check(worst <= 1, f"{name} alone over {len(cases)} cases: per-channel max abs diff {worst} <= 1")
        # draws: the partner is never the image itself; rotate angles cover both signs
        ds = [json.loads(l) for l in open(os.path.join(tmp, "concat.draws.jsonl"))]
        check(all(d["partner"] != d["file"] for d in ds), "concat: the distractor is another image of the set")
        # same seed, same bytes; another seed, other draws
        rc1, _ = run(["rotate", "--images", src, "--out", os.path.join(tmp, "r2"), "--seed", "7"])
        same = all(open(os.path.join(tmp, "rotate", f), "rb").read() == open(os.path.join(tmp, "r2", f), "rb").read()
                   for f in os.listdir(src))
        check(rc1 == 0 and same, "rotate: the same --seed gives the same files")
        # --data: TRL's `images` list and `image` string, rewritten; originals untouched
        data = os.path.join(src, "rows.jsonl")
        with open(data, "w") as fo:
            fo.write(json.dumps({"images": ["img0.png", "img1.png"], "prompt": "p0", "answer": "1"}) + "\n")
            fo.write(json.dumps({"image": "img2.png", "prompt": "p1", "answer": "2"}) + "\n")
            fo.write(json.dumps({"images": ["img0.png"], "prompt": "p2", "answer": "3"}) + "\n")
        out = os.path.join(tmp, "data_out")
        rc, msg = run(["rotate", "--data", data, "--out", out, "--seed", "3"])
        rows = [json.loads(l) for l in open(os.path.join(out, "rows.jsonl"))] if rc == 0 else []
        ok = (rc == 0 and len(rows) == 3 and rows[0]["images"] == ["images/img0.png", "images/img1.png"]
              and rows[1]["image"] == "images/img2.png" and rows[2]["images"] == ["images/img0.png"]
              and rows[0]["prompt"] == "p0" and rows[1]["answer"] == "2"
              and all(os.path.exists(os.path.join(out, p)) for r in rows for p in r.get("images", [r.get("image")])))
        check(ok, f"perturb --data: the images columns point at the perturbed files ({msg.strip()})")
        check(all(open(os.path.join(src, f), "rb").read() == b for f, b in before.items()),
              "perturb: the original images are unchanged")
        rc, msg = run(["rotate", "--data", data, "--out", src])
        check(rc != 0 and "overwrite" in msg and not os.path.exists(os.path.join(src, "images")),
              f"perturb --data: --out = the dataset's folder is refused before anything is written ({msg.strip()})")
        rc, msg = run(["rotate", "--images", src, "--out", src])
        check(rc != 0 and "overwritten" in msg and len(msg.strip().splitlines()) == 1,
              f"perturb: --out = --images is refused ({msg.strip()})")
        bad = os.path.join(tmp, "bad")
        os.makedirs(bad)
        good = open(os.path.join(src, "img1.png"), "rb").read()
        open(os.path.join(bad, "a.png"), "wb").write(good)
        open(os.path.join(bad, "b.png"), "wb").write(good[:len(good) // 2])
        rc, msg = run(["blur", "--images", bad, "--out", os.path.join(tmp, "bad_out")])
        check(rc != 0 and "b.png" in msg and len(msg.strip().splitlines()) == 1,
              f"perturb: a truncated PNG is a one-line error naming it ({msg.strip()})")
    done()


main()
