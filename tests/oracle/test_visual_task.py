#!/usr/bin/python3
"""`temper task visual`: every answer is read back off the pixels with OpenCV (dots
counted as connected components of their colour, a bar's height measured in gridline
units, the clock hand's angle), the verifier grades "\\boxed{answer}" correct and a
wrong number incorrect, and the same seed gives the same files."""
import json
import math
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import TEMPER, check, done  # noqa: E402

PALETTE = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 60), "orange": (240, 150, 30),
           "purple": (140, 60, 180)}


def mask(rgb, c):
    return np.all(rgb == np.array(c, dtype=np.uint8), axis=-1).astype(np.uint8)


def read_answer(row, rgb):
    name = next((n for n in PALETTE if f" {n} " in row["prompt"]), None)
    if row["kind"] == "dots":
        n, _ = cv2.connectedComponents(mask(rgb, PALETTE[name]))
        return n - 1
    if row["kind"] == "bars":
        ys = np.nonzero(mask(rgb, PALETTE[name]).any(axis=1))[0]
        return (204 - ys.min()) // 20
    ys, xs = np.nonzero(mask(rgb, (180, 20, 20)))
    far = np.argmax((xs - 112.0) ** 2 + (ys - 112.0) ** 2)
    ang = math.degrees(math.atan2(xs[far] - 112.0, 112.0 - ys[far])) % 360
    h = round(ang / 30) % 12
    return 12 if h == 0 else h


def main():
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "v")
        r = subprocess.run([TEMPER, "task", "visual", "--n", "30", "--seed", "5", "--out", out], capture_output=True, text=True)
        check(r.returncode == 0, f"task visual runs ({r.stderr.strip()})")
        rows = [json.loads(l) for l in open(os.path.join(out, "visual.jsonl"))]
        bad = []
        for row in rows:
            bgr = cv2.imread(os.path.join(out, row["images"][0]))
            got = read_answer(row, bgr[..., ::-1].copy())
            if str(got) != row["answer"]:
                bad.append(f"{row['images'][0]} {row['kind']}: pixels say {got}, answer {row['answer']}")
        kinds = {row["kind"] for row in rows}
        check(len(rows) == 30 and kinds == {"dots", "bars", "clock"} and not bad,
              f"task visual: the pixels give each answer ({len(rows)} rows, kinds {sorted(kinds)}) {bad[:3]}")
        check(len({row["answer"] for row in rows}) >= 5, "task visual: answers vary")
        graded = os.path.join(tmp, "graded.jsonl")
        with open(graded, "w") as f:
            for row in rows:
                f.write(json.dumps({"completion": f"So the answer is \\boxed{{{row['answer']}}}.", "gold": row["answer"]}) + "\n")
                f.write(json.dumps({"completion": f"\\boxed{{{int(row['answer']) + 1}}}", "gold": row["answer"]}) + "\n")
        r = subprocess.run([TEMPER, "grade", graded], capture_output=True, text=True)
        verdicts = [json.loads(l).get("correct") for l in r.stdout.splitlines() if l.strip()]
        check(r.returncode == 0 and verdicts == [True, False] * len(rows),
              f"the verifier grades the visual answers ({r.stderr.strip()[:200]})")
        out2 = os.path.join(tmp, "v2")
        subprocess.run([TEMPER, "task", "visual", "--n", "30", "--seed", "5", "--out", out2, "--quiet"], check=True)
        same = open(os.path.join(out, "visual.jsonl")).read() == open(os.path.join(out2, "visual.jsonl")).read() and all(
            open(os.path.join(out, p), "rb").read() == open(os.path.join(out2, p), "rb").read()
            for p in (row["images"][0] for row in rows))
        check(same, "task visual: the same seed gives the same files")
    done()


main()
