// Chat-template parity: `temper tokenize --chat --render` against @huggingface/jinja
// rendering the chat_template string of each real tokenizer_config.json (and of two
// well-known templates written here), with and without the generation prompt; then
// the ids of `temper tokenize --chat` against Hugging Face encoding the rendering.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@anush008/tokenizers";
import { models, root, projectData } from "./corpus.mjs";

const TEMPER = process.env.TEMPER || path.join(root, "build/temper");
let failed = 0;
const ok = (name) => console.log(`ok - ${name}`);
const notOk = (name, detail) => { failed++; console.log(`not ok - ${name}: ${detail}`); };

function temper(args, lines) {
  const r = spawnSync(TEMPER, args, { input: lines.join("\n") + "\n", maxBuffer: 1 << 30, encoding: "utf8" });
  return { status: r.status, out: r.stdout.split("\n").slice(0, lines.length), err: r.stderr };
}

const U = (content) => ({ role: "user", content });
const A = (content) => ({ role: "assistant", content });
const S = (content) => ({ role: "system", content });
const T = (content) => ({ role: "tool", content });
const convs = [
  [U("What is 2+2?")],
  [S("You are a helpful math assistant."), U("What is 2+2?")],
  [U("What is 2+2?"), A("2+2 = 4. The answer is \\boxed{4}.")],
  [S("Be brief."), U("Hi"), A("Hello!"), U("  Compute 3*7.\n\n"), A("\n21  ")],
  [U("Solve x^2=4"), A("<think>\nx could be 2 or -2.\n</think>\n\nThe solutions are $x=\\pm 2$.")],
  [U("q1"), A("<think>r1</think>a1"), U("q2"), A("<think>\n\nr2\n\n</think>\n\n\na2")],
  [U("Compute 12*13 with code."), A("```python\nprint(12*13)\n```"), U("```output\n156\n```"), A("The answer is \\boxed{156}.")],
  [U("中文问题：1+1=？"), A("答案是 2 😀")],
  [U("<tool_response>\nx\n</tool_response>"), A("ok")],
  [U(""), A("")],
];
const toolConvs = [
  [U("Compute 12*13."), A("```python\nprint(12*13)\n```"), T("156"), A("The answer is 156.")],
  [U("Two calls"), A("call"), T("out1"), T("out2"), A("done")],
];
const d = projectData();
{
  const rows = fs.readFileSync(path.join(d, "gsm8k/test.jsonl"), "utf8").split("\n").filter(Boolean).slice(0, 50).map((l) => JSON.parse(l));
  for (const r of rows) convs.push([U(r.question), A(r.answer)]);
}

const LLAMA3_INSTRUCT = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const cases = [];
for (const [model, dir] of Object.entries(models)) {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const tok = (k) => (typeof cfg[k] === "object" && cfg[k] ? cfg[k].content : cfg[k]) ?? "";
  cases.push({ model, dir, name: `${model} (tokenizer_config.json)`, template: cfg.chat_template, bos: tok("bos_token"), eos: tok("eos_token"), flag: [] });
}
cases.push({ model: "llama3", dir: models.llama3, name: "llama3-instruct template", template: LLAMA3_INSTRUCT, bos: "<|begin_of_text|>", eos: "<|eot_id|>", flag: ["--chat-template", "llama3"] });
cases.push({ model: "qwen3", dir: models.qwen3, name: "plain chatml template", template: CHATML, bos: "", eos: "<|im_end|>", flag: ["--chat-template", "chatml"] });

for (const c of cases) {
  const tmpl = new Template(c.template);
  const hf = Tokenizer.fromFile(path.join(c.dir, "tokenizer.json"));
  const all = c.model === "gemma3" ? convs : [...convs, ...toolConvs];
  for (const gen of [false, true]) {
    for (const thinking of c.model === "qwen3" && gen ? [true, false] : [true]) {
      const name = `${c.name} render, add_generation_prompt=${gen}${thinking ? "" : ", enable_thinking=false"}`;
      const want = [], good = [];
      for (const m of all) {
        try {
          const vars = { messages: m, bos_token: c.bos, eos_token: c.eos, add_generation_prompt: gen };
          if (!thinking) vars.enable_thinking = false;
          want.push(tmpl.render(vars)); good.push(m);
        } catch (e) { /* the template refuses this conversation: checked below */ }
      }
      const args = ["tokenize", "--tokenizer", c.dir, "--chat", ...c.flag, ...(gen ? ["--add-generation-prompt"] : []), ...(thinking ? [] : ["--no-thinking"])];
      const r = temper([...args, "--render"], good.map((m) => JSON.stringify(m)));
      if (r.status !== 0) { notOk(name, r.err); continue; }
      const bad = want.map((w, i) => (r.out[i] === JSON.stringify(w) ? -1 : i)).filter((i) => i >= 0);
      if (bad.length) notOk(name, `${bad.length}/${want.length} differ; first conv ${JSON.stringify(good[bad[0]]).slice(0, 200)}\n   temper ${r.out[bad[0]].slice(0, 400)}\n   jinja  ${JSON.stringify(want[bad[0]]).slice(0, 400)}`);
      else ok(`${name}: ${want.length} conversations identical`);

      const ri = temper(args, good.map((m) => JSON.stringify(m)));
      const encs = await hf.encodeBatch(want, { addSpecialTokens: false });
      const ibad = encs.filter((e, i) => ri.out[i] !== JSON.stringify(e.getIds())).length;
      if (ri.status !== 0 || ibad) notOk(`${c.name} ids gen=${gen}`, ri.status ? ri.err : `${ibad} differ`);
      else ok(`${c.name} ids of the rendering, add_generation_prompt=${gen}`);
    }
  }
  // conversations the template refuses are refused by temper too
  for (const m of c.model === "gemma3" ? [...toolConvs, [A("x")], [U("a"), U("b")]] : []) {
    let threw = false;
    try { tmpl.render({ messages: m, bos_token: c.bos, add_generation_prompt: false }); } catch { threw = true; }
    const r = temper(["tokenize", "--tokenizer", c.dir, "--chat", "--render", ...c.flag], [JSON.stringify(m)]);
    if (threw === (r.status !== 0)) ok(`${c.name} refuses ${JSON.stringify(m.map((x) => x.role))} as jinja does`);
    else notOk(`${c.name} refusal ${JSON.stringify(m.map((x) => x.role))}`, `jinja threw=${threw}, temper status=${r.status}`);
  }
}
process.exit(failed ? 1 : 0);
