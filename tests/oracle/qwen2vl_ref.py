"""Hugging Face's Qwen2VLImageProcessor (the slow, PIL-based one) rewritten with PIL and
numpy: the oracle that test_image.py proves temper's processor against, and that
test_vl_train.py builds its reference pixels with."""
import math

import numpy as np
from PIL import Image

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def smart_resize(height, width, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280):
    if max(height, width) / min(height, width) > 200:
        raise ValueError("aspect")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def hf_process(path, min_pixels=56 * 56, max_pixels=28 * 28 * 1280, patch_size=14, temporal_patch_size=2, merge_size=2):
    img = Image.open(path).convert("RGB")
    width, height = img.size
    rh, rw = smart_resize(height, width, patch_size * merge_size, min_pixels, max_pixels)
    img = img.resize((rw, rh), Image.Resampling.BICUBIC)  # HF resize(): to PIL, resize, back
    a = np.array(img)
    a = (a.astype(np.float64) * (1 / 255)).astype(np.float32)               # rescale
    a = (a - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)  # normalize
    patches = a.transpose(2, 0, 1)[np.newaxis]                                # [1, C, H, W]
    patches = np.concatenate([patches, np.repeat(patches[-1][np.newaxis], temporal_patch_size - 1, axis=0)], axis=0)
    channel = patches.shape[1]
    grid_t = patches.shape[0] // temporal_patch_size
    grid_h, grid_w = rh // patch_size, rw // patch_size
    patches = patches.reshape(grid_t, temporal_patch_size, channel, grid_h // merge_size, merge_size, patch_size,
                              grid_w // merge_size, merge_size, patch_size)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid_t * grid_h * grid_w, channel * temporal_patch_size * patch_size * patch_size)
    return flat, (grid_t, grid_h, grid_w)
