#!/usr/bin/env bash
# grpo_step lines (issue 11): one GRPO generation batch and its optimizer step, temper
# (bench/grpo_step.c, the library's rollout_run + trainer + grpo_loss) against a PyTorch
# eager step doing the same work (bench/torch_grpo_step.py): PROMPTS prompts of PROMPT
# random tokens x GENS generations, exactly NEW new tokens each (no early stop on either
# side) with a KV cache at temperature 1, then the dapo loss (beta 0) forward/backward in
# micro-batches of MICRO completions and one AdamW step. ratio = torch s/step / temper
# s/step, also split into generation and training (forward + loss, backward, optimizer).
# The load average beside each line: other processes on the machine change these numbers.
# Smaller sizes for a smoke test: CONFIGS=tiny PROMPTS=2 GENS=2 NEW=4 bash bench/bench_grpo.sh
set -euo pipefail
dir=${BENCH_MODELS:-build/bench-models}; mkdir -p "$dir"
CONFIGS=${CONFIGS:-tiny small} PROMPTS=${PROMPTS:-8} GENS=${GENS:-8} NEW=${NEW:-128} PROMPT=${PROMPT:-32}
MICRO=${MICRO:-8} STEPS=${STEPS:-1} WARMUP=${WARMUP:-1}
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
div() { echo "$1 / $2" | bc -l; }
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
for name in $CONFIGS; do
  [ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" 2>/dev/null
  a=(--model "$dir/$name" --prompts "$PROMPTS" --generations "$GENS" --new "$NEW" --prompt "$PROMPT" --micro "$MICRO"
     --steps "$STEPS" --warmup "$WARMUP")
  l0=$(cut -d' ' -f1 /proc/loadavg)
  c=$(build/bench/grpo_step "${a[@]}")
  l1=$(cut -d' ' -f1 /proc/loadavg)
  t=$(/usr/bin/python3 bench/torch_grpo_step.py "${a[@]}" --threads "${OMP_NUM_THREADS:-2}")
  l2=$(cut -d' ' -f1 /proc/loadavg)
  cs=$(field "$c" seconds); ts=$(field "$t" seconds)
  cg=$(field "$c" gen_s); tg=$(field "$t" gen_s)
  ctr=$(echo "$cs - $cg" | bc -l); ttr=$(echo "$ts - $tg" | bc -l)
  printf 'grpo_step %s: temper %.2f s/step (generation %.2f, training %.2f), torch %.2f s/step (generation %.2f, training %.2f), ratio %.2f (generation %.2f, training %.2f)\n' \
    "$name" "$cs" "$cg" "$ctr" "$ts" "$tg" "$ttr" "$(div "$ts" "$cs")" "$(div "$tg" "$cg")" "$(div "$ttr" "$ctr")"
  for side in temper torch; do
    j=$c; [ $side = torch ] && j=$t
    printf '  %s: forward+loss %.2f s, backward %.2f s, optimizer %.3f s; generation %.0f tok/s (%d tokens); peak MiB %.0f\n' \
      "$side" "$(field "$j" fwd_s)" "$(field "$j" bwd_s)" "$(field "$j" opt_s)" "$(field "$j" gen_tok_per_s)" "$(field "$j" gen_tokens)" "$(field "$j" peak_mib)"
  done
  echo "  $PROMPTS prompts x $GENS generations x $NEW new tokens (prompt $PROMPT), micro-batch $MICRO; load average $l0 / $l1 / $l2 (start / after temper / after torch)"
  echo "  temper: $(field "$c" isa) kernels, $(field "$c" blas); torch: ATen $(field "$t" isa); $cpu"
done
