"""PyTorch reference for temper: the oracle of the parity tests and the eager baseline
of `make bench`.

A from-scratch reimplementation (no `transformers`, no `safetensors` package) of
Hugging Face's LlamaForCausalLM, Qwen2ForCausalLM (q/k/v bias), Qwen3ForCausalLM
(per-head q/k RMSNorm) and Gemma3ForCausalLM (transformers' modeling_gemma3.py: RMSNorm
scaled by 1 + weight, four norms per layer, GELU-tanh gated MLP, embeddings times
sqrt(hidden_size), scores scaled by query_pre_attn_scalar^-0.5, sliding-window layers
with their own RoPE base), loading an HF model directory. Parameter names of the
nn.Module are exactly the HF tensor names, so `dict(model.named_parameters())` can be
compared key by key with what temper writes.

Run directly (`/usr/bin/python3 tests/oracle/torch_ref.py`) for its self-tests; they
print TAP-like "ok - ..." lines. The same checks are run by test_parity.py.

Also a small command line that emulates the C side's contract, so that temper's
output can be diffed against it by hand:
    torch_ref.py init --arch llama --preset tiny --out DIR [--seed S] [--tie-word-embeddings]
    torch_ref.py grad-dump --model DIR --tokens T.json --out D.safetensors [--dtype float32]
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# safetensors, read and written by hand
# ---------------------------------------------------------------------------

_NP_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"), "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_ELEM_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4,
              "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


class SafetensorsError(ValueError):
    pass


def read_safetensors_header(f, path="<file>"):
    """Returns (header dict without __metadata__, metadata or None, data start offset)."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    head = f.read(8)
    if len(head) < 8:
        raise SafetensorsError(f"{path}: truncated (no 8-byte header length)")
    (n,) = struct.unpack("<Q", head)
    if 8 + n > size:
        raise SafetensorsError(f"{path}: header length {n} runs past end of file ({size} bytes)")
    header = json.loads(f.read(n).decode("utf-8"))
    meta = header.pop("__metadata__", None)
    data_size = size - 8 - n
    for name, info in header.items():
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in _ELEM_SIZE:
            raise SafetensorsError(f"{path}: tensor {name}: unsupported dtype {dt}")
        if not (0 <= b <= e <= data_size):
            raise SafetensorsError(f"{path}: tensor {name}: offsets [{b},{e}] outside data ({data_size} bytes)")
        if e - b != math.prod(shape) * _ELEM_SIZE[dt]:
            raise SafetensorsError(f"{path}: tensor {name}: {e - b} bytes for shape {shape} {dt}")
    return header, meta, 8 + n


def _decode(raw, dt, shape):
    """bytes -> torch tensor. BF16 becomes float32 exactly (bf16 is the top half of f32)."""
    if dt == "BF16":
        u16 = np.frombuffer(raw, dtype="<u2")
        arr = (u16.astype("<u4") << 16).view("<f4")
    else:
        arr = np.frombuffer(raw, dtype=_NP_DTYPES[dt]).astype(_NP_DTYPES[dt].newbyteorder("="))
    return torch.from_numpy(np.array(arr, copy=True).reshape(shape))


def read_safetensors(path, names=None, dtype=None):
    """Reads tensors (all, or `names`) one by one (no whole-file copy, so the benchmark's
    peak RSS is the model, not the file twice). Returns ({name: tensor}, metadata).
    With `dtype`, each tensor is converted as it is read."""
    out = {}
    with open(path, "rb") as f:
        header, meta, base = read_safetensors_header(f, path)
        for name, info in header.items():
            if names is not None and name not in names:
                continue
            b, e = info["data_offsets"]
            f.seek(base + b)
            raw = f.read(e - b)
            t = _decode(raw, info["dtype"], info["shape"])
            del raw
            out[name] = t.to(dtype) if dtype is not None else t
    return out, meta


