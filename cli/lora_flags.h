// cli/lora_flags.h: the LoRA flags every trainer takes, with PEFT's / TRL's names
// (TRL's ModelConfig: use_peft, lora_r, lora_alpha, lora_dropout, lora_target_modules,
// use_rslora, lora_modules_to_save as --modules-to-save). la is a lora_args (model/lora.h).
#pragma once
#include "model/lora.h"

#define LORA_FLAGS(la)                                                                                                       \
    {"use-peft", FLAG_BOOL, &(la).use_peft, "train LoRA adapters (PEFT), base frozen; output is a PEFT adapter directory; the reference is the base (adapters off)"}, \
    {"lora-r", FLAG_INT, &(la).r, "LoRA rank"},                                                                             \
    {"lora-alpha", FLAG_FLOAT, &(la).alpha, "LoRA alpha: scale alpha/r (alpha/sqrt(r) with --use-rslora)"},                 \
    {"lora-dropout", FLAG_FLOAT, &(la).dropout, "dropout on the adapters' input in training forwards (deterministic, resumable)"},             \
    {"lora-target-modules", FLAG_STR, &(la).target_modules, "all-linear or q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (default q_proj,v_proj)"}, \
    {"use-rslora", FLAG_BOOL, &(la).use_rslora, "rank-stabilized LoRA scale alpha/sqrt(r)"},                                \
    {"modules-to-save", FLAG_STR, &(la).modules_to_save, "modules trained fully beside the adapters (e.g. lm_head,embed_tokens)"}
