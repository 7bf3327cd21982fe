// Encode throughput, single thread each: temper tokenize vs Hugging Face tokenizers
// on the GSM8K + MATH-500 corpus. Prints "tokenize <name>: temper <MB/s>, hf <MB/s>, ratio <r>".
// Run (one thread for Hugging Face's batch too): bench/bench_tokenize.sh, which sets
// RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false; the detail line shows the CPU
// time / wall time of the Hugging Face call (about 1.0 when it ran on one thread).
//
// What each timer covers (both exclude loading the tokenizer, reported apart):
//   temper: `temper tokenize --stats`, the sum over lines of tok_encode plus writing the
//     ids as "[1,2,...]" into the output buffer. Not timed: reading stdin, parsing each
//     line's JSON string, writing stdout. One pass, word cache cold at the start.
//   hf: one encodeBatch call over all texts (no per-call Node overhead), from the call to
//     its result: copying the strings into Rust, normalize + pre-tokenize + BPE, building
//     the Encoding objects (ids, offsets, masks) and handing them back to JS. Warmed up
//     first: a throwaway Tokenizer encodes the first WARM texts (code paths, the rayon
//     pool, the allocator), then a fresh Tokenizer is timed, so its word cache starts
//     cold like temper's.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { Tokenizer } from "@anush008/tokenizers";
import { corpus, models, root } from "./corpus.mjs";
const cpu = process.env.BENCH_CPU || "";
const TEMPER = process.env.TEMPER || path.join(root, "build/temper");
const g = corpus();
const texts = [...(g.gsm8k || []), ...(g.math500 || []), ...g.handwritten];
const WARM = Number(process.env.TOKENIZE_WARM || 2000);
const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t), 0);
for (const [name, dir] of Object.entries(models)) {
  const r = spawnSync(TEMPER, ["tokenize", "--tokenizer", dir, "--stats"], { input: texts.map((t) => JSON.stringify(t)).join("\n") + "\n", maxBuffer: 1 << 30, encoding: "utf8" });
  const m = /load ([0-9.]+) s, (\d+) bytes -> (\d+) tokens in ([0-9.]+) s/.exec(r.stderr);
  const tm = Number(m[2]) / Number(m[4]) / 1e6;
  const warm = texts.slice(0, WARM);
  await Tokenizer.fromFile(path.join(dir, "tokenizer.json")).encodeBatch(warm, { addSpecialTokens: false });
  const hf = Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await hf.encodeBatch(texts, { addSpecialTokens: false });  // one call: no per-call Node overhead
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const hm = bytes / s / 1e6;
  console.log(`tokenize ${name}: temper ${tm.toFixed(2)} MB/s, hf ${hm.toFixed(2)} MB/s, ratio ${(tm / hm).toFixed(2)}`);
  console.log(`  ${texts.length} texts, ${bytes} bytes; temper load ${m[1]} s, encode+format ${m[4]} s (one pass); ` +
              `hf encodeBatch ${s.toFixed(3)} s at cpu/wall ${((c.user + c.system) / 1e6 / s).toFixed(2)} ` +
              `(after a warm-up of ${warm.length} texts on another Tokenizer)${cpu ? "; " + cpu : ""}`);
}
