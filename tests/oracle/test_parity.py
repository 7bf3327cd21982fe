#!/usr/bin/python3
"""Parity of temper's fp32 model with a float64 PyTorch oracle (tests/oracle/torch_ref.py).

The contract with the C side:
  $TEMPER init --arch llama|qwen2|qwen3|gemma3 --preset tiny --out DIR [--seed S] [--tie-word-embeddings]
      writes config.json + model.safetensors (F32).
  $TEMPER_TOOLS/grad_dump --model DIR --tokens T.json --out D.safetensors
                          --lr LR --weight-decay WD --beta1 B1 --beta2 B2 --eps EPS
      T.json = {"sequences": [[ids...], ...]}, packed into one row (positions restart at 0
      per sequence, attention causal within each sequence). targets[t] = seq[t+1]; a
      sequence's last token has none. loss = -(sum of target log-probs) / (number of targets).
      D.safetensors, all F32:
        "logprobs" [N]   log p(target) per position, 0 where there is no target
        "loss"     [1]
        "grad.<hf name>" for every parameter (tied: one model.embed_tokens.weight, no lm_head)
        "step.<hf name>" the parameter after one torch.optim.AdamW step from fresh state
                         (weight decay only on ndim >= 2; no clipping)

Each comparison is rel = max|c - t| / max|t| < 1e-4, t the float64 torch value; the
AdamW update too, once the fp32 rounding of the stored parameter is allowed for (below).

The AdamW check feeds torch.optim.AdamW the *C side's* gradients: a first Adam step is
about lr*sign(g), so fp32 round-off in gradients near zero would otherwise show up in the
step and hide what the check is for (the optimizer's semantics). It compares the parameter
after the step and, on the same line, the update (step - param), which is what catches,
e.g., weight decay applied to a norm (lr*wd = 1e-4 of a weight near 1).

The test perturbs the norm weights and biases that `init` wrote (all 1 or all 0 would let
a forward that ignores them pass) and rewrites the model as F32, BF16 and F16, single-file
and sharded, so the C loader's formats are covered too.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import torch_ref as R  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TEMPER = os.environ.get("TEMPER") or os.path.join(REPO, "build", "temper")
TOOLS = os.environ.get("TEMPER_TOOLS") or os.path.join(REPO, "build", "tools")
GRAD_DUMP = os.path.join(TOOLS, "grad_dump")
TOL = 1e-4
# The update (step - param) of a parameter near 1 is ~lr = 1e-3, and the fp32 parameter
# after the step carries a rounding of up to one ulp (~1.2e-7 near 1): each element's
# update error is allowed that ulp, and what remains must be < 1e-4 of the update.
# Weight decay wrongly on a norm changes the update by ~10%, a wrong bias correction by more.
UPDATE_TOL = 1e-4
HP = dict(lr=1e-3, weight_decay=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
ROPE_LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}

passed = failed = 0


def report(ok, name, detail=""):
    global passed, failed
    print(f"{'ok' if ok else 'not ok'} - {name}" + (f" {detail}" if detail else ""), flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


class Fail(Exception):
    pass


def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise Fail(f"timed out after 600 s: {' '.join(cmd)}")
    except OSError as e:
        raise Fail(f"cannot run {cmd[0]}: {e}")
    if p.returncode != 0:
        last = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:] or ["(no output)"]
        raise Fail(f"exit {p.returncode}: {' '.join(cmd)}: {last[0]}")
    return p


def sequences(vocab, lens, seed):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in lens]
    seqs[0][0], seqs[-1][-1] = 0, vocab - 1  # both ends of the vocabulary
    return seqs


def perturb(model_dir, seed, dtype="F32", shards=1):
    """Rewrites the model with norm weights 1 + N(0, 0.1), biases + N(0, 0.05), and q/k
    projections x4: with init's std-0.02 weights attention scores have std ~0.1 and the
    attention is nearly uniform, which would hide position (RoPE, mask) errors."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    ts = R.read_model_tensors(model_dir)
    g = torch.Generator().manual_seed(seed)
    for n, t in ts.items():
        if t.dim() == 1:
            scale = 0.1 if n.endswith("norm.weight") else 0.05
            ts[n] = t.float() + torch.randn(t.shape, generator=g) * scale
        elif n.endswith(("q_proj.weight", "k_proj.weight")):
            ts[n] = t.float() * 4
    R.write_model_dir(model_dir, cfg, ts, dtype, shards)


