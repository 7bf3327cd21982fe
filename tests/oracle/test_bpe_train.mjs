// `temper tokenizer train` writes a tokenizer.json that Hugging Face tokenizers (the Rust
// library as a Node addon) loads and encodes exactly as temper does: trained on a
// `temper task synth` file (~1 MB), then a few hundred texts (the task's questions and
// solutions, ChatML-rendered conversations with their special tokens, python turns, and
// texts unlike the corpus: Unicode, long numbers, odd spacing) are encoded by both and
// the ids compared; decode parity on the same ids; the special tokens' ids.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Tokenizer } from "@anush008/tokenizers";
import { root } from "./corpus.mjs";

const TEMPER = process.env.TEMPER || path.join(root, "build/temper");
let failed = 0;
const ok = (name) => console.log(`ok - ${name}`);
const notOk = (name, detail) => { failed++; console.log(`not ok - ${name}: ${detail}`); };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "temper-bpe-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

function run(args, input) {
  const r = spawnSync(TEMPER, args, { input, maxBuffer: 1 << 30, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`temper ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r;
}

const calc = path.join(tmp, "calc.jsonl"), py = path.join(tmp, "py.jsonl"), dir = path.join(tmp, "tok");
run(["task", "synth", "--level", "1-5", "--n", "2000", "--seed", "7", "--tools", "calculator", "--out", calc, "--quiet"]);
run(["task", "synth", "--level", "4-5", "--n", "300", "--seed", "7", "--tools", "python", "--split", "test", "--out", py, "--quiet"]);
const bytes = fs.statSync(calc).size + fs.statSync(py).size;
const tr = run(["tokenizer", "train", "--data", `${calc},${py}`, "--vocab-size", "600", "--out", dir]);
const cpu = /\(([\d.]+) s CPU\)/.exec(tr.stderr);
if (cpu && Number(cpu[1]) < 3) ok(`trained on ${(bytes / 1e6).toFixed(2)} MB of task text in ${cpu[1]} s CPU`);
else notOk("training is fast", `stderr: ${tr.stderr}`);

let hf;
try { hf = Tokenizer.fromFile(path.join(dir, "tokenizer.json")); ok("Hugging Face tokenizers loads the trained tokenizer.json"); }
catch (e) { notOk("Hugging Face tokenizers loads the trained tokenizer.json", e.message); process.exit(1); }

const rows = (f) => fs.readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const texts = [];
for (const r of rows(calc).slice(0, 150)) {
  texts.push(r.prompt, r.completion);
  texts.push(`<|im_start|>user\n${r.prompt}<|im_end|>\n<|im_start|>assistant\n${r.completion}<|im_end|>\n`);
}
for (const r of rows(py).slice(0, 60)) {
  for (const m of r.completion) texts.push(m.content);
  texts.push(r.completion.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join(""));
}
texts.push("", " ", "\n\n\n", "  two leading spaces", "tabs\tand\r\nCRLF", "1234567890 + 98765 = 1111111 × ÷",
  "Héllo wörld, naïve café — ünïcödé", "日本語のテキスト", "emoji 😀👍🏽 and ZWJ 👨‍👩‍👧", "<|endoftext|>padding<|endoftext|>",
  "x<|im_end|>y<|im_start|>z", "don't we'll I'M SHE'S", "$<<12*3/4=9>>9 dollars", "```python\nprint(1)\n```\n```output\n1\n```");
const out = run(["tokenize", "--tokenizer", dir], texts.map((t) => JSON.stringify(t)).join("\n") + "\n").stdout.split("\n");
const encs = await hf.encodeBatch(texts, { addSpecialTokens: false });
const hfIds = encs.map((e) => e.getIds());
let bad = 0, first = "", ntok = 0, unseen = 0;
for (let i = 0; i < texts.length; i++) {
  ntok += hfIds[i].length;
  if (out[i] !== JSON.stringify(hfIds[i])) {
    if (!bad) first = `text ${JSON.stringify(texts[i]).slice(0, 160)}\n   temper ${String(out[i]).slice(0, 200)}\n   hf     ${JSON.stringify(hfIds[i]).slice(0, 200)}`;
    bad++;
  }
}
if (bad) notOk(`encode parity on ${texts.length} texts`, `${bad} differ; first: ${first}`);
else ok(`encode parity on ${texts.length} texts: ${ntok} ids identical to Hugging Face's`);

// the task text is compressed (merges were learned), and the digits stay single tokens
const q = texts[0];
const qi = hfIds[0];
if (qi.length < Buffer.byteLength(q) / 2.5) ok(`a question is ${Buffer.byteLength(q)} bytes in ${qi.length} tokens`);
else notOk("merges compress the task text", `${Buffer.byteLength(q)} bytes in ${qi.length} tokens`);
const [digits] = await hf.encodeBatch(["12345"], { addSpecialTokens: false });
if (digits.getIds().length === 5) ok("each digit is its own token (Qwen2's split)");
else notOk("each digit is its own token", JSON.stringify(digits.getIds()));

// decode parity on the same ids
const dec = run(["tokenize", "--tokenizer", dir, "--text"], hfIds.map((a) => JSON.stringify(a)).join("\n") + "\n").stdout.split("\n");
const want = await hf.decodeBatch(hfIds, false);
for (let i = 0; i < texts.length; i++) if (dec[i] !== JSON.stringify(want[i])) unseen++;
if (unseen) notOk("decode parity", `${unseen} differ`); else ok(`decode parity on ${texts.length} id lists`);

// special tokens: after the model vocabulary, in order; the config names EOS and pad
const cfg = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const V = hf.getVocabSize(true);
const ids = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map((t) => hf.tokenToId(t));
if (V <= 600 && ids[0] === V - 3 && ids[1] === V - 2 && ids[2] === V - 1 && cfg.eos_token === "<|im_end|>" &&
    cfg.pad_token === "<|endoftext|>" && cfg.chat_template.includes("<|im_start|>"))
  ok(`vocabulary ${V} <= --vocab-size 600; special ids ${ids.join(", ")}; eos <|im_end|>, pad <|endoftext|>, ChatML template`);
else notOk("special tokens and config", `V ${V} ids ${ids} eos ${cfg.eos_token} pad ${cfg.pad_token}`);

// temper renders the ChatML template to the same ids as the hand-written rendering
const conv = [{ role: "user", content: texts[0] }, { role: "assistant", content: texts[1] }];
const chat = run(["tokenize", "--tokenizer", dir, "--chat"], JSON.stringify(conv) + "\n").stdout.split("\n")[0];
if (chat === JSON.stringify(hfIds[2])) ok("temper's chat template rendering encodes to Hugging Face's ids for the same conversation");
else notOk("chat template", `${chat.slice(0, 120)} vs ${JSON.stringify(hfIds[2]).slice(0, 120)}`);
// a second corpus unlike the task: GSM8K's test set (real text, Unicode quotes), vocabulary 2000
const gsm = path.join(root, "data/gsm8k/test.jsonl"), gdir = path.join(tmp, "gsm");
const gt = run(["tokenizer", "train", "--data", gsm, "--vocab-size", "2000", "--out", gdir]);
const ghf = Tokenizer.fromFile(path.join(gdir, "tokenizer.json"));
const gtexts = rows(gsm).slice(0, 300).flatMap((r) => [r.question, r.answer]);
const gout = run(["tokenize", "--tokenizer", gdir], gtexts.map((t) => JSON.stringify(t)).join("\n") + "\n").stdout.split("\n");
const gids = (await ghf.encodeBatch(gtexts, { addSpecialTokens: false })).map((e) => e.getIds());
const gbad = gtexts.filter((t, i) => gout[i] !== JSON.stringify(gids[i])).length;
const gcpu = /\(([\d.]+) s CPU\)/.exec(gt.stderr);
if (!gbad && ghf.getVocabSize(true) === 2000)
  ok(`GSM8K test set (${(fs.statSync(gsm).size / 1e6).toFixed(2)} MB, ${gcpu ? gcpu[1] : "?"} s CPU) at vocabulary 2000: ${gtexts.length} texts encode identically`);
else notOk("GSM8K-trained tokenizer parity", `${gbad} of ${gtexts.length} differ; vocabulary ${ghf.getVocabSize(true)}`);
process.exit(failed ? 1 : 0);
