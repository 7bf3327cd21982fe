#!/usr/bin/python3
"""Generation with images (Qwen2.5-VL through the KV-cache sampler, src/rollout/ + model/kv_cache.c):
the vision prefill puts the tower's output over the image pads, every prompt row gets its M-RoPE
(t, h, w) angles, and the tokens after the prompt continue at position id + rope_delta
(transformers' get_rope_index / rope_deltas).

tests/tools/vl_generate samples from four prompts in one batch: two images of different grids
(one with windows cut at its edge), a prompt with two images, and a text-only prompt; chunked
prefill (several image prompts in one decode call, a prompt split across calls). Checked:
- the greedy continuation of every prompt equals the float64 PyTorch reference's (test_vl.py's
  vl_logprobs, argmax step by step), and its recorded log-probs agree within 1e-4 (rel);
- the log-probs the sampler records equal the trainer's packed forward on the same ids and
  images: bit for bit with TEMPER_DETERMINISTIC=1 (batch 1 and 4, and sampled at T = 0.7),
  within 1e-5 without it. About 3 s.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import test_vl as V  # noqa: E402
import torch_ref as R  # noqa: E402

N = 6
passed = failed = 0


def report(ok, name, detail=""):
    global passed, failed
    print(f"{'ok' if ok else 'not ok'} - {name}" + (f" {detail}" if detail else ""), flush=True)
    passed += bool(ok)
    failed += not ok


def gen(tmp, mdir, name, env_extra, *args):
    out = os.path.join(tmp, name + ".safetensors")
    env = dict(os.environ, **env_extra)
    p = subprocess.run([os.path.join(V.TOOLS, "vl_generate"), "--model", mdir, "--tokens", os.path.join(tmp, "t.json"),
                        "--images", os.path.join(tmp, "img.safetensors"), "--out", out, "--max-new-tokens", str(N), *args],
                       capture_output=True, text=True, timeout=300, env=env)
    if p.returncode:
        raise RuntimeError(f"vl_generate failed: {p.stderr.strip()}")
    return R.read_safetensors(out)[0]


def main():
    tmp = tempfile.mkdtemp(prefix="temper_vlgen_")
    try:
        mdir = os.path.join(tmp, "m")
        V.run([V.TEMPER, "init", "--arch", "qwen2_5_vl", "--preset", "tiny", "--out", mdir, "--seed", "3", "--quiet"])
        cfg = json.load(open(os.path.join(mdir, "config.json")))
        W32 = R.read_model_tensors(mdir)
        g = torch.Generator().manual_seed(11)
        for k in sorted(W32):  # as test_vl.py: norms off 1, peaked attention so that positions matter
            t = W32[k]
            if "norm" in k or "ln_q" in k:
                W32[k] = 1 + 0.2 * torch.randn(t.shape, generator=g)
            elif k.startswith("visual."):
                W32[k] = 0.08 * torch.randn(t.shape, generator=g)
            elif "q_proj.weight" in k or "k_proj.weight" in k:
                W32[k] = 0.15 * torch.randn(t.shape, generator=g)
            elif k.endswith(".bias"):
                W32[k] = 0.05 * torch.randn(t.shape, generator=g)
            elif k in ("lm_head.weight", "model.embed_tokens.weight"):
                W32[k] = 0.5 * torch.randn(t.shape, generator=g)  # clear argmax margins for the greedy comparison
        R.write_model_dir(mdir, cfg, W32)
        grid = [(1, 4, 6), (1, 6, 10), (1, 4, 4), (1, 2, 4)]
        npatch = sum(t * h * w for t, h, w in grid)
        pix = torch.randn(npatch, 3 * 2 * 14 * 14, generator=g)
        R.write_safetensors(os.path.join(tmp, "img.safetensors"),
                            {"pixel_values": pix, "image_grid_thw": torch.tensor(grid, dtype=torch.float32)})
        vs, ve, pad = cfg["vision_start_token_id"], cfg["vision_end_token_id"], cfg["image_token_id"]
        prompts = [[11, 12, vs] + [pad] * 6 + [ve, 13, 14],
                   [21, vs] + [pad] * 15 + [ve, 22, 23, 24],
                   [31, 32, 33, 34, 35],
                   [41, vs] + [pad] * 4 + [ve, 42, vs] + [pad] * 2 + [ve, 43]]
        n_images = [1, 1, 0, 2]
        with open(os.path.join(tmp, "t.json"), "w") as f:
            json.dump({"prompts": prompts, "n_images": n_images}, f)

        # the float64 reference, greedy: argmax of the last position, token by token
        W = {k: v.to(torch.float64) for k, v in W32.items()}
        ref_ids, ref_lp, margin, im = [], [], 1e9, 0
        for p, k in zip(prompts, n_images):
            gr = grid[im:im + k]
            px = pix[sum(t * h * w for t, h, w in grid[:im]):sum(t * h * w for t, h, w in grid[:im + k])].to(torch.float64)
            im += k
            seq, lps = list(p), []
            for _ in range(N):
                row = V_rows(W, cfg, seq, px, gr)[-1]
                top2 = torch.topk(row, 2).values
                margin = min(margin, float(top2[0] - top2[1]))
                nxt = int(row.argmax())
                lps.append(float(row[nxt]))
                seq.append(nxt)
            ref_ids.append(seq[len(p):])
            ref_lp.append(lps)
        C = gen(tmp, mdir, "greedy4", {}, "--batch", "4", "--prefill-chunk", "16")
        c_ids = C["gen"].long().tolist()
        report(c_ids == ref_ids, "greedy continuations of 4 prompts (1, 1, 0 and 2 images; chunked prefill) equal the float64 reference",
               f"C {c_ids} ref {ref_ids} (smallest top-2 margin {margin:.2e})")
        r = V.rel(C["samp_logp"], torch.tensor(ref_lp, dtype=torch.float64))
        report(r < 1e-4, "their recorded log-probs match the float64 reference", f"rel {r:.2e}")
        d = float((C["samp_logp"] - C["fwd_logp"]).abs().max())
        report(d <= 1e-5, "sampler log-probs == the trainer's packed forward (images, M-RoPE) within 1e-5", f"max |diff| {d:.2e}")
        det = {"TEMPER_DETERMINISTIC": "1"}
        for name, args in [("batch 4", ["--batch", "4", "--prefill-chunk", "16"]), ("batch 1", ["--batch", "1"]),
                           ("sampled at T=0.7, batch 3", ["--batch", "3", "--temperature", "0.7", "--seed", "5"])]:
            D = gen(tmp, mdir, "det", det, *args)
            same = torch.equal(D["samp_logp"], D["fwd_logp"])
            nz = int((D["samp_logp"] != 0).sum())
            report(same and nz == 4 * N, f"--deterministic: sampler log-probs == the trainer's forward bit for bit ({name})",
                   f"max |diff| {float((D['samp_logp'] - D['fwd_logp']).abs().max()):.1e}, {nz} tokens")
        D1 = gen(tmp, mdir, "d1", det, "--batch", "1")
        D4 = gen(tmp, mdir, "d4", det, "--batch", "4", "--prefill-chunk", "16")
        report(torch.equal(D1["gen"], D4["gen"]) and torch.equal(D1["samp_logp"], D4["samp_logp"]),
               "--deterministic: the same tokens and log-probs for batch 1 and batch 4")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def V_rows(W, cfg, ids, px, gr):
    """log_softmax rows of every position of one sequence: test_vl.py's reference (vl_logprobs), all rows."""
    import torch.nn.functional as F
    D, Hq, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = D // Hq
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    if gr:
        img = V.vision_tower(W, cfg["vision_config"], px, gr)
        mask = torch.tensor(ids) == cfg["image_token_id"]
        x = x.masked_scatter(mask.unsqueeze(-1).expand_as(x), img)
    T = len(ids)
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    sec = cfg["rope_scaling"]["mrope_section"] * 2
    pos, _ = V.get_rope_index(cfg, ids, gr, 0)
    freqs = (inv_freq[None, :, None].float() @ pos[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos3, sin3 = emb.cos().to(V.DT), emb.sin().to(V.DT)
    cos = torch.cat([m[i % 3] for i, m in enumerate(cos3.split(sec, dim=-1))], dim=-1)
    sin = torch.cat([m[i % 3] for i, m in enumerate(sin3.split(sec, dim=-1))], dim=-1)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = V.rmsnorm(x, W[p + "input_layernorm.weight"], cfg["rms_norm_eps"])
        q = F.linear(h, W[p + "self_attn.q_proj.weight"], W[p + "self_attn.q_proj.bias"]).view(T, Hq, hd).transpose(0, 1)
        k = F.linear(h, W[p + "self_attn.k_proj.weight"], W[p + "self_attn.k_proj.bias"]).view(T, Hkv, hd).transpose(0, 1)
        v = F.linear(h, W[p + "self_attn.v_proj.weight"], W[p + "self_attn.v_proj.bias"]).view(T, Hkv, hd).transpose(0, 1)
        q, k = q * cos + V.rotate_half(q) * sin, k * cos + V.rotate_half(k) * sin
        k, v = k.repeat_interleave(Hq // Hkv, 0), v.repeat_interleave(Hq // Hkv, 0)
        s = (q @ k.transpose(1, 2)) / hd ** 0.5
        a = torch.softmax(s.masked_fill(~causal, float("-inf")), -1) @ v
        x = x + F.linear(a.transpose(0, 1).reshape(T, -1), W[p + "self_attn.o_proj.weight"])
        h = V.rmsnorm(x, W[p + "post_attention_layernorm.weight"], cfg["rms_norm_eps"])
        x = x + F.linear(F.silu(F.linear(h, W[p + "mlp.gate_proj.weight"])) * F.linear(h, W[p + "mlp.up_proj.weight"]),
                         W[p + "mlp.down_proj.weight"])
    x = V.rmsnorm(x, W["model.norm.weight"], cfg["rms_norm_eps"])
    return torch.log_softmax(F.linear(x, W["lm_head.weight"]), -1)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        report(False, "test_vl_generate", repr(e))
    print(f"# {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