def init_model(arch, out, seed, tie=False):
    cmd = [TEMPER, "init", "--arch", arch, "--preset", "tiny", "--out", out, "--seed", str(seed)]
    if tie:
        cmd.append("--tie-word-embeddings")
    run(cmd)
    for f in ("config.json", "model.safetensors"):
        if not os.path.exists(os.path.join(out, f)):
            raise Fail(f"temper init wrote no {f} in {out}")


def grad_dump(model_dir, seqs, workdir, tag, temperature=1.0, entropy_coef=0.0, value_coef=0.0):
    tok = os.path.join(workdir, f"{tag}.tokens.json")
    out = os.path.join(workdir, f"{tag}.dump.safetensors")
    with open(tok, "w") as f:
        json.dump({"sequences": seqs}, f)
    cmd = [GRAD_DUMP, "--model", model_dir, "--tokens", tok, "--out", out,
           "--lr", repr(HP["lr"]), "--weight-decay", repr(HP["weight_decay"]), "--beta1", repr(HP["beta1"]),
           "--beta2", repr(HP["beta2"]), "--eps", repr(HP["eps"])]
    if temperature != 1.0 or entropy_coef != 0.0:
        cmd += ["--temperature", repr(temperature), "--entropy-coef", repr(entropy_coef)]
    if value_coef != 0.0:
        cmd += ["--value-coef", repr(value_coef)]
    run(cmd)
    try:
        dump, _ = R.read_safetensors(out)
    except Exception as e:
        raise Fail(f"grad_dump output unreadable: {e}")
    return {k: v.double() for k, v in dump.items()}


def compare(tag, model_dir, seqs, workdir, per_tensor=True, temperature=1.0, entropy_coef=0.0, value_coef=0.0):
    """Runs grad_dump and the oracle on the same model and tokens; reports each check.
    per_tensor=False folds the gradient and step checks into one line each. temperature /
    entropy_coef: log-probs of softmax(logits / T), loss (-sum logp + c * sum entropy) / n.
    value_coef: PPO's shared value head on the hidden state before / T (torch_ref.reference_dump)."""
    c = grad_dump(model_dir, seqs, workdir, tag, temperature, entropy_coef, value_coef)
    t = R.reference_dump(model_dir, seqs, **HP, dtype=torch.float64, temperature=temperature, entropy_coef=entropy_coef,
                         value_coef=value_coef)
    params = [k[len("param."):] for k in t if k.startswith("param.")]
    N = sum(len(s) for s in seqs)

    expected = {"logprobs", "loss"} | {f"grad.{n}" for n in params} | {f"step.{n}" for n in params}
    if entropy_coef != 0.0:
        expected.add("entropy")
    if value_coef != 0.0:
        expected.add("values")
    extra = sorted(set(c) - expected)
    report(not extra, f"parity {tag} dump has no unexpected tensors", f"({', '.join(extra[:5])})" if extra else "")

    def check(key, what):
        if key not in c:
            return False, f"missing {key} in grad_dump output"
        if tuple(c[key].shape) != tuple(t[key].shape):
            return False, f"shape {list(c[key].shape)}, expected {list(t[key].shape)}"
        if not torch.isfinite(c[key]).all():
            return False, "non-finite values"
        r = R._rel(c[key], t[key])
        return r < TOL, f"rel {r:.1e}"

    ok, d = check("logprobs", "logprobs")
    report(ok, f"parity {tag} logprobs [{N}]", d)
    ok, d = check("loss", "loss")
    report(ok, f"parity {tag} loss {t['loss'].item():.6f}", d)
    if entropy_coef != 0.0:
        ok, d = check("entropy", "entropy")
        report(ok, f"parity {tag} entropy [{N}]", d)
    if value_coef != 0.0:
        ok, d = check("values", "values")
        report(ok, f"parity {tag} value head on the hidden state before / T [{N}]", d)

    # AdamW on the C gradients (see the module docstring)
    have_grads = all(f"grad.{n}" in c and c[f"grad.{n}"].shape == t[f"grad.{n}"].shape for n in params)
    if have_grads:
        tstep = R.adamw_step({n: t[f"param.{n}"] for n in params}, {n: c[f"grad.{n}"] for n in params}, **HP)

    worst = {"grad": (0.0, ""), "step": (0.0, "")}
    bad = {"grad": [], "step": []}
    for n in params:
        ok, d = check(f"grad.{n}", "grad")
        if per_tensor:
            report(ok, f"parity {tag} grad {n}", d)
        elif not ok:
            bad["grad"].append(f"{n} {d}")
        else:
            r = float(d.split()[1])
            worst["grad"] = max(worst["grad"], (r, n))

        key = f"step.{n}"
        if key not in c:
            ok, d = False, f"missing {key} in grad_dump output"
        elif not have_grads:
            ok, d = False, "no usable gradients to step with"
        elif tuple(c[key].shape) != tuple(tstep[n].shape):
            ok, d = False, f"shape {list(c[key].shape)}, expected {list(tstep[n].shape)}"
        else:
            p0 = t[f"param.{n}"]
            rs = R._rel(c[key], tstep[n])
            cs = c[key]
            ulp = (torch.nextafter(cs.float(), torch.full_like(cs.float(), float("inf"))) - cs.float()).double().abs()
            excess = ((cs - p0) - (tstep[n] - p0)).abs() - ulp
            ru = float(excess.clamp(min=0).max() / (tstep[n] - p0).abs().max().clamp(min=1e-30))
            ok, d = rs < TOL and ru < UPDATE_TOL, f"rel {rs:.1e} (update rel {ru:.1e})"
        if per_tensor:
            report(ok, f"parity {tag} step {n}", d)
        elif not ok:
            bad["step"].append(f"{n} {d}")
        else:
            r = max(rs, ru)
            worst["step"] = max(worst["step"], (r, n))
    if not per_tensor:
        for kind in ("grad", "step"):
            if bad[kind]:
                report(False, f"parity {tag} {kind} of all {len(params)} tensors",
                       f"{len(bad[kind])} bad, first: {bad[kind][0]}")
            else:
                report(True, f"parity {tag} {kind} of all {len(params)} tensors",
                       f"worst rel {worst[kind][0]:.1e} ({worst[kind][1]})")
    return t


