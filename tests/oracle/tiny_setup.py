"""What test_train.py and test_lora_train.py share: running temper, reading its metrics,
and their starting point: the tiny Llama (seed 1) with the byte tokenizer
(tiny_tokenizer.py) without its chat template, so string rows are plain text as the PyTorch
references tokenize them (the prompt rule), and 24 "a+b=" facts, each with a wrong answer."""
import json, os, random, subprocess
import tiny_tokenizer
from tap import TEMPER, check


def temper(*args):
    return subprocess.run([TEMPER, *args], capture_output=True, text=True)


def why(*rs):
    """the end of stderr of the runs that failed (nothing when all succeeded)"""
    return " ".join(r.stderr.strip()[-300:] for r in rs if r.returncode)


def metrics(out):  # the logged steps and evaluations (not the final train_runtime entry)
    return [x for x in (json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))) if "train_runtime" not in x]


def start(tmp):
    """-> (tokenizer dir, base model dir, facts [(prompt, answer, wrong)], write(name, rows) -> path under tmp)"""
    tok = tiny_tokenizer.write(os.path.join(tmp, "tok"))
    cfg_path = os.path.join(tok, "tokenizer_config.json")
    cfg = json.load(open(cfg_path)); del cfg["chat_template"]; json.dump(cfg, open(cfg_path, "w"))
    base = os.path.join(tmp, "base")
    r = temper("init", "--arch", "llama", "--preset", "tiny", "--tokenizer", tok, "--out", base, "--seed", "1")
    check(r.returncode == 0, "init tiny llama with the byte tokenizer")
    rnd = random.Random(0)
    facts = []
    for i in range(24):
        a, b = rnd.randrange(50), rnd.randrange(50)
        facts.append((f"{a}+{b}=", str(a + b), str(a + b + rnd.randrange(1, 9))))

    def write(name, rows):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        return p
    return tok, base, facts, write
