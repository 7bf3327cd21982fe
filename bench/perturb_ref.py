#!/usr/bin/python3
"""The perturb bench's reference: the Vision Matters scripts' operations (OpenCV for
concat, rotate, noise, blur, crop; Pillow LANCZOS + PyTorch for mixup), timed in memory on
the images bench/perturb.c wrote, one thread, the random draws included, decoding and
encoding not; CPU time of the process (one thread). Prints `<op> <images/s>` per op.  usage: perturb_ref.py DIR SECONDS"""
import os
import random
import sys
import time

import cv2
import numpy as np
import torch
from PIL import Image

cv2.setNumThreads(1)
torch.set_num_threads(1)


def concat(img1, img2):
    h1, w1, _ = img1.shape
    h2, w2, _ = img2.shape
    if h1 != h2:
        img2 = cv2.resize(img2, (int(w2 * (h1 / h2)), h1), interpolation=cv2.INTER_CUBIC)
        h2, w2, _ = img2.shape
    half = max(w1, w2) // 2
    return np.hstack((cv2.resize(img1, (half, h1), interpolation=cv2.INTER_CUBIC),
                      cv2.resize(img2, (half, h2), interpolation=cv2.INTER_CUBIC)))


def pad(image, size=256):
    w, h = image.size
    r = min(size / w, size / h)
    ns = (int(w * r), int(h * r))
    image = image.resize(ns, Image.Resampling.LANCZOS)
    p = Image.new('RGB', (size, size), (255, 255, 255))
    p.paste(image, ((size - ns[0]) // 2, (size - ns[1]) // 2))
    return torch.from_numpy(np.array(p)).permute(2, 0, 1).contiguous().float().div(255)


def mixup(a, b):
    lam = np.random.uniform(0.7, 0.9)
    m = lam * pad(a) + (1 - lam) * pad(b)
    return Image.fromarray(m.mul(255).byte().permute(1, 2, 0).numpy())


def rotate(image, angle):
    h, w = image.shape[:2]
    c = (w // 2, h // 2)
    M = cv2.getRotationMatrix2D(c, angle, 1.0)
    cos, sin = np.abs(M[0, 0]), np.abs(M[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    M[0, 2] += nw / 2 - c[0]
    M[1, 2] += nh / 2 - c[1]
    return cv2.warpAffine(image, M, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(255, 255, 255))


def noise(image):
    return cv2.add(image, np.random.normal(0, 25, size=image.shape).astype(np.uint8))


def blur(image):
    k = random.choice([i for i in range(3, 8) if i % 2 == 1])
    return cv2.GaussianBlur(image, (k, k), sigmaX=0)


def crop(image):
    h, w = image.shape[:2]
    cw, ch = min(int(random.uniform(0.6, 0.9) * w), w), min(int(random.uniform(0.6, 0.9) * h), h)
    x, y = random.randint(0, w - cw), random.randint(0, h - ch)
    return image[y:y + ch, x:x + cw].copy()  # the script's slice, written out: a copy


def main():
    d, seconds = sys.argv[1], float(sys.argv[2])
    files = sorted(f for f in os.listdir(d) if f.endswith(".png"))
    cv = [cv2.imread(os.path.join(d, f)) for f in files]
    pil = [Image.open(os.path.join(d, f)).convert("RGB") for f in files]
    for im in pil:
        im.load()
    n = len(files)
    others = lambda i: random.choice([j for j in range(n) if j != i])  # noqa: E731
    ops = {
        "concat": lambda i: concat(cv[i], cv[others(i)]),
        "mixup": lambda i: mixup(pil[i], pil[others(i)]),
        "rotate": lambda i: rotate(cv[i], random.uniform(-180, 180)),
        "noise": lambda i: noise(cv[i]),
        "blur": lambda i: blur(cv[i]),
        "crop": lambda i: crop(cv[i]),
    }
    for name, f in ops.items():
        f(0)  # warm-up
        done, t0 = 0, time.process_time()
        while True:
            for i in range(n):
                f(i)
            done += n
            t = time.process_time()
            if t - t0 >= seconds:
                break
        print(f"{name} {done / (t - t0):.1f}")


main()
