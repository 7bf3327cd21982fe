// temper init: write a randomly initialized Hugging Face model directory.
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

int cmd_init(int argc, char **argv) {
    const char *arch = NULL, *preset = "tiny", *out = NULL, *dtype = NULL, *tokenizer = NULL;
    int seed = 0, tie = 0, vocab = 0;
    flag flags[] = {
        {"arch", FLAG_STR, &arch, "llama | qwen2 | qwen3 | gemma3 (Gemma3ForCausalLM, the text model) | qwen2_5_vl (Qwen2_5_VLForConditionalGeneration) | qwen2_vl (Qwen2VLForConditionalGeneration); default llama (qwen3 for the qwen3-* presets)"},
        {"preset", FLAG_STR, &preset, "tiny (4 layers, d 256; gemma3: 8) | small (12 layers, d 768) | qwen3-0.6b | qwen3-1.7b | qwen3-8b (the released shapes)"},
        {"out", FLAG_STR, &out, "output directory (required)"},
        {"seed", FLAG_INT, &seed, "random seed"},
        {"tie-word-embeddings", FLAG_BOOL, &tie, "share the embedding and lm_head matrices (gemma3: always, as Gemma 3)"},
        {"vocab-size", FLAG_INT, &vocab, "override the preset's vocabulary size"},
        {"dtype", FLAG_STR, &dtype, "float32 | bfloat16 | float16 (stored weights; default float32, bfloat16 for the qwen3-* presets)"},
        {"tokenizer", FLAG_STR, &tokenizer, "size the vocabulary from this tokenizer directory and copy its files in"},
    };
    int rc = flags_parse("init", "--arch A --preset P --out DIR", flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!out) return cli_fail("init", "--out DIR is required");
    int qwen3_shape = config_is_qwen3_preset(preset);
    if (!arch) arch = qwen3_shape ? "qwen3" : "llama";
    if (!dtype) dtype = qwen3_shape ? "bfloat16" : "float32";
    model_arch a;
    if (model_arch_from_short(arch, &a)) return cli_fail("init", "unknown --arch \"%s\" (llama, qwen2, qwen3, gemma3, qwen2_5_vl, qwen2_vl)", arch);
    tm_error err;
    model_config c;
    if (config_preset(&c, a, preset, &err)) return cli_fail("init", "%s", err.msg);
    c.tie_embeddings = c.tie_embeddings || tie;  // the gemma3 preset ties, as Gemma 3 does
    if (vocab < 0) return cli_fail("init", "--vocab-size must be positive (got %d)", vocab);
    if (vocab > 0) c.vocab = vocab;
    if (tokenizer) {
        tok_tokenizer *t = tok_load(tokenizer, &err);
        if (!t) return cli_fail("init", "%s", err.msg);
        int need = tok_vocab_size(t);
        if (vocab > 0 && vocab < need) {
            tok_free(t);
            return cli_fail("init", "--vocab-size %d is smaller than the tokenizer's %d ids (%s): the model could not embed every token",
                            vocab, need, tokenizer);
        }
        if (vocab <= 0) c.vocab = need;
        c.bos_token_id = tok_bos_id(t);
        c.eos_token_id = tok_eos_id(t);
        tok_free(t);
    }
    if (model_arch_is_vl(a) && c.image_token_id >= c.vocab) {  // a smaller vocabulary: the vision ids move to its top
        c.vision_start_token_id = c.vocab - 5, c.vision_end_token_id = c.vocab - 4;
        c.image_token_id = c.vocab - 3, c.video_token_id = c.vocab - 2;
    }
    // the table only: the weights are drawn as they are written, so an 8B model needs no 32 GB
    model m;
    if (model_create_shape(&m, &c, &err)) return cli_fail("init", "%s", err.msg);
    if (tokenizer && !(m.source_dir = strdup(tokenizer))) { model_free(&m); return cli_fail("init", "out of memory"); }  // model_save copies the tokenizer files from here
    if (!strcmp(dtype, "bfloat16")) m.file_dtype = ST_BF16;
    else if (!strcmp(dtype, "float16")) m.file_dtype = ST_F16;
    else if (strcmp(dtype, "float32")) { model_free(&m); return cli_fail("init", "unknown --dtype \"%s\"", dtype); }
    rc = model_save_random(&m, out, (uint64_t)seed, &err);
    size_t n = m.numel;
    model_free(&m);
    if (rc) return cli_fail("init", "%s", err.msg);
    if (!flags_quiet) fprintf(stderr, "temper init: %s %s, %.2fM parameters -> %s\n", model_arch_name(a), preset, (double)n / 1e6, out);
    return 0;
}
