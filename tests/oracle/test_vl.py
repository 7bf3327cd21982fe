#!/usr/bin/python3
"""Parity of temper's Qwen2.5-VL and Qwen2-VL (vision tower, image embeddings, M-RoPE, the Qwen2
language model) with a float64 PyTorch reference written here from the semantics of transformers'
modeling_qwen2_5_vl.py (Qwen2_5_VisionTransformerPretrainedModel.forward / get_window_index /
rot_pos_emb, Qwen2_5_VLPatchMerger, Qwen2_5_VLModel.get_rope_index, apply_multimodal_rotary_pos_emb)
and modeling_qwen2_vl.py (Qwen2VisionTransformerPretrainedModel: LayerNorm blocks, VisionMlp
fc1 -> QuickGELU -> fc2, no windows, a LayerNorm ln_q; Qwen2VLModel.get_rope_index).

The C side: `temper init --arch qwen2_5_vl --preset tiny` and tests/tools/vl_dump (see its header).
Two images of grids (1, 4, 6) and (1, 6, 10) patches, windows of 2x2 merge units (window_size 56),
so the second image has windows cut at its edges; three packed sequences (two with an image, one
text only). Checked, each as rel = max|c - t| / max|t| < 1e-4 (the text model's tolerance):
the tower's output, every position's log-prob, the loss, and the gradient of every parameter;
with --freeze-vision-tower, no tower gradient and the same language-model gradients; and the
checkpoint key layout of transformers >= 4.52's internal names (model.language_model.*,
model.visual.*) loads to the same log-probs. Qwen2-VL (`--arch qwen2_vl`, the same grids, every
block attending the whole image): the same checks, its checkpoint names (Qwen2VisionTransformer's
modules: norm1/norm2 with biases, mlp.fc1/fc2, merger.ln_q with a bias) and config names (embed_dim,
hidden_size = the language model's, mlp_ratio, quick_gelu), and a save -> load round trip
(`temper sft` at learning rate 0 writes the tensors it read, bit for bit, under those names).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_ref as R  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TEMPER = os.environ.get("TEMPER") or os.path.join(REPO, "build", "temper")
TOOLS = os.environ.get("TEMPER_TOOLS") or os.path.join(REPO, "build", "tools")
TOL = 1e-4
passed = failed = 0
DT = torch.float64


def report(ok, name, detail=""):
    global passed, failed
    print(f"{'ok' if ok else 'not ok'} - {name}" + (f" {detail}" if detail else ""), flush=True)
    passed += bool(ok)
    failed += not ok


def rel(c, t):
    c, t = c.to(DT).reshape(-1), t.to(DT).reshape(-1)
    return float((c - t).abs().max() / t.abs().max().clamp_min(1e-30))


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()}")


# ---- the reference, after transformers' modeling_qwen2_5_vl.py ----

def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def is_q2(vc):  # Qwen2VLVisionConfig: embed_dim is the tower's width
    return "embed_dim" in vc


def vnorm(W, name, x, vc):
    """Qwen2-VL: nn.LayerNorm(eps=1e-6) with bias; Qwen2.5-VL: Qwen2RMSNorm(eps=1e-6)."""
    if is_q2(vc):
        return F.layer_norm(x, x.shape[-1:], W[name + ".weight"], W[name + ".bias"], 1e-6)
    return rmsnorm(x, W[name + ".weight"], 1e-6)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rot_pos_emb(vc, grid_thw):
    sms = vc["spatial_merge_size"]
    pos_ids = []
    for t, h, w in grid_thw:
        hpos = torch.arange(h).unsqueeze(1).expand(-1, w)
        hpos = hpos.reshape(h // sms, sms, w // sms, sms).permute(0, 2, 1, 3).flatten()
        wpos = torch.arange(w).unsqueeze(0).expand(h, -1)
        wpos = wpos.reshape(h // sms, sms, w // sms, sms).permute(0, 2, 1, 3).flatten()
        pos_ids.append(torch.stack([hpos, wpos], dim=-1).repeat(t, 1))
    pos_ids = torch.cat(pos_ids, dim=0)
    max_grid = max(max(h, w) for _, h, w in grid_thw)
    dim = (vc["embed_dim"] if is_q2(vc) else vc["hidden_size"]) // vc["num_heads"] // 2
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    full = torch.outer(torch.arange(max_grid, dtype=torch.float), inv_freq)  # fp32, as transformers
    return full[pos_ids].flatten(1).to(DT)


def get_window_index(vc, grid_thw):
    sms, ps = vc["spatial_merge_size"], vc["patch_size"]
    vmws = vc["window_size"] // sms // ps
    window_index, cu_window_seqlens, wid = [], [0], 0
    for t, h, w in grid_thw:
        lh, lw = h // sms, w // sms
        index = torch.arange(t * lh * lw).reshape(t, lh, lw)
        pad_h, pad_w = vmws - lh % vmws, vmws - lw % vmws
        nh, nw = (lh + pad_h) // vmws, (lw + pad_w) // vmws
        ip = F.pad(index, (0, pad_w, 0, pad_h), "constant", -100)
        ip = ip.reshape(t, nh, vmws, nw, vmws).permute(0, 1, 3, 2, 4).reshape(t, nh * nw, vmws, vmws)
        seqlens = (ip != -100).sum([2, 3]).reshape(-1)
        ip = ip.reshape(-1)
        window_index.append(ip[ip != -100] + wid)
        cu = seqlens.cumsum(0) * sms * sms + cu_window_seqlens[-1]
        cu_window_seqlens.extend(cu.tolist())
        wid += t * lh * lw
    return torch.cat(window_index), torch.unique_consecutive(torch.tensor(cu_window_seqlens))


def seg_attention(q, k, v, cu):
    out = torch.zeros_like(q)
    for i in range(1, len(cu)):
        a, b = int(cu[i - 1]), int(cu[i])
        if b <= a:
            continue
        qs, ks, vs = (x[a:b].transpose(0, 1) for x in (q, k, v))  # [H, n, d]
        s = qs @ ks.transpose(1, 2) / qs.shape[-1] ** 0.5
        out[a:b] = (torch.softmax(s, -1) @ vs).transpose(0, 1)
    return out


def vision_tower(W, vc, pixel_values, grid_thw):
    q2 = is_q2(vc)
    E, H = vc["embed_dim" if q2 else "hidden_size"], vc["num_heads"]
    tp, ps = vc["temporal_patch_size"], vc["patch_size"]
    x = pixel_values.view(-1, 3, tp, ps, ps)
    x = F.conv3d(x, W["visual.patch_embed.proj.weight"], stride=[tp, ps, ps]).view(-1, E)
    rpe = rot_pos_emb(vc, grid_thw)
    if q2:  # no windows: the processor's order throughout, every block within its frame
        window_index = torch.arange(x.shape[0] // vc["spatial_merge_size"] ** 2)
        cu_win = None
    else:
        window_index, cu_win = get_window_index(vc, grid_thw)
    smu = vc["spatial_merge_size"] ** 2
    n = x.shape[0]
    x = x.reshape(n // smu, smu, -1)[window_index].reshape(n, -1)
    rpe = rpe.reshape(n // smu, smu, -1)[window_index].reshape(n, -1)
    emb = torch.cat((rpe, rpe), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    cu = F.pad(torch.tensor([h * w for t, h, w in grid_thw for _ in range(t)]).cumsum(0), (1, 0), value=0)
    for l in range(vc["depth"]):
        p = f"visual.blocks.{l}."
        cu_now = cu if q2 or l in vc["fullatt_block_indexes"] else cu_win
        h = vnorm(W, p + "norm1", x, vc)
        q, k, v = F.linear(h, W[p + "attn.qkv.weight"], W[p + "attn.qkv.bias"]).reshape(n, 3, H, -1).permute(1, 0, 2, 3).unbind(0)
        q = q * cos.unsqueeze(1) + rotate_half(q) * sin.unsqueeze(1)
        k = k * cos.unsqueeze(1) + rotate_half(k) * sin.unsqueeze(1)
        a = seg_attention(q, k, v, cu_now).reshape(n, -1)
        x = x + F.linear(a, W[p + "attn.proj.weight"], W[p + "attn.proj.bias"])
        h = vnorm(W, p + "norm2", x, vc)
        if q2:  # VisionMlp: fc2(QuickGELU(fc1(h))), QuickGELU = x sigmoid(1.702 x)
            f = F.linear(h, W[p + "mlp.fc1.weight"], W[p + "mlp.fc1.bias"])
            x = x + F.linear(f * torch.sigmoid(1.702 * f), W[p + "mlp.fc2.weight"], W[p + "mlp.fc2.bias"])
            continue
        g = F.linear(h, W[p + "mlp.gate_proj.weight"], W[p + "mlp.gate_proj.bias"])
        u = F.linear(h, W[p + "mlp.up_proj.weight"], W[p + "mlp.up_proj.bias"])
        x = x + F.linear(F.silu(g) * u, W[p + "mlp.down_proj.weight"], W[p + "mlp.down_proj.bias"])
    x = vnorm(W, "visual.merger.ln_q", x, vc).view(-1, E * smu)
    x = F.linear(F.gelu(F.linear(x, W["visual.merger.mlp.0.weight"], W["visual.merger.mlp.0.bias"])),
                 W["visual.merger.mlp.2.weight"], W["visual.merger.mlp.2.bias"])
    return x[torch.argsort(window_index)]


def get_rope_index(cfg, ids, grid_thw, image_index):
    """One sequence (transformers' loop body, images only): [3, len] positions."""
    sms = cfg["vision_config"]["spatial_merge_size"]
    ids = torch.tensor(ids)
    vs = torch.argwhere(ids == cfg["vision_start_token_id"]).squeeze(1)
    image_nums = int((ids[vs + 1] == cfg["image_token_id"]).sum())
    toks, lst, st = ids.tolist(), [], 0
    for _ in range(image_nums):
        ed = toks.index(cfg["image_token_id"], st)
        t, h, w = grid_thw[image_index]
        image_index += 1
        lt, lh, lw = t, h // sms, w // sms
        text_len = ed - st
        st_idx = lst[-1].max() + 1 if lst else 0
        lst.append(torch.arange(text_len).view(1, -1).expand(3, -1) + st_idx)
        if is_q2(cfg["vision_config"]):  # Qwen2-VL: arange(t) (an image has t = 1)
            t_index = torch.arange(lt).view(-1, 1).expand(-1, lh * lw).flatten()
        else:
            t_index = (torch.arange(lt).view(-1, 1).expand(-1, lh * lw) * 0 * cfg["vision_config"]["tokens_per_second"]).long().flatten()
        h_index = torch.arange(lh).view(1, -1, 1).expand(lt, -1, lw).flatten()
        w_index = torch.arange(lw).view(1, 1, -1).expand(lt, lh, -1).flatten()
        lst.append(torch.stack([t_index, h_index, w_index]) + text_len + st_idx)
        st = ed + lt * lh * lw
    if st < len(toks):
        st_idx = lst[-1].max() + 1 if lst else 0
        lst.append(torch.arange(len(toks) - st).view(1, -1).expand(3, -1) + st_idx)
    return torch.cat(lst, dim=1), image_index


def vl_logprobs(W, cfg, seqs, pixel_values, grid_thw):
    D, Hq, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = D // Hq
    img = vision_tower(W, cfg["vision_config"], pixel_values, grid_thw)
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    sec = cfg["rope_scaling"]["mrope_section"] * 2
    out, used, image_index = [], 0, 0
    for ids in seqs:
        T = len(ids)
        x = W["model.embed_tokens.weight"][torch.tensor(ids)]
        mask = torch.tensor(ids) == cfg["image_token_id"]
        k_img = int(mask.sum())
        x = x.masked_scatter(mask.unsqueeze(-1).expand_as(x), img[used:used + k_img])
        used += k_img
        pos, image_index = get_rope_index(cfg, ids, grid_thw, image_index)
        freqs = (inv_freq[None, :, None].float() @ pos[:, None, :].float()).transpose(1, 2)  # [3, T, hd/2] fp32
        emb = torch.cat((freqs, freqs), dim=-1)
        cos3, sin3 = emb.cos().to(DT), emb.sin().to(DT)
        cos = torch.cat([m[i % 3] for i, m in enumerate(cos3.split(sec, dim=-1))], dim=-1)
        sin = torch.cat([m[i % 3] for i, m in enumerate(sin3.split(sec, dim=-1))], dim=-1)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        for l in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = rmsnorm(x, W[p + "input_layernorm.weight"], cfg["rms_norm_eps"])
            q = F.linear(h, W[p + "self_attn.q_proj.weight"], W[p + "self_attn.q_proj.bias"]).view(T, Hq, hd).transpose(0, 1)
            k = F.linear(h, W[p + "self_attn.k_proj.weight"], W[p + "self_attn.k_proj.bias"]).view(T, Hkv, hd).transpose(0, 1)
            v = F.linear(h, W[p + "self_attn.v_proj.weight"], W[p + "self_attn.v_proj.bias"]).view(T, Hkv, hd).transpose(0, 1)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            k, v = k.repeat_interleave(Hq // Hkv, 0), v.repeat_interleave(Hq // Hkv, 0)
            s = (q @ k.transpose(1, 2)) / hd ** 0.5
            a = torch.softmax(s.masked_fill(~causal, float("-inf")), -1) @ v
            x = x + F.linear(a.transpose(0, 1).reshape(T, -1), W[p + "self_attn.o_proj.weight"])
            h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], cfg["rms_norm_eps"])
            x = x + F.linear(F.silu(F.linear(h, W[p + "mlp.gate_proj.weight"])) * F.linear(h, W[p + "mlp.up_proj.weight"]),
                             W[p + "mlp.down_proj.weight"])
        x = rmsnorm(x, W["model.norm.weight"], cfg["rms_norm_eps"])
        lp = torch.log_softmax(F.linear(x, W["lm_head.weight"]), -1)
        tgt = torch.tensor(ids[1:] + [0])
        keep = torch.tensor([t != cfg["image_token_id"] for t in ids[1:]] + [False])
        out.append(torch.where(keep, lp.gather(1, tgt[:, None])[:, 0], torch.zeros(T, dtype=DT)))
    assert used == img.shape[0]
    return img, torch.cat(out)