def _encode(t, dt):
    t = t.detach().cpu().contiguous()
    if dt == "BF16":
        # round to nearest even, like torch's float->bfloat16
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    if dt == "F16":
        return t.to(torch.float16).numpy().astype("<f2").tobytes()
    if dt == "F32":
        return t.to(torch.float32).numpy().astype("<f4").tobytes()
    if dt == "F64":
        return t.to(torch.float64).numpy().astype("<f8").tobytes()
    if dt == "I64":
        return t.to(torch.int64).numpy().astype("<i8").tobytes()
    if dt == "I32":
        return t.to(torch.int32).numpy().astype("<i4").tobytes()
    raise SafetensorsError(f"cannot write dtype {dt}")


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: {name: torch tensor}. dtype: one safetensors dtype for all, or a dict
    name -> dtype. Header padded with spaces to 8 bytes, as the reference writer does."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dt = dtype[name] if isinstance(dtype, dict) else dtype
        raw = _encode(tensors[name], dt)
        header[name] = {"dtype": dt, "shape": list(tensors[name].shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def write_model_dir(out_dir, config, tensors, dtype="F32", shards=1):
    """Writes config.json + model.safetensors, or `shards` files
    model-0000i-of-0000n.safetensors + model.safetensors.index.json."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for stale in os.listdir(out_dir):
        if stale.endswith(".safetensors") or stale == "model.safetensors.index.json":
            os.remove(os.path.join(out_dir, stale))
    if shards <= 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype,
                          metadata={"format": "pt"})
        return
    names = sorted(tensors)
    weight_map, total = {}, 0
    for i in range(shards):
        part = names[i::shards]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(os.path.join(out_dir, fname), {n: tensors[n] for n in part}, dtype,
                          metadata={"format": "pt"})
        for n in part:
            weight_map[n] = fname
            dt = dtype[n] if isinstance(dtype, dict) else dtype
            total += tensors[n].numel() * _ELEM_SIZE[dt]
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def read_model_tensors(model_dir, dtype=None):
    """All tensors of a model directory, single-file or sharded."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        files = {}
        for name, fname in weight_map.items():
            files.setdefault(fname, set()).add(name)
        out = {}
        for fname, names in sorted(files.items()):
            got, _ = read_safetensors(os.path.join(model_dir, fname), names, dtype)
            missing = names - set(got)
            if missing:
                raise SafetensorsError(f"{fname}: index lists {sorted(missing)[0]} but the file lacks it")
            out.update(got)
        return out
    out, _ = read_safetensors(os.path.join(model_dir, "model.safetensors"), None, dtype)
    return out


# ---------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------

ARCHS = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3",
         "Gemma3ForCausalLM": "gemma3"}
MODEL_TYPES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma3_text": "gemma3"}


class Config:
    def __init__(self, d):
        self.raw = d
        archs = d.get("architectures") or []
        if archs:
            if archs[0] not in ARCHS:
                raise ValueError(f"config.json: unsupported architecture {archs[0]}")
            self.arch = ARCHS[archs[0]]
        elif d.get("model_type") in MODEL_TYPES:
            self.arch = MODEL_TYPES[d["model_type"]]
        else:
            raise ValueError(f"config.json: unknown model_type {d.get('model_type')}")
        self.hidden_size = int(d["hidden_size"])
        self.num_hidden_layers = int(d["num_hidden_layers"])
        self.num_attention_heads = int(d["num_attention_heads"])
        self.num_key_value_heads = int(d.get("num_key_value_heads") or self.num_attention_heads)
        # NB: HF's Qwen3Config defaults head_dim to 128 when absent; temper's writer
        # always writes head_dim, and here an absent one means hidden/heads (Llama, Qwen2).
        gemma = self.arch == "gemma3"
        # Gemma3TextConfig's head_dim defaults to 256 (independent of hidden / heads)
        self.head_dim = int(d.get("head_dim") or (256 if gemma else self.hidden_size // self.num_attention_heads))
        self.intermediate_size = int(d["intermediate_size"])
        self.vocab_size = int(d["vocab_size"])
        self.rms_norm_eps = float(d.get("rms_norm_eps", 1e-6))
        self.rope_theta = float(d.get("rope_theta", 1e6 if gemma else 10000.0))
        self.rope_scaling = d.get("rope_scaling")
        self.tie_word_embeddings = bool(d.get("tie_word_embeddings", gemma))
        act = d.get("hidden_activation", "gelu_pytorch_tanh") if gemma else d.get("hidden_act", "silu")
        if act not in ("silu", "gelu_pytorch_tanh"):
            raise ValueError(f"config.json: unsupported activation {act}")
        self.act = act
        self.gemma = gemma
        # Gemma 3: which layers slide (layer_types, or every sliding_window_pattern-th is full)
        self.sliding_window = int(d.get("sliding_window") or 4096) if gemma else 0
        pattern = int(d.get("sliding_window_pattern", 6))
        self.layer_types = d.get("layer_types") or [
            "sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(self.num_hidden_layers)]
        if not gemma:
            self.layer_types = ["full_attention"] * self.num_hidden_layers
        self.rope_local_base_freq = float(d.get("rope_local_base_freq", 10000.0))
        self.query_pre_attn_scalar = float(d.get("query_pre_attn_scalar", 256)) if gemma else float(self.head_dim)
        for k in ("attn_logit_softcapping", "final_logit_softcapping"):
            if d.get(k) is not None:
                raise ValueError(f"config.json: {k} is not implemented")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("config.json: num_attention_heads not a multiple of num_key_value_heads")
        if d.get("use_sliding_window"):
            raise ValueError("config.json: use_sliding_window is not supported")
        # Biases exactly as HF: Qwen2 always has q/k/v bias (no o bias); Llama and Qwen3
        # follow `attention_bias` for all of q/k/v/o.
        if self.arch == "qwen2":
            self.qkv_bias, self.o_bias = True, False
        else:
            ab = bool(d.get("attention_bias", False))
            self.qkv_bias, self.o_bias = ab, ab
        self.mlp_bias = bool(d.get("mlp_bias", False)) if self.arch == "llama" else False
        self.qk_norm = self.arch in ("qwen3", "gemma3")

    @staticmethod
    def load(model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            return Config(json.load(f))


# ---------------------------------------------------------------------------
# RoPE
# ---------------------------------------------------------------------------

def llama3_inv_freq(inv_freq, rope_scaling):
    """HF transformers' _compute_llama3_parameters, operation for operation."""
    factor = rope_scaling["factor"]
    low_freq_factor = rope_scaling["low_freq_factor"]
    high_freq_factor = rope_scaling["high_freq_factor"]
    old_context_len = rope_scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def rope_inv_freq(cfg, dtype=torch.float64):
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).to(dtype) / d))
    rs = cfg.rope_scaling
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "llama3":
            inv_freq = llama3_inv_freq(inv_freq, rs)
        elif kind == "linear":
            inv_freq = inv_freq / rs["factor"]  # transformers' _compute_linear_scaling_rope_parameters
        elif kind not in (None, "default"):
            raise ValueError(f"config.json: unsupported rope_scaling type {kind}")
    return inv_freq


def rope_inv_freq_local(cfg, dtype=torch.float64):
    """Gemma 3's sliding layers: base rope_local_base_freq, rope_type default (no scaling)."""
    d = cfg.head_dim
    return 1.0 / (cfg.rope_local_base_freq ** (torch.arange(0, d, 2, dtype=torch.int64).to(dtype) / d))


def rope_cos_sin(inv_freq, position_ids, dtype):
    """position_ids [B,T] -> cos, sin [B,T,head_dim] (HF: emb = cat(freqs, freqs))."""
    freqs = position_ids[..., None].to(inv_freq.dtype) * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin):
    """x [B,H,T,hd], cos/sin [B,T,hd]."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return x * cos + rotate_half(x) * sin


# ---------------------------------------------------------------------------
# the model (module tree mirrors HF so named_parameters() are HF tensor names)
# ---------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, n, eps, gemma=False):
        super().__init__()
        # Gemma3RMSNorm: the scale is 1 + weight, weight initialized to 0
        self.weight = nn.Parameter(torch.zeros(n) if gemma else torch.ones(n))
        self.eps = eps
        self.offset = 1.0 if gemma else 0.0

    def forward(self, x):
        # HF upcasts to fp32 here; we stay in the model's dtype (fp64 oracle / fp32 bench).
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * (self.offset + self.weight)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, H, KV, hd = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.H, self.KV, self.hd = H, KV, hd
        self.q_proj = nn.Linear(D, H * hd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(D, KV * hd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(D, KV * hd, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(H * hd, D, bias=cfg.o_bias)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(hd, cfg.rms_norm_eps, cfg.gemma)
            self.k_norm = RMSNorm(hd, cfg.rms_norm_eps, cfg.gemma)
        self.qk_norm = cfg.qk_norm
        self.scaling = cfg.query_pre_attn_scalar ** -0.5  # = head_dim ** -0.5 but for Gemma

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.hd)
        k = self.k_proj(x).view(B, T, self.KV, self.hd)
        v = self.v_proj(x).view(B, T, self.KV, self.hd)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # HF repeat_kv: query head h reads kv head h // (H/KV)
        rep = self.H // self.KV
        if rep > 1:
            k = k[:, :, None].expand(B, self.KV, rep, T, self.hd).reshape(B, self.H, T, self.hd)
            v = v[:, :, None].expand(B, self.KV, rep, T, self.hd).reshape(B, self.H, T, self.hd)
        att = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        att = att + mask
        att = F.softmax(att, dim=-1)
        o = torch.matmul(att, v).transpose(1, 2).reshape(B, T, self.H * self.hd)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, I, b = cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias
        self.gate_proj = nn.Linear(D, I, bias=b)
        self.up_proj = nn.Linear(D, I, bias=b)
        self.down_proj = nn.Linear(I, D, bias=b)

        self.gelu = cfg.act == "gelu_pytorch_tanh"

    def forward(self, x):
        g = self.gate_proj(x)
        act = F.gelu(g, approximate="tanh") if self.gelu else F.silu(g)
        return self.down_proj(act * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, eps, g = cfg.hidden_size, cfg.rms_norm_eps, cfg.gemma
        self.input_layernorm = RMSNorm(D, eps, g)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(D, eps, g)
        self.mlp = MLP(cfg)
        self.gemma = g
        if g:  # Gemma3DecoderLayer: post_attention_layernorm normalizes the attention output
            self.pre_feedforward_layernorm = RMSNorm(D, eps, g)
            self.post_feedforward_layernorm = RMSNorm(D, eps, g)

    def forward(self, x, cos, sin, mask):
        if self.gemma:
            x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), cos, sin, mask))
            return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg.gemma)


class CausalLM(nn.Module):
    """forward(input_ids [B,T], position_ids [B,T], mask additive [B,1,T,T]) -> logits [B,T,V]."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        if not cfg.tie_word_embeddings:
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.inv_freq = rope_inv_freq(cfg, torch.float64)  # plain attribute, not a parameter
        self.inv_freq_local = rope_inv_freq_local(cfg, torch.float64)

    def lm_head_weight(self):
        return self.model.embed_tokens.weight if self.cfg.tie_word_embeddings else self.lm_head.weight

    def hidden(self, input_ids, position_ids, mask):
        """mask: additive [B,1,T,T] of the full-attention layers; the sliding layers' mask
        is derived from it and the positions (key j visible iff pos_i - pos_j < window,
        transformers' sliding_window_overlay kv_idx > q_idx - window)."""
        dtype = self.model.embed_tokens.weight.dtype
        x = self.model.embed_tokens(input_ids)
        if self.cfg.gemma:
            # Gemma3TextScaledWordEmbedding: torch.tensor(sqrt(D)) (fp32) cast to the weights' dtype
            x = x * torch.tensor(self.cfg.hidden_size ** 0.5).to(dtype)
        # cos/sin computed in fp64 then cast (HF computes them in fp32)
        cos, sin = rope_cos_sin(self.inv_freq, position_ids, dtype)
        cos_l, sin_l = rope_cos_sin(self.inv_freq_local, position_ids, dtype)
        mask_l = mask
        if "sliding_attention" in self.cfg.layer_types:
            near = (position_ids[:, :, None] - position_ids[:, None, :]) < self.cfg.sliding_window
            mask_l = mask.masked_fill(~near[:, None], torch.finfo(dtype).min)
        for layer, kind in zip(self.model.layers, self.cfg.layer_types):
            if kind == "sliding_attention":
                x = layer(x, cos_l, sin_l, mask_l)
            else:
                x = layer(x, cos, sin, mask)
        return self.model.norm(x)

    def forward(self, input_ids, position_ids, mask):
        return F.linear(self.hidden(input_ids, position_ids, mask), self.lm_head_weight())


def additive_mask(allowed, dtype):
    """bool [B,T,T] (True = may attend) -> additive [B,1,T,T] with finfo.min, as HF."""
    m = torch.zeros(allowed.shape, dtype=dtype)
    m.masked_fill_(~allowed, torch.finfo(dtype).min)
    return m[:, None]


def causal_mask(B, T, dtype):
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    return additive_mask(allowed.expand(B, T, T), dtype)


def packed_inputs(seq_lens):
    """One packed row: position ids restarting at 0 per sequence, block-diagonal causal mask
    (bool [1,N,N]) and target mask (False at each sequence's last token)."""
    seq_id = torch.cat([torch.full((n,), i, dtype=torch.int64) for i, n in enumerate(seq_lens)])
    pos = torch.cat([torch.arange(n, dtype=torch.int64) for n in seq_lens])
    N = len(seq_id)
    idx = torch.arange(N)
    allowed = (seq_id[:, None] == seq_id[None, :]) & (idx[None, :] <= idx[:, None])
    has_target = torch.ones(N, dtype=torch.bool)
    ends = torch.cumsum(torch.tensor(seq_lens), 0) - 1
    has_target[ends] = False
    return pos[None], allowed[None], has_target


def load_model(model_dir, dtype=torch.float64):
    """Builds the model from config.json and loads every tensor (strict: a missing,
    misshapen or unexpected tensor is an error naming it)."""
    cfg = Config.load(model_dir)
    model = CausalLM(cfg)
    tensors = read_model_tensors(model_dir, dtype)
    params = dict(model.named_parameters())
    for name, p in params.items():
        if name not in tensors:
            raise ValueError(f"{model_dir}: missing tensor {name}")
        t = tensors.pop(name)
        if tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"{model_dir}: tensor {name} has shape {list(t.shape)}, config says {list(p.shape)}")
        p.data = t
    for name in list(tensors):
        # tied checkpoints sometimes carry lm_head.weight anyway; old ones carry inv_freq
        if (name == "lm_head.weight" and cfg.tie_word_embeddings) or name.endswith("rotary_emb.inv_freq"):
            tensors.pop(name)
    if tensors:
        raise ValueError(f"{model_dir}: unexpected tensor {sorted(tensors)[0]}")
    return model.to(dtype)


