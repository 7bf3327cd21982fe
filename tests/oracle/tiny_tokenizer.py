"""A byte-level tokenizer with no merges, written as real Hugging Face files, so the
trainer tests can run a model with a 259-token vocabulary and still know every id:
byte b is id b, then <|endoftext|> 256, <|im_start|> 257, <|im_end|> 258 (EOS).
Plain strings therefore tokenize to their UTF-8 bytes. write(dir, vision=True) adds Qwen2-VL's
<|vision_start|> 259, <|vision_end|> 260, <|image_pad|> 261, <|video_pad|> 262: a model made by
`temper init --arch qwen2_5_vl --tokenizer DIR --vocab-size 264` has exactly those ids."""
import json, os

EOS = 258

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))

VISION = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def write(dir, vision=False):
    os.makedirs(dir, exist_ok=True)
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    added = [{"id": 256 + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + (VISION if vision else []))]
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                     "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": []}}
    json.dump(tok, open(os.path.join(dir, "tokenizer.json"), "w"), ensure_ascii=False)
    tmpl = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    json.dump({"eos_token": "<|im_end|>", "bos_token": None, "pad_token": "<|endoftext|>", "chat_template": tmpl},
              open(os.path.join(dir, "tokenizer_config.json"), "w"))
    return dir

def ids(text):
    return list(text.encode("utf-8"))
