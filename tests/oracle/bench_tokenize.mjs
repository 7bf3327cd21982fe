// Encode throughput, single thread each: temper tokenize vs Hugging Face tokenizers
// on the GSM8K + MATH-500 corpus. Prints "tokenize <name>: temper <MB/s>, hf <MB/s>, ratio <r>".
// Run (one thread for Hugging Face's batch too): RAYON_NUM_THREADS=1 node tests/oracle/bench_tokenize.mjs
import { spawnSync } from "node:child_process";
import path from "node:path";
import { Tokenizer } from "@anush008/tokenizers";
import { corpus, models, root } from "./corpus.mjs";
const TEMPER = process.env.TEMPER || path.join(root, "build/temper");
const g = corpus();
const texts = [...(g.gsm8k || []), ...(g.math500 || []), ...g.handwritten];
const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t), 0);
for (const [name, dir] of Object.entries(models)) {
  const r = spawnSync(TEMPER, ["tokenize", "--tokenizer", dir, "--stats"], { input: texts.map((t) => JSON.stringify(t)).join("\n") + "\n", maxBuffer: 1 << 30, encoding: "utf8" });
  const m = /load ([0-9.]+) s, (\d+) bytes -> (\d+) tokens in ([0-9.]+) s/.exec(r.stderr);
  const tm = Number(m[2]) / Number(m[4]) / 1e6;
  const hf = Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
  const t0 = process.hrtime.bigint();
  await hf.encodeBatch(texts, { addSpecialTokens: false });  // one call: no per-call Node overhead
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const hm = bytes / s / 1e6;
  console.log(`tokenize ${name}: temper ${tm.toFixed(2)} MB/s, hf ${hm.toFixed(2)} MB/s, ratio ${(tm / hm).toFixed(2)} (temper load ${m[1]} s)`);
}