def token_logprobs(model, tokens, seq_lens, temperature=1.0, with_entropy=False):
    """tokens: 1-D ints, the packed row. Returns (logprobs [N], has_target [N] bool):
    logprobs[t] = log p(tokens[t+1] | sequence prefix up to t), 0 where no target.
    At a sampling temperature T the distribution is softmax(logits / T), as TRL's
    _get_per_token_logps_and_entropies (logits /= temperature, then log-softmax; entropy
    of the same). with_entropy: returns (logprobs, has_target, entropy [N], 0 where no target)."""
    tokens = torch.as_tensor(tokens, dtype=torch.int64)
    assert tokens.numel() == sum(seq_lens)
    pos, allowed, has_target = packed_inputs(seq_lens)
    dtype = model.model.embed_tokens.weight.dtype
    logits = model(tokens[None], pos, additive_mask(allowed, dtype))[0]
    logp = F.log_softmax(logits / temperature, dim=-1)
    targets = torch.roll(tokens, -1)
    targets = torch.where(has_target, targets, torch.zeros_like(targets))
    lp = logp.gather(1, targets[:, None])[:, 0]
    lp = torch.where(has_target, lp, torch.zeros_like(lp))
    if not with_entropy:
        return lp, has_target
    ent = -(logp.exp() * logp).sum(-1)
    return lp, has_target, torch.where(has_target, ent, torch.zeros_like(ent))


