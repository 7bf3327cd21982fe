#!/usr/bin/env bash
# generate lines: temper's KV-cached sampler (bench/generate.c) against a PyTorch eager
# KV-cache loop (bench/torch_generate.py): one 32-token prompt, batch 1 and 16 samples,
# 128 new tokens each, tiny and small configs; and batch-1 decoding against the
# memory-bandwidth bound (weight bytes per token / measured memcpy bandwidth). Both sides
# prefill the prompt once per batch (temper shares the group's prefix; the PyTorch loop
# expands the prompt's cache to the batch).
set -euo pipefail
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
NEW=${NEW:-128}
for name in tiny small; do
  [ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" 2>/dev/null
  for B in 1 16; do
    c=$(build/bench/generate --model "$dir/$name" --batch "$B" --new "$NEW")
    t=$(/usr/bin/python3 bench/torch_generate.py --model "$dir/$name" --batch "$B" --new "$NEW" --threads "${OMP_NUM_THREADS:-2}")
    ct=$(field "$c" tok_per_s); tt=$(field "$t" tok_per_s)
    printf 'generate %s batch %d: temper %.0f tok/s, torch %.0f tok/s, ratio %.2f\n' "$name" "$B" "$ct" "$tt" "$(echo "$ct / $tt" | bc -l)"
    if [ "$B" = 1 ]; then
      printf '  %s batch 1: %.0f tok/s vs memory-bandwidth bound %.0f tok/s (%.1f MB of weights per token / %.1f GB/s memcpy): %.2fx the bound\n' \
        "$name" "$ct" "$(field "$c" bound_tok_per_s)" "$(echo "$(field "$c" weight_bytes) / 1000000" | bc -l)" "$(field "$c" memcpy_gbps)" \
        "$(echo "$(field "$c" bound_tok_per_s) / $ct" | bc -l)"
    fi
    echo "  temper: $(field "$c" isa) kernels, $(field "$c" blas); torch: ATen $(field "$t" isa); $cpu"
  done
done
