// temper merge: a PEFT LoRA adapter folded into its base (PEFT's merge_and_unload):
// W <- W + s B A for every adapted projection, the modules_to_save tensors taken from the
// adapter, written as a plain Hugging Face directory in the base's dtype.
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/flags.h"
#include "model/lora.h"
#include "model/model.h"

int cmd_merge(int argc, char **argv) {
    const char *base = NULL, *adapter = NULL, *out = NULL;
    flag flags[] = {
        {"model", FLAG_STR, &base, "the base model directory (default: the adapter's base_model_name_or_path); or the adapter directory"},
        {"adapter", FLAG_STR, &adapter, "the PEFT adapter directory (adapter_config.json, adapter_model.safetensors)"},
        {"base-model", FLAG_STR, &base, "same as --model"},
        {"out", FLAG_STR, &out, "output directory (required): config.json, model.safetensors, tokenizer files"},
    };
    int rc = flags_parse("merge", "--model BASE --adapter DIR --out DIR", flags, sizeof flags / sizeof flags[0], argc, argv, NULL, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!adapter && base && lora_is_adapter_dir(base)) adapter = base, base = NULL;  // --model ADAPTER
    if (!adapter || !out) return cli_fail("merge", "--adapter DIR and --out DIR are required");
    if (!lora_is_adapter_dir(adapter)) return cli_fail("merge", "%s is not a PEFT adapter directory (no adapter_config.json)", adapter);
    if ((base && !strcmp(base, out)) || !strcmp(adapter, out)) return cli_fail("merge", "--out must differ from --model and --adapter");
    tm_error err;
    model m;
    lora_set_base_override(base);
    rc = model_load(&m, adapter, &err);
    lora_set_base_override(NULL);
    if (rc) return cli_fail("merge", "%s", err.msg);
    int targets = m.lora ? __builtin_popcount(m.lora->cfg.targets) : 0;
    if (model_lora_merge(&m, &err) || model_save(&m, out, 0, &err)) {
        model_free(&m);
        return cli_fail("merge", "%s", err.msg);
    }
    if (!flags_quiet) fprintf(stderr, "temper merge: %s + %s (%d projection kinds per layer) -> %s\n", m.source_dir, adapter, targets, out);
    model_free(&m);
    return 0;
}
