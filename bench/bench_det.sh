#!/usr/bin/env bash
# deterministic lines (issue 15): what --deterministic costs, temper against itself in one
# process (no PyTorch side: the comparison is OpenBLAS's forward GEMMs against temper's
# fixed-order ones). forward: model_forward over B x T tokens, the two alternated, best of
# REPS each (bench/det_forward.c). generate: the sampler at batch 1 and 16, the two runs
# alternated twice, best of each.
set -euo pipefail
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
REPS=${REPS:-4} NEW=${NEW:-64}
for cfg in "tiny 8 256" "small 4 512"; do
  set -- $cfg
  name=$1 B=$2 T=$3
  [ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" 2>/dev/null
  c=$(build/bench/det_forward --model "$dir/$name" --batch "$B" --seq "$T" --reps "$REPS")
  printf 'deterministic forward %s (%dx%d): openblas %.0f tok/s, deterministic %.0f tok/s, time ratio %.2f (load %s)\n' "$name" "$B" "$T" \
    "$(field "$c" openblas_tok_per_s)" "$(field "$c" deterministic_tok_per_s)" "$(field "$c" time_ratio)" "$(cut -d' ' -f1 /proc/loadavg)"
  for G in 1 16; do
    a=0 d=0
    for rep in 1 2; do
      x=$(field "$(build/bench/generate --model "$dir/$name" --batch "$G" --new "$NEW")" tok_per_s)
      y=$(field "$(TEMPER_DETERMINISTIC=1 build/bench/generate --model "$dir/$name" --batch "$G" --new "$NEW")" tok_per_s)
      a=$(echo "if ($x > $a) $x else $a" | bc -l); d=$(echo "if ($y > $d) $y else $d" | bc -l)
    done
    printf 'deterministic generate %s batch %d: default %.0f tok/s, deterministic %.0f tok/s, ratio %.2f\n' "$name" "$G" "$a" "$d" "$(echo "$d / $a" | bc -l)"
  done
  echo "  $cpu"
done
