#!/usr/bin/python3
"""PyTorch eager baseline of the `generate` bench lines: tests/oracle/torch_ref.py's model
in float32 with a KV cache added here (the reference model recomputes everything), the
way transformers' generate runs on CPU, except that the prompt is prefilled once and its
cache expanded to the batch (transformers prefills every copy; temper shares the prefix,
so this is the equal-work baseline); then one token per step for every sequence,
temperature-1 sampling with torch.multinomial.

    bench/torch_generate.py --model DIR --batch B --new T --prompt P --threads 2

Prints {"tok_per_s", "seconds", "isa"} (isa: ATen's "CPU capability usage"): batch * new / wall time (prefill included), best of
--reps runs after a warm-up run."""
import argparse, json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import torch
import torch.nn.functional as F
import torch_ref


def attn_step(att, x, cos, sin, cache, mask):
    """One attention module over new tokens x [B,T,D] with cache (k, v) [B,KV,L,hd] or None."""
    B, T, _ = x.shape
    q = att.q_proj(x).view(B, T, att.H, att.hd)
    k = att.k_proj(x).view(B, T, att.KV, att.hd)
    v = att.v_proj(x).view(B, T, att.KV, att.hd)
    if att.qk_norm:
        q, k = att.q_norm(q), att.k_norm(k)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    q, k = torch_ref.apply_rope(q, cos, sin), torch_ref.apply_rope(k, cos, sin)
    if cache is not None:
        k = torch.cat([cache[0], k], 2)
        v = torch.cat([cache[1], v], 2)
    new_cache = (k, v)
    rep = att.H // att.KV
    if rep > 1:
        L = k.shape[2]
        k = k[:, :, None].expand(B, att.KV, rep, L, att.hd).reshape(B, att.H, L, att.hd)
        v = v[:, :, None].expand(B, att.KV, rep, L, att.hd).reshape(B, att.H, L, att.hd)
    s = torch.matmul(q, k.transpose(2, 3)) * (att.hd ** -0.5)
    if mask is not None:
        s = s + mask
    o = torch.matmul(F.softmax(s, dim=-1), v).transpose(1, 2).reshape(B, T, att.H * att.hd)
    return att.o_proj(o), new_cache


def forward(model, ids, pos0, caches):
    B, T = ids.shape
    x = model.model.embed_tokens(ids)
    pos = torch.arange(pos0, pos0 + T)[None].expand(B, T)
    cos, sin = torch_ref.rope_cos_sin(model.inv_freq, pos, x.dtype)
    mask = None
    if T > 1:
        mask = torch.full((T, T), float("-inf")).triu(1)[None, None]
    new = []
    for i, layer in enumerate(model.model.layers):
        a, c = attn_step(layer.self_attn, layer.input_layernorm(x), cos, sin, caches[i] if caches else None, mask)
        x = x + a
        x = x + layer.mlp(layer.post_attention_layernorm(x))
        new.append(c)
    h = model.model.norm(x[:, -1])
    return F.linear(h, model.lm_head_weight()), new


def generate(model, prompt, B, T, gen):
    # Prefill the prompt once, then give each of the B samples a view of its cache (the
    # first decoding step's torch.cat copies it), as temper shares the group's prefix.
    logits, caches = forward(model, prompt[None], 0, None)
    logits = logits.expand(B, -1)
    caches = [(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in caches]
    pos = prompt.shape[0]
    out = []
    for _ in range(T):
        tok = torch.multinomial(F.softmax(logits, -1), 1, generator=gen)
        out.append(tok)
        logits, caches = forward(model, tok, pos, caches)
        pos += 1
    return torch.cat(out, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = torch_ref.load_model(a.model, torch.float32).eval()
    gen = torch.Generator().manual_seed(5)
    prompt = torch.randint(0, model.cfg.vocab_size, (a.prompt,), generator=gen)
    best = 1e30
    with torch.inference_mode():
        for k in range(a.reps + 1):
            t = time.perf_counter()
            generate(model, prompt, a.batch, a.new, gen)
            t = time.perf_counter() - t
            if k > 0:
                best = min(best, t)
    isa = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability usage:" in l]
    print(json.dumps({"tok_per_s": a.batch * a.new / best, "seconds": best, "isa": isa[0] if isa else "unknown"}))


if __name__ == "__main__":
    main()
