// image/visual_task: the built-in visual math task (`temper task visual`), small
// rendered images whose answer is an integer the verifier grades exactly:
//   dots   coloured dots, no two touching: "How many red dots are there?" (1..9)
//   bars   a bar chart on grey unit gridlines: "How tall is the blue bar?" (1..9)
//   clock  a dial with 12 ticks and one hand: "Which hour does the hand point to?" (1..12)
// Kinds cycle dots, bars, clock, ...; every example has its own stream
// (img_example_rng(seed, i)), so the same seed gives the same files.
// Writes OUT/images/visual_NNNNN.png (224x224, a multiple of 28: Qwen2-VL takes it as
// is) and OUT/visual.jsonl: {"images": ["images/visual_NNNNN.png"], "prompt": ...,
// "answer": "7", "kind": "dots"} (TRL's vision columns; paths relative to OUT).
#pragma once
#include "image/image.h"

#define VISUAL_SIZE 224

typedef struct visual_example {
    const char *kind;
    char prompt[256];
    int answer;
} visual_example;

// Renders example i into *im (allocated here).
int visual_render(img_rgb *im, visual_example *ex, uint64_t seed, int i, tm_error *err);
// n examples under out; *jsonl_path gets OUT/visual.jsonl (cap bytes).
int visual_task_write(const char *out, int n, uint64_t seed, char *jsonl_path, size_t cap, tm_error *err);
