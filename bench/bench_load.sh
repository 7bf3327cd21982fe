#!/usr/bin/env bash
# load lines: temper and PyTorch with and without a competing load (issue 9, item 8).
# The load is one busy loop per core (`while :; do :; done` in bash, normal priority),
# started here before the loaded runs and killed by pid afterwards (and on exit).
# Workload: the generate bench (bench/generate.c, bench/torch_generate.py: tiny model,
# one 32-token prompt, batch 16, LOAD_NEW new tokens each, best of LOAD_REPS after a
# warm-up) and the tiny training step (bench/train_step.c, bench/torch_train_step.py,
# 4 x 256 tokens, mean of LOAD_STEPS after a warm-up step). Small sizes on purpose:
# PyTorch under load runs at a tenth of its speed or less. Each case runs:
#   temper   its default wait policy (cli/omp_wait.h: OMP_WAIT_POLICY=passive unless the
#            user set OMP_WAIT_POLICY or GOMP_SPINCOUNT)
#   spin     temper with libgomp's own default (GOMP_SPINCOUNT=300000 set explicitly:
#            what temper ran with before it chose a policy)
#   torch    PyTorch with its defaults (libgomp and OpenBLAS's pthread pool, spinning)
# The same environment otherwise (scripts/bench: 2 threads, the same OpenBLAS core type).
set -euo pipefail
dir=build/bench-models; mkdir -p "$dir"
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
NEW=${LOAD_NEW:-32}
REPS=${LOAD_REPS:-1}
STEPS=${LOAD_STEPS:-2}
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
name=tiny
[ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" >/dev/null 2>&1
# The user's own choice, if any, is not the default being measured: drop it for the
# default runs (the spin and torch runs set or keep theirs explicitly).
unset OMP_WAIT_POLICY GOMP_SPINCOUNT

pids=()
load_start() {
  for _ in $(seq "$(nproc)"); do (while :; do :; done) & pids+=($!); done
  sleep 1  # let the scheduler spread them
}
load_stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap load_stop EXIT
trap 'exit 130' INT TERM  # then the EXIT trap stops the loops (after the run in progress)

gen() {  # temper|spin|torch -> tok/s
  local m=(--model "$dir/$name" --batch 16 --new "$NEW" --reps "$REPS")
  case $1 in
    temper) field "$(build/bench/generate "${m[@]}")" tok_per_s ;;
    spin)   field "$(GOMP_SPINCOUNT=300000 build/bench/generate "${m[@]}")" tok_per_s ;;
    torch)  field "$(/usr/bin/python3 bench/torch_generate.py "${m[@]}" --threads "${OMP_NUM_THREADS:-2}")" tok_per_s ;;
  esac
}
step() {  # temper|spin|torch -> tok/s
  local m=(--model "$dir/$name" --batch 4 --seq 256 --steps "$STEPS" --warmup 1)
  case $1 in
    temper) field "$(build/bench/train_step "${m[@]}")" tok_per_s ;;
    spin)   field "$(GOMP_SPINCOUNT=300000 build/bench/train_step "${m[@]}")" tok_per_s ;;
    torch)  field "$(/usr/bin/python3 bench/torch_train_step.py "${m[@]}" --threads "${OMP_NUM_THREADS:-2}")" tok_per_s ;;
  esac
}
line() {  # label, function, load label
  local c s t
  c=$($2 temper); s=$($2 spin); t=$($2 torch)
  printf '%s, %s: temper %.0f tok/s (passive), %.0f (libgomp spin), torch %.0f; ratio %.2f, passive/spin %.2f\n' \
    "$1" "$3" "$c" "$s" "$t" "$(echo "$c / $t" | bc -l)" "$(echo "$c / $s" | bc -l)"
}
for load in none busy; do
  what="no added load (load average $(cut -d' ' -f1 /proc/loadavg) before)"
  if [ "$load" = busy ]; then load_start; what="$(nproc) busy loops added"; fi
  line "load generate $name batch 16" gen "$what"
  line "load train_step $name" step "$what"
  echo "  load average $(cut -d' ' -f1-3 /proc/loadavg) after these lines; spin = GOMP_SPINCOUNT=300000 (libgomp's default); $cpu"
  if [ "$load" = busy ]; then load_stop; fi
done