def case(name, fn):
    try:
        fn()
    except Fail as e:
        report(False, f"parity {name}", str(e))
    except Exception as e:
        report(False, f"parity {name}", f"{type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stdout)


# TEMPER_PARITY_ARCH_ONLY=1: only the three architectures' forward/backward/AdamW cases (the
# second run of make check, on the x86-64-v3 build: the kernels change, the oracle and the
# file formats do not).
ARCH_ONLY = os.environ.get("TEMPER_PARITY_ARCH_ONLY") == "1"


def main():
    if not ARCH_ONLY:
        for name, ok, detail in R.selftests():
            report(ok, f"oracle {name}", f"({detail})" if detail else "")

    missing = False
    for what, path in (("TEMPER", TEMPER), ("TEMPER_TOOLS/grad_dump", GRAD_DUMP)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            report(False, f"parity needs {what}", f"but {path} is not an executable (run make)")
            missing = True
    if missing:
        return

    work = tempfile.mkdtemp(prefix="temper-parity-")
    try:
        seqs_main = None

        def arch_case(arch, tie=False, seed=11):
            nonlocal seqs_main
            d = os.path.join(work, arch + ("-tied" if tie else ""))
            init_model(arch, d, seed, tie)
            cfg = R.Config.load(d)
            if cfg.arch != arch or cfg.tie_word_embeddings != tie:
                raise Fail(f"init wrote arch {cfg.arch} tie {cfg.tie_word_embeddings}")
            names = set(R.read_model_tensors(d))
            if tie and "lm_head.weight" in names:
                raise Fail("tied model has lm_head.weight in model.safetensors")
            perturb(d, seed)
            seqs = sequences(cfg.vocab_size, [9, 1, 14, 6], seed)
            compare(arch + ("-tied" if tie else ""), d, seqs, work)

        for arch in ("llama", "qwen2", "qwen3"):
            case(arch, lambda arch=arch: arch_case(arch))

        def gemma3_case(tag, seed, edit, dtype="F32", lens=(9, 1, 14, 6)):
            """temper init --arch gemma3 (8 layers: 5 sliding, 1 full, 2 sliding), config edited
            so that the window (5) is shorter than the sequences, the score scale differs
            from head_dim^-0.5 and the global RoPE is linearly scaled."""
            d = os.path.join(work, tag)
            init_model("gemma3", d, seed)
            with open(os.path.join(d, "config.json")) as f:
                cfg = json.load(f)
            if cfg.get("architectures") != ["Gemma3ForCausalLM"] or cfg.get("model_type") != "gemma3_text":
                raise Fail(f"init wrote {cfg.get('architectures')} / {cfg.get('model_type')}")
            kinds = cfg.get("layer_types") or []
            if cfg["num_hidden_layers"] < 7 or "full_attention" not in kinds[:-1] or kinds[-1] != "sliding_attention":
                raise Fail(f"init's gemma3 lacks sliding layers on both sides of a full one: {kinds}")
            cfg.update(sliding_window=5, query_pre_attn_scalar=48, rope_scaling={"rope_type": "linear", "factor": 8.0})
            edit(cfg)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
            perturb(d, seed, dtype)
            seqs = sequences(cfg["vocab_size"], list(lens), seed)
            if max(lens) <= cfg["sliding_window"]:
                raise Fail("the sequences must be longer than the window")
            return compare(tag, d, seqs, work, per_tensor=(dtype == "F32")), d, seqs

        def gemma3_main():
            t, d, seqs = gemma3_case("gemma3", 31, lambda cfg: None)
            if ARCH_ONLY:
                return
            # the window, the local RoPE base and the query scale each change torch's answer,
            # so the match above is not blind to them
            for what, change in (("sliding_window", dict(sliding_window=4096)),
                                 ("rope_local_base_freq", dict(rope_local_base_freq=1e6)),
                                 ("query_pre_attn_scalar", dict(query_pre_attn_scalar=64)),
                                 ("rope_scaling (linear, full layers)", dict(rope_scaling=None))):
                alt = os.path.join(work, "gemma3-alt")
                shutil.rmtree(alt, ignore_errors=True)
                shutil.copytree(d, alt)
                with open(os.path.join(alt, "config.json")) as f:
                    cfg = json.load(f)
                cfg.update(change)
                with open(os.path.join(alt, "config.json"), "w") as f:
                    json.dump(cfg, f, indent=2)
                r = R._rel(R.reference_dump(alt, seqs, **HP)["logprobs"], t["logprobs"])
                report(r > 30 * TOL, f"parity gemma3 {what} changes torch's logprobs", f"rel {r:.1e} (must be > {30 * TOL:g})")

        case("gemma3", gemma3_main)

        def no_layer_types(cfg):  # the older configs: sliding_window_pattern instead of layer_types
            del cfg["layer_types"]
            cfg["sliding_window_pattern"] = 3

        if ARCH_ONLY:
            return
        case("gemma3-pattern-bf16", lambda: gemma3_case("gemma3-pattern-bf16", 32, no_layer_types, "BF16", (17, 8)))

        def r1_distill_case():
            """DeepSeek-R1-Distill-Qwen-1.5B's config.json as published (a Qwen2 model; Light-R1
            starts from it), with the tiny preset's sizes put in: every other field as shipped."""
            d = os.path.join(work, "r1-distill-qwen")
            init_model("qwen2", d, 33)
            with open(os.path.join(d, "config.json")) as f:
                tiny = json.load(f)
            cfg = {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
                   "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
                   "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 21,
                   "model_type": "qwen2", "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2,
                   "rms_norm_eps": 1e-06, "rope_theta": 10000, "sliding_window": 4096, "tie_word_embeddings": False,
                   "torch_dtype": "bfloat16", "transformers_version": "4.44.0", "use_cache": True, "use_mrope": False,
                   "use_sliding_window": False, "vocab_size": 151936}
            for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
                      "num_key_value_heads", "vocab_size"):
                cfg[k] = tiny[k]
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
            with open(os.path.join(d, "generation_config.json"), "w") as f:
                json.dump({"_from_model_config": True, "bos_token_id": 151646, "eos_token_id": 151643,
                           "do_sample": True, "temperature": 0.6, "top_p": 0.95}, f, indent=2)
            perturb(d, 33, "BF16")
            seqs = sequences(cfg["vocab_size"], [12, 20], 33)
            compare("r1-distill-qwen-bf16", d, seqs, work, per_tensor=False)

        case("r1-distill-qwen", r1_distill_case)
        case("qwen3-tied", lambda: arch_case("qwen3", tie=True, seed=12))

        def rope_case():
            src = os.path.join(work, "llama")
            if not os.path.exists(os.path.join(src, "model.safetensors")):
                raise Fail("needs the llama model of the case above")
            d = os.path.join(work, "llama-rope-llama3")
            shutil.copytree(src, d)
            with open(os.path.join(d, "config.json")) as f:
                cfg = json.load(f)
            cfg["rope_scaling"] = ROPE_LLAMA3
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
            seqs = sequences(cfg["vocab_size"], [40, 24], 13)
            t = compare("llama-rope-llama3", d, seqs, work, per_tensor=False)
            plain = R.reference_dump(src, seqs, **HP)
            r = R._rel(plain["logprobs"], t["logprobs"])
            report(r > 30 * TOL, "parity llama-rope-llama3 the scaling changes torch's logprobs",
                   f"rel {r:.1e} (must be > {30 * TOL:g})")

        case("llama-rope-llama3", rope_case)

        # log-probs, entropy and every gradient at a sampling temperature (GRPO's: TRL's
        # logits / T), untied and tied (the lm-head gradient lands in the embedding)
        def temperature_case(arch, tie, seed, T=0.7, c=0.5):
            d = os.path.join(work, f"{arch}-T{T}" + ("-tied" if tie else ""))
            init_model(arch, d, seed, tie)
            perturb(d, seed)
            cfg = R.Config.load(d)
            seqs = sequences(cfg.vocab_size, [11, 5, 9], seed)
            tag = f"{arch}" + ("-tied" if tie else "") + f"-T{T}-entropy"
            t = compare(tag, d, seqs, work, per_tensor=False, temperature=T, entropy_coef=c)
            plain = R.reference_dump(d, seqs, **HP, entropy_coef=c)
            r = R._rel(plain["logprobs"], t["logprobs"])
            report(r > 30 * TOL, f"parity {tag} the temperature changes torch's logprobs", f"rel {r:.1e} (must be > {30 * TOL:g})")

        case("llama-T0.7", lambda: temperature_case("llama", False, 31))
        case("qwen3-tied-T0.7", lambda: temperature_case("qwen3", True, 32))

        # PPO's shared value head at T = 0.7: it reads the hidden state before / T and its
        # gradient joins the lm-head's (which carries 1/T) in model_backward_extra
        def value_head_case(arch, seed, T=0.7, v=0.3):
            d = os.path.join(work, f"{arch}-T{T}-value")
            init_model(arch, d, seed, False)
            perturb(d, seed)
            cfg = R.Config.load(d)
            seqs = sequences(cfg.vocab_size, [11, 5, 9], seed)
            compare(f"{arch}-T{T}-value-head", d, seqs, work, per_tensor=False, temperature=T, value_coef=v)

        case("llama-T0.7-value-head", lambda: value_head_case("llama", 33))

        def format_case(arch, dtype, shards, seed):
            d = os.path.join(work, f"{arch}-{dtype.lower()}-{shards}")
            init_model(arch, d, seed)
            perturb(d, seed, dtype, shards)
            cfg = R.Config.load(d)
            seqs = sequences(cfg.vocab_size, [12, 7], seed)
            compare(f"{arch}-{dtype.lower()}" + (f"-{shards}shards" if shards > 1 else ""), d, seqs, work,
                    per_tensor=False)

        case("qwen2-bf16-3shards", lambda: format_case("qwen2", "BF16", 3, 21))
        case("llama-f16", lambda: format_case("llama", "F16", 1, 22))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash of the test itself is still one clear "not ok"
        report(False, "parity test crashed", f"{type(e).__name__}: {e}")
        traceback.print_exc(file=sys.stdout)
    print(f"# {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