def decay_mask(name, p):
    """Weight decay only for matrices (ndim >= 2): never norms or biases."""
    return p.dim() >= 2


def adamw_step(params, grads, lr, weight_decay, beta1, beta2, eps):
    """One torch.optim.AdamW step from fresh state. params, grads: {name: tensor}.
    Returns {name: new value}."""
    leaves = {n: params[n].detach().clone().requires_grad_(True) for n in params}
    for n, p in leaves.items():
        p.grad = grads[n].detach().clone().to(p.dtype)
    decay = [p for n, p in leaves.items() if decay_mask(n, p)]
    no_decay = [p for n, p in leaves.items() if not decay_mask(n, p)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(beta1, beta2), eps=eps)
    opt.step()
    return {n: p.detach() for n, p in leaves.items()}


def reference_dump(model_dir, sequences, lr=1e-3, weight_decay=0.1, beta1=0.9, beta2=0.999,
                   eps=1e-8, dtype=torch.float64, temperature=1.0, entropy_coef=0.0, value_coef=0.0):
    """What grad_dump writes, computed in `dtype`: {"logprobs": [N], "loss": [1],
    "grad.<name>", "step.<name>"}, plus "param.<name>" (the loaded values). With a
    temperature T the log-probs are of softmax(logits / T); with entropy_coef c != 0 the
    loss is (-sum logp + c * sum entropy) / (number of targets) and "entropy" [N] is added.
    With value_coef v != 0, PPO's shared value head V_t = u . h_t on the final hidden state
    (the lm-head's input before / T; u_j = ((7j mod 11) - 5) / 8) adds v * sum V / (number of
    targets) to the loss and "values" [N] to the output."""
    model = load_model(model_dir, dtype)
    seq_lens = [len(s) for s in sequences]
    tokens = [t for s in sequences for t in s]
    lp, has_target, ent = token_logprobs(model, tokens, seq_lens, temperature, with_entropy=True)
    loss = (-lp.sum() + entropy_coef * ent.sum()) / has_target.sum()
    if value_coef != 0:
        pos, allowed, _ = packed_inputs(seq_lens)
        h = model.hidden(torch.as_tensor(tokens, dtype=torch.int64)[None], pos,
                         additive_mask(allowed, model.model.embed_tokens.weight.dtype))[0]
        u = torch.tensor([((j * 7) % 11 - 5) / 8 for j in range(h.shape[-1])], dtype=h.dtype)
        values = h @ u
        loss = loss + value_coef * values.sum() / has_target.sum()
    loss.backward()
    named = dict(model.named_parameters())
    out = {"logprobs": lp.detach(), "loss": loss.detach().reshape(1)}
    if entropy_coef != 0:
        out["entropy"] = ent.detach()
    if value_coef != 0:
        out["values"] = values.detach()
    for n, p in named.items():
        out["param." + n] = p.detach().clone()
        out["grad." + n] = p.grad.detach().clone()
    stepped = adamw_step({n: p.detach() for n, p in named.items()},
                         {n: p.grad for n, p in named.items()}, lr, weight_decay, beta1, beta2, eps)
    for n, v in stepped.items():
        out["step." + n] = v
    return out


