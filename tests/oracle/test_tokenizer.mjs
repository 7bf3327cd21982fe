// Token-id parity of `temper tokenize` with Hugging Face tokenizers (the Rust library
// as a Node addon) on real Qwen3, Llama-3 and Gemma-3 tokenizer files, over the
// corpus of corpus.mjs; and decode parity (ids → text) on the same ids.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { Tokenizer } from "@anush008/tokenizers";
import { corpus, models, root } from "./corpus.mjs";

const TEMPER = process.env.TEMPER || path.join(root, "build/temper");
let failed = 0;
const ok = (name) => console.log(`ok - ${name}`);
const notOk = (name, detail) => { failed++; console.log(`not ok - ${name}: ${detail}`); };

function temper(args, lines) {
  const r = spawnSync(TEMPER, args, { input: lines.join("\n") + "\n", maxBuffer: 1 << 30, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`temper ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout.split("\n").slice(0, lines.length);
}

const groups = corpus();
for (const [model, dir] of Object.entries(models)) {
  const hf = Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
  for (const [gname, texts] of Object.entries(groups)) {
    const name = `${model} encode ${gname} (${texts.length} texts)`;
    let out;
    try { out = temper(["tokenize", "--tokenizer", dir], texts.map((t) => JSON.stringify(t))); }
    catch (e) { notOk(name, e.message); continue; }
    const encs = await hf.encodeBatch(texts, { addSpecialTokens: false });
    let bad = 0, first = "", ntok = 0;
    const hfIds = encs.map((e) => e.getIds());
    for (let i = 0; i < texts.length; i++) {
      const want = JSON.stringify(hfIds[i]);
      ntok += hfIds[i].length;
      if (out[i] !== want) {
        if (!bad) first = `text ${JSON.stringify(texts[i]).slice(0, 200)}\n   temper ${String(out[i]).slice(0, 300)}\n   hf     ${want.slice(0, 300)}`;
        bad++;
      }
    }
    if (bad) notOk(name, `${bad} differ; first: ${first}`);
    else ok(`${name}, ${ntok} tokens identical`);

    // decode parity on the reference ids
    const dname = `${model} decode ${gname}`;
    try {
      const dec = temper(["tokenize", "--tokenizer", dir, "--text"], hfIds.map((a) => JSON.stringify(a)));
      const want = await hf.decodeBatch(hfIds, false);
      let dbad = 0, dfirst = "";
      for (let i = 0; i < texts.length; i++)
        if (dec[i] !== JSON.stringify(want[i])) { if (!dbad) dfirst = `ids ${JSON.stringify(hfIds[i]).slice(0, 100)}: temper ${dec[i].slice(0, 200)} hf ${JSON.stringify(want[i]).slice(0, 200)}`; dbad++; }
      if (dbad) notOk(dname, `${dbad} differ; first: ${dfirst}`); else ok(dname);
    } catch (e) { notOk(dname, e.message); }
  }
  // the post-processor (Gemma's <bos>) and skip_special_tokens
  const some = groups.handwritten;
  try {
    const out = temper(["tokenize", "--tokenizer", dir, "--add-special-tokens"], some.map((t) => JSON.stringify(t)));
    const encs = await hf.encodeBatch(some, { addSpecialTokens: true });
    const bad = some.filter((t, i) => out[i] !== JSON.stringify(encs[i].getIds())).length;
    if (bad) notOk(`${model} add_special_tokens`, `${bad} differ`); else ok(`${model} add_special_tokens`);
    const ids = encs.map((e) => e.getIds());
    const dec = temper(["tokenize", "--tokenizer", dir, "--text", "--skip-special-tokens"], ids.map((a) => JSON.stringify(a)));
    const want = await hf.decodeBatch(ids, true);
    const dbad = some.filter((t, i) => dec[i] !== JSON.stringify(want[i])).length;
    if (dbad) notOk(`${model} decode skip_special_tokens`, `${dbad} differ`); else ok(`${model} decode skip_special_tokens`);
  } catch (e) { notOk(`${model} add_special_tokens`, e.message); }
}
process.exit(failed ? 1 : 0);