def hf_names(cfg):
    """The state-dict names transformers' Qwen2VLForConditionalGeneration saves (tied: no lm_head)."""
    vc, n = cfg["vision_config"], ["visual.patch_embed.proj.weight", "model.embed_tokens.weight", "model.norm.weight"]
    for i in range(vc["depth"]):
        for m in ["norm1", "norm2", "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"]:
            n += [f"visual.blocks.{i}.{m}.weight", f"visual.blocks.{i}.{m}.bias"]
    n += [f"visual.merger.{m}.{w}" for m in ["ln_q", "mlp.0", "mlp.2"] for w in ["weight", "bias"]]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        n += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight", p + "self_attn.o_proj.weight"]
        n += [p + f"self_attn.{x}_proj.{w}" for x in "qkv" for w in ["weight", "bias"]]
        n += [p + f"mlp.{x}_proj.weight" for x in ["gate", "up", "down"]]
    return sorted(n + ([] if cfg.get("tie_word_embeddings") else ["lm_head.weight"]))


def check(arch):
    tmp = tempfile.mkdtemp(prefix="temper_vl_")
    q2 = arch == "qwen2_vl"
    name = "Qwen2-VL" if q2 else "Qwen2.5-VL"
    try:
        mdir = os.path.join(tmp, "m")
        run([TEMPER, "init", "--arch", arch, "--preset", "tiny", "--out", mdir, "--seed", "3", "--quiet"])
        cfg = json.load(open(os.path.join(mdir, "config.json")))
        vc = cfg["vision_config"]
        W32 = R.read_model_tensors(mdir)
        keys = sorted(W32)
        width = vc["embed_dim" if q2 else "hidden_size"]
        report("visual.patch_embed.proj.weight" in W32 and list(W32["visual.patch_embed.proj.weight"].shape) == [width, 3, 2, 14, 14]
               and "model.layers.0.self_attn.q_proj.weight" in W32 and "lm_head.weight" in W32 and "visual.merger.mlp.2.bias" in W32,
               f"{name}: init writes transformers' checkpoint names (visual.*, model.layers.*, lm_head), Conv3d weight 5-D",
               f"{len(keys)} tensors")
        if q2:
            want = hf_names(cfg)
            report(keys == want and cfg["architectures"] == ["Qwen2VLForConditionalGeneration"] and cfg["model_type"] == "qwen2_vl"
                   and vc["hidden_size"] == cfg["hidden_size"] and vc["hidden_act"] == "quick_gelu"
                   and int(vc["embed_dim"] * vc["mlp_ratio"]) == W32["visual.blocks.0.mlp.fc1.weight"].shape[0]
                   and "window_size" not in vc and "fullatt_block_indexes" not in vc,
                   "Qwen2-VL: exactly Qwen2VLForConditionalGeneration's tensor names, and Qwen2VLVisionConfig's fields",
                   f"{len(keys)} vs {len(want)}: extra {sorted(set(keys) - set(want))[:3]} missing {sorted(set(want) - set(keys))[:3]}")
        g = torch.Generator().manual_seed(7)
        for k in keys:  # norms off 1 and biases off 0, so that a forward ignoring them fails; larger weights in the tower
            t = W32[k]
            if "norm" in k or "ln_q" in k:
                W32[k] = 1 + 0.2 * torch.randn(t.shape, generator=g)
            elif k.startswith("visual."):
                W32[k] = 0.08 * torch.randn(t.shape, generator=g)
            elif "q_proj.weight" in k or "k_proj.weight" in k:  # peaked attention, so that positions (M-RoPE) matter
                W32[k] = 0.15 * torch.randn(t.shape, generator=g)
            elif k.endswith(".bias"):
                W32[k] = 0.05 * torch.randn(t.shape, generator=g)
        R.write_model_dir(mdir, cfg, W32)
        grid = [(1, 4, 6), (1, 6, 10)]
        npatch = sum(t * h * w for t, h, w in grid)
        pix = torch.randn(npatch, 3 * 2 * 14 * 14, generator=g)
        R.write_safetensors(os.path.join(tmp, "img.safetensors"),
                            {"pixel_values": pix, "image_grid_thw": torch.tensor(grid, dtype=torch.float32)})
        V = cfg["vocab_size"]
        vs, ve, pad = cfg["vision_start_token_id"], cfg["vision_end_token_id"], cfg["image_token_id"]
        seqs = [[11, 12, vs] + [pad] * 6 + [ve, 13, 14, 15],
                [21, vs] + [pad] * 15 + [ve, 22, 23, 24, 25],
                [31, 32, 33, 34, 35, 36]]
        assert all(t < V for s in seqs for t in s)
        with open(os.path.join(tmp, "t.json"), "w") as f:
            json.dump({"sequences": seqs}, f)
        out = os.path.join(tmp, "c.safetensors")
        run([os.path.join(TOOLS, "vl_dump"), "--model", mdir, "--tokens", os.path.join(tmp, "t.json"),
             "--images", os.path.join(tmp, "img.safetensors"), "--out", out])
        C, _ = R.read_safetensors(out)

        W = {k: v.to(DT).requires_grad_(True) for k, v in W32.items()}
        img, lp = vl_logprobs(W, cfg, seqs, pix.to(DT), grid)
        n = sum(1 for s in seqs for t in s[1:] if t != pad)
        loss = -lp.sum() / n
        loss.backward()
        r = rel(C["vision_out"], img.detach())
        report(r < TOL, f"{name}: vision tower output (" + ("LayerNorm, QuickGELU MLP, full attention in every block, LayerNorm merger)" if q2 else
               "windows cut at the edge, full attention at blocks 1 and 3, merger)"), f"rel {r:.2e}")
        r = rel(C["logprobs"], lp.detach())
        report(r < TOL, f"{name}: whole-model log-probs (image embeddings over the pads, M-RoPE, packed)", f"rel {r:.2e}")
        r = rel(C["loss"], loss.detach().reshape(1))
        report(r < TOL, f"{name}: loss", f"rel {r:.2e}")
        worst, wname, missing = 0.0, "", []
        for k in keys:
            if "grad." + k not in C:
                missing.append(k)
                continue
            rr = rel(C["grad." + k], W[k].grad)
            if rr > worst:
                worst, wname = rr, k
        report(not missing and worst < TOL, f"{name}: gradients of all {len(keys)} parameters (tower and language model)",
               f"worst rel {worst:.2e} ({wname})" + (f"; missing {missing[:3]}" if missing else ""))
        shown = (["visual.blocks.0.norm1.bias", "visual.blocks.1.mlp.fc1.bias", "visual.blocks.3.mlp.fc2.weight", "visual.merger.ln_q.bias"]
                 if q2 else ["visual.blocks.1.mlp.gate_proj.bias"])
        for k in ["visual.patch_embed.proj.weight", "visual.blocks.0.attn.qkv.weight", "visual.merger.ln_q.weight",
                  "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"] + shown:
            rr = rel(C["grad." + k], W[k].grad)
            report(rr < TOL, f"{name}: gradient {k}", f"rel {rr:.2e}")

        out2 = os.path.join(tmp, "c2.safetensors")
        run([os.path.join(TOOLS, "vl_dump"), "--model", mdir, "--tokens", os.path.join(tmp, "t.json"),
             "--images", os.path.join(tmp, "img.safetensors"), "--out", out2, "--freeze-vision-tower"])
        C2, _ = R.read_safetensors(out2)
        vis_grads = [k for k in C2 if k.startswith("grad.visual.")]
        worst = max(rel(C2["grad." + k], W[k].grad) for k in keys if not k.startswith("visual."))
        report(not vis_grads and worst < TOL, f"{name}: --freeze-vision-tower: no tower gradients, the same language-model gradients",
               f"{len(vis_grads)} tower grads, worst LM rel {worst:.2e}")

        # transformers >= 4.52's internal names, as some tools save them
        adir = os.path.join(tmp, "alt")
        alt = {("model." + k if k.startswith("visual.") else k.replace("model.", "model.language_model.", 1)
                if k.startswith("model.") else k): v for k, v in W32.items()}
        # and the config as transformers >= 4.52 writes it: the language model's fields under
        # text_config (rope_scaling, token ids too), the vision ids and vision_config at the root
        text_keys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
                     "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling", "hidden_act",
                     "tie_word_embeddings", "use_sliding_window"]
        ncfg = {k: v for k, v in cfg.items() if k not in text_keys}
        ncfg["text_config"] = {k: cfg[k] for k in text_keys if k in cfg}
        ncfg["text_config"]["model_type"] = arch + "_text"
        ncfg["vision_config"] = dict(cfg["vision_config"], in_channels=3)
        del ncfg["vision_config"]["in_chans"]
        R.write_model_dir(adir, ncfg, alt, shards=2)
        out3 = os.path.join(tmp, "c3.safetensors")
        run([os.path.join(TOOLS, "vl_dump"), "--model", adir, "--tokens", os.path.join(tmp, "t.json"),
             "--images", os.path.join(tmp, "img.safetensors"), "--out", out3])
        C3, _ = R.read_safetensors(out3)
        report(torch.equal(C3["logprobs"], C["logprobs"]), f"{name}: loads model.language_model.* / model.visual.* names (sharded) and a nested text_config to the same log-probs")
        if q2:
            # save -> load: one sft step at learning rate 0 reads the directory and writes it back
            with open(os.path.join(tmp, "sft.jsonl"), "w") as f:
                f.write(json.dumps({"prompt_input_ids": [11, 12, 13], "completion_input_ids": [14, 15]}) + "\n")
            odir = os.path.join(tmp, "rt")
            run([TEMPER, "sft", "--model", mdir, "--data", os.path.join(tmp, "sft.jsonl"), "--output-dir", odir, "--max-steps", "1",
                 "--learning-rate", "0", "--quiet"])
            W2, c2 = R.read_model_tensors(odir), json.load(open(os.path.join(odir, "config.json")))
            same = sorted(W2) == keys and all(torch.equal(W2[k], W32[k]) for k in keys)
            report(same and c2["architectures"] == cfg["architectures"] and c2["vision_config"] == cfg["vision_config"]
                   and c2["rope_scaling"] == cfg["rope_scaling"],
                   "Qwen2-VL: save -> load round trip: the same names, the same tensors bit for bit, the same config",
                   f"names {sorted(W2) == keys}, tensors {same}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    check("qwen2_5_vl")
    check("qwen2_vl")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        report(False, "test_vl", repr(e))
    print(f"# {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