# ---------------------------------------------------------------------------
# random model directories (the same shapes `temper init` writes)
# ---------------------------------------------------------------------------

PRESETS = {
    "tiny": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=768, vocab_size=8192),
    "small": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                  intermediate_size=2048, vocab_size=32000),
}


def make_config(arch, preset="tiny", tie=False, **over):
    p = dict(PRESETS[preset]) if isinstance(preset, str) else dict(preset)
    p.update(over)
    if arch == "gemma3":
        cfg = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
               "hidden_activation": "gelu_pytorch_tanh", "head_dim": p["hidden_size"] // p["num_attention_heads"],
               "rms_norm_eps": 1e-6, "rope_theta": 1e6, "rope_local_base_freq": 10000.0,
               "query_pre_attn_scalar": p["hidden_size"] // p["num_attention_heads"], "sliding_window": 4,
               "sliding_window_pattern": 2, "max_position_embeddings": 2048, "tie_word_embeddings": tie,
               "torch_dtype": "float32", "bos_token_id": 2, "eos_token_id": 1,
               "attn_logit_softcapping": None, "final_logit_softcapping": None}
        cfg.update(p)
        return cfg
    name = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[arch]
    cfg = {"architectures": [name], "model_type": arch, "hidden_act": "silu",
           "head_dim": p["hidden_size"] // p["num_attention_heads"], "rms_norm_eps": 1e-6,
           "rope_theta": 10000.0, "max_position_embeddings": 2048, "tie_word_embeddings": tie,
           "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2}
    cfg.update(p)
    if arch == "qwen3":
        cfg["attention_bias"] = False
    return cfg


def random_tensors(cfg_dict, seed=0, std=0.02, perturb_ones=True):
    """Random weights: N(0, std) matrices; norm weights 1 + N(0, 0.1) and biases N(0, 0.05)
    when perturb_ones (so a forward that ignored them would be caught)."""
    cfg = Config(cfg_dict)
    g = torch.Generator().manual_seed(seed)
    model = CausalLM(cfg)
    out = {}
    for n, p in model.named_parameters():
        if p.dim() >= 2:
            out[n] = torch.randn(p.shape, generator=g) * std
        elif n.endswith("norm.weight"):
            base = torch.zeros(p.shape) if cfg.gemma else torch.ones(p.shape)  # Gemma: scale 1 + weight
            out[n] = base + (torch.randn(p.shape, generator=g) * 0.1 if perturb_ones else 0)
        else:
            out[n] = torch.randn(p.shape, generator=g) * 0.05 if perturb_ones else torch.zeros(p.shape)
    return out


# ---------------------------------------------------------------------------
# self-tests of the oracle itself
# ---------------------------------------------------------------------------

def _rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    den = b.abs().max().item() if b.numel() else 0.0
    num = (a - b).abs().max().item() if b.numel() else 0.0
    return num / den if den > 0 else num


def selftests():
    """Yields (name, ok, detail)."""
    import tempfile
    torch.manual_seed(0)

    # 1. safetensors: hand-made bytes with known values
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        hdr = {"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]},
               "b": {"dtype": "F16", "shape": [1], "data_offsets": [4, 6]},
               "c": {"dtype": "F32", "shape": [], "data_offsets": [6, 10]},
               "__metadata__": {"format": "pt"}}
        hj = json.dumps(hdr).encode()
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", len(hj)) + hj)
            f.write(struct.pack("<HH", 0x3F80, 0xC040))  # bf16 1.0, -3.0
            f.write(struct.pack("<H", 0x3C00))           # f16 1.0
            f.write(struct.pack("<f", 2.5))
        got, meta = read_safetensors(p)
        ok = (got["a"].tolist() == [1.0, -3.0] and got["b"].tolist() == [1.0]
              and got["c"].item() == 2.5 and got["c"].shape == () and meta == {"format": "pt"})
        yield "safetensors reads hand-made BF16/F16/F32 bytes", ok, ""

        # 2. round trip through the writer: F32 exact, BF16/F16 exactly the torch rounding
        ts = {"w": torch.randn(3, 5), "v": torch.randn(7)}
        for dt, conv in (("F32", torch.float32), ("BF16", torch.bfloat16), ("F16", torch.float16)):
            write_safetensors(p, ts, dt)
            got, _ = read_safetensors(p)
            ok = all(torch.equal(got[n], ts[n].to(conv).float()) for n in ts)
            yield f"safetensors round trip {dt}", ok, ""

        # 3. errors are reported, not crashes
        write_safetensors(p, ts, "F32")
        with open(p, "rb") as f:
            data = f.read()
        for what, bad in (("truncated data", data[:-3]), ("header past end", data[:8] + data[8:20]),
                          ("no length", data[:5])):
            with open(p, "wb") as f:
                f.write(bad)
            try:
                read_safetensors(p)
                yield f"safetensors rejects {what}", False, "no error"
            except SafetensorsError as e:
                yield f"safetensors rejects {what}", True, str(e)

        # 4. model dir: sharded BF16 == single-file BF16, and strict loading
        cfg = make_config("qwen2", dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, intermediate_size=24, vocab_size=37))
        ts = random_tensors(cfg, seed=1)
        d1, d2 = os.path.join(d, "one"), os.path.join(d, "sharded")
        write_model_dir(d1, cfg, ts, "BF16")
        write_model_dir(d2, cfg, ts, "BF16", shards=3)
        m1, m2 = load_model(d1), load_model(d2)
        p1, p2 = dict(m1.named_parameters()), dict(m2.named_parameters())
        ok = p1.keys() == p2.keys() == ts.keys() and all(torch.equal(p1[n], p2[n]) for n in p1)
        yield "sharded model directory loads the same tensors", ok, f"{len(p1)} tensors"
        bad = dict(ts)
        del bad["model.layers.1.self_attn.k_proj.bias"]
        write_model_dir(d1, cfg, bad)
        try:
            load_model(d1)
            yield "load_model rejects a missing tensor", False, "no error"
        except ValueError as e:
            yield "load_model rejects a missing tensor", "k_proj.bias" in str(e), str(e)

    # 5. RoPE (HF rotate_half) == rotation of complex pairs (x[i], x[i+d/2]) by pos*inv_freq[i]
    cfg = Config(make_config("llama", dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                           num_key_value_heads=2, intermediate_size=8, vocab_size=8),
                             rope_theta=500000.0))
    inv = rope_inv_freq(cfg)
    pos = torch.tensor([[0, 1, 2, 7, 100, 4097]])
    x = torch.randn(1, 2, pos.shape[1], cfg.head_dim, dtype=torch.float64)
    cos, sin = rope_cos_sin(inv, pos, torch.float64)
    y = apply_rope(x, cos, sin)
    h = cfg.head_dim // 2
    z = torch.complex(x[..., :h], x[..., h:]) * torch.polar(torch.ones(1, dtype=torch.float64),
                                                            pos[0, :, None].double() * inv)
    yc = torch.cat([z.real, z.imag], -1)
    yield "rope rotate_half == complex rotation", _rel(y, yc) < 1e-12, f"rel {_rel(y, yc):.1e}"

    # 6. llama3 rope scaling == Meta's scalar reference (llama3 repo apply_scaling)
    rs = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}
    for theta, hd, rsx in ((500000.0, 128, rs), (10000.0, 64, dict(rs, original_max_position_embeddings=16))):
        base = 1.0 / (theta ** (torch.arange(0, hd, 2).double() / hd))
        ref = []
        lo = rsx["original_max_position_embeddings"] / rsx["low_freq_factor"]
        hi = rsx["original_max_position_embeddings"] / rsx["high_freq_factor"]
        kinds = set()
        for fr in base.tolist():
            wl = 2 * math.pi / fr
            if wl < hi:
                ref.append(fr); kinds.add("high")
            elif wl > lo:
                ref.append(fr / rsx["factor"]); kinds.add("low")
            else:
                s = (rsx["original_max_position_embeddings"] / wl - rsx["low_freq_factor"]) / (
                    rsx["high_freq_factor"] - rsx["low_freq_factor"])
                ref.append((1 - s) * fr / rsx["factor"] + s * fr); kinds.add("medium")
        got = rope_inv_freq(Config(dict(make_config("llama", "tiny"), head_dim=hd, rope_theta=theta,
                                        rope_scaling=rsx)))
        r = _rel(got, torch.tensor(ref, dtype=torch.float64))
        yield (f"llama3 rope scaling == reference formula (theta {theta:g}, head_dim {hd}, "
               f"bands {'/'.join(sorted(kinds))})"), r < 1e-14, f"rel {r:.1e}"

    # 7. packed row == each sequence alone (block-diagonal mask, positions restart)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=40, vocab_size=50)
    for arch in ("llama", "qwen2", "qwen3", "gemma3"):
        cfgd = make_config(arch, small)
        model = CausalLM(Config(cfgd)).double()
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(random_tensors(cfgd, seed=3)[n])
        seqs = [[3, 9, 4, 4, 1], [7], [0, 49, 12, 5, 5, 8, 2]]
        lp, mask = token_logprobs(model, [t for s in seqs for t in s], [len(s) for s in seqs])
        alone = torch.cat([token_logprobs(model, s, [len(s)])[0] for s in seqs])
        r = _rel(lp, alone)
        yield f"packed == separate sequences ({arch})", r < 1e-12 and int(mask.sum()) == 10, f"rel {r:.1e}"

    # 7b. Gemma 3's sliding window: in one sliding layer, position t sees tokens t-W+1..t
    # (transformers' kv_idx > q_idx - W): changing token t-W leaves its log-prob alone,
    # changing token t-W+1 does not; a full-attention layer sees both.
    W, t = 3, 6
    for kind in ("sliding_attention", "full_attention"):
        cfgd = make_config("gemma3", dict(small, num_hidden_layers=1), sliding_window=W, layer_types=[kind])
        model = CausalLM(Config(cfgd)).double()
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(random_tensors(cfgd, seed=6)[n])
        base = [3, 9, 4, 4, 1, 7, 8, 2]
        lp0 = token_logprobs(model, base, [len(base)])[0][t]
        moved = {}
        for j in (t - W, t - W + 1):
            other = list(base)
            other[j] = (other[j] + 5) % 50
            moved[j] = abs(float(token_logprobs(model, other, [len(other)])[0][t] - lp0))
        if kind == "sliding_attention":
            ok = moved[t - W] == 0.0 and moved[t - W + 1] > 1e-6
        else:
            ok = moved[t - W] > 1e-6 and moved[t - W + 1] > 1e-6
        yield (f"gemma3 {kind}: log-prob at {t} moves with token {t - W + 1}, "
               f"{'not' if kind == 'sliding_attention' else 'and'} with token {t - W} (window {W})"), ok, \
            f"changes {moved[t - W]:.1e}, {moved[t - W + 1]:.1e}"

    # 8. GQA grouping: KV heads repeated into a full-MHA model give the same output
    cfgd = make_config("qwen3", small)
    gqa = CausalLM(Config(cfgd)).double()
    mha = CausalLM(Config(dict(cfgd, num_key_value_heads=4))).double()
    ts = random_tensors(cfgd, seed=4)
    with torch.no_grad():
        for n, p in gqa.named_parameters():
            p.copy_(ts[n])
        for n, p in mha.named_parameters():
            t = ts[n]
            if n.endswith(("k_proj.weight", "v_proj.weight")):
                hd = cfgd["head_dim"]
                t = t.view(2, 1, hd, -1).expand(2, 2, hd, t.shape[-1]).reshape(4 * hd, -1)
            p.copy_(t)
    seqs = [[1, 2, 3, 4, 5, 6], [9, 8, 7]]
    a = token_logprobs(gqa, [t for s in seqs for t in s], [6, 3])[0]
    b = token_logprobs(mha, [t for s in seqs for t in s], [6, 3])[0]
    yield "GQA == MHA with repeated kv heads (head h uses kv head h // group)", _rel(a, b) < 1e-12, \
        f"rel {_rel(a, b):.1e}"

    # 9. autograd gradient == finite differences on a tiny fp64 model (all parameters)
    tiny = dict(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                intermediate_size=12, vocab_size=11)
    for arch, tie in (("llama", False), ("qwen2", False), ("qwen3", True), ("gemma3", True)):
        cfgd = make_config(arch, tiny, tie=tie)
        if arch == "gemma3":  # window 2 < the sequences, a full layer, scores scaled by 1/sqrt(3)
            cfgd.update(sliding_window=2, layer_types=["sliding_attention", "full_attention"], query_pre_attn_scalar=3,
                        rope_scaling={"rope_type": "linear", "factor": 4.0})
        model = CausalLM(Config(cfgd)).double()
        ts = random_tensors(cfgd, seed=5, std=0.5)
        names = [n for n, _ in model.named_parameters()]
        seqs = [[1, 5, 3, 10], [0, 2, 2]]
        toks = [t for s in seqs for t in s]

        def f(*vals):
            for n, v in zip(names, vals):
                mod, attr = model.get_submodule(n.rsplit(".", 1)[0]), n.rsplit(".", 1)[1]
                delattr(mod, attr)
                setattr(mod, attr, v)
            lp, m = token_logprobs(model, toks, [4, 3])
            return -lp.sum() / m.sum()

        vals = tuple(ts[n].double().requires_grad_(True) for n in names)
        ok = torch.autograd.gradcheck(f, vals, eps=1e-6, atol=1e-7, rtol=1e-5, raise_exception=False)
        yield f"gradcheck of the loss, all parameters ({arch}{', tied' if tie else ''})", ok, \
            f"{len(names)} tensors"

    # 10. adamw_step == the AdamW formula written out (decay only for ndim >= 2)
    ps = {"w": torch.randn(4, 3, dtype=torch.float64), "b": torch.randn(3, dtype=torch.float64)}
    gs = {"w": torch.randn(4, 3, dtype=torch.float64), "b": torch.randn(3, dtype=torch.float64) * 1e-9}
    lr, wd, b1, b2, eps = 1e-3, 0.1, 0.9, 0.999, 1e-8
    got = adamw_step(ps, gs, lr, wd, b1, b2, eps)
    r = 0.0
    for n in ps:
        p, g = ps[n], gs[n]
        m, v = (1 - b1) * g, (1 - b2) * g * g
        mh, vh = m / (1 - b1), v / (1 - b2)
        wdn = wd if p.dim() >= 2 else 0.0
        ref = p * (1 - lr * wdn) - lr * mh / (vh.sqrt() + eps)
        r = max(r, _rel(got[n] - p, ref - p))
    yield "adamw_step == written-out AdamW (decoupled decay, bias correction, no decay on 1-D)", r < 1e-12, \
        f"rel {r:.1e}"


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("selftest")
    a = sub.add_parser("init")
    a.add_argument("--arch", required=True, choices=["llama", "qwen2", "qwen3", "gemma3"])
    a.add_argument("--preset", default="tiny", choices=list(PRESETS))
    a.add_argument("--out", required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--tie-word-embeddings", action="store_true")
    g = sub.add_parser("grad-dump")
    g.add_argument("--model", required=True)
    g.add_argument("--tokens", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--weight-decay", type=float, default=0.1)
    g.add_argument("--beta1", type=float, default=0.9)
    g.add_argument("--beta2", type=float, default=0.999)
    g.add_argument("--eps", type=float, default=1e-8)
    g.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args(argv)
    if args.cmd == "init":
        cfg = make_config(args.arch, args.preset, tie=args.tie_word_embeddings)
        write_model_dir(args.out, cfg, random_tensors(cfg, args.seed, perturb_ones=False))
        return 0
    if args.cmd == "grad-dump":
        with open(args.tokens) as f:
            seqs = json.load(f)["sequences"]
        out = reference_dump(args.model, seqs, args.lr, args.weight_decay, args.beta1, args.beta2,
                             args.eps, getattr(torch, args.dtype))
        write_safetensors(args.out, {k: v for k, v in out.items() if not k.startswith("param.")}, "F32")
        return 0
    bad = 0
    for name, ok, detail in selftests():
        print(f"{'ok' if ok else 'not ok'} - oracle {name}" + (f" ({detail})" if detail else ""))
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
