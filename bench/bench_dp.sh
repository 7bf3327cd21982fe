#!/usr/bin/env bash
# dp_dpo_step: data parallelism on one machine (issue 16). The same DPO steps (temper dpo,
# global batch B pairs of T tokens, reference log-probs computed before the timed loop)
# as 1 process x 2 threads and as mpirun -np 2 x 1 thread each (B/2 pairs per rank), with
# the time rank 0 spends per step in collectives (the gradient all-reduce, and waiting for
# the other rank). The timer is the trainer's own train_runtime (the step loop only).
# Needs mpirun (scripts/install-deps); without it the line says so.
set -euo pipefail
STEPS=${STEPS:-6}
dir=build/bench-models; mkdir -p "$dir"
cpu=${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}
if ! command -v mpirun >/dev/null 2>&1; then echo "dp_dpo_step: not measured (no mpirun: install openmpi-bin)"; exit 0; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d /tmp/temper-bench-dp.XXXXXX); trap 'rm -rf "$tmp"' EXIT
for cfg in "tiny 8 256"; do
  set -- $cfg
  name=$1 B=$2 T=$3
  [ -f "$dir/$name/model.safetensors" ] || build/temper init --arch llama --preset "$name" --out "$dir/$name" 2>/dev/null
  /usr/bin/python3 - "$tmp/pairs.jsonl" "$T" "$((B * STEPS))" <<'P'
import json, random, sys
path, T, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(0)
with open(path, "w") as f:
    for i in range(n):
        ids = lambda k: [r.randrange(3, 250) for _ in range(k)]
        f.write(json.dumps({"prompt_input_ids": ids(T // 2), "chosen_input_ids": ids(T // 2), "rejected_input_ids": ids(T // 2)}) + "\n")
P
  args=(dpo --model "$dir/$name" --data "$tmp/pairs.jsonl" --max-steps "$STEPS" --save-steps 0 --logging-steps 100 --quiet --max-length $T)
  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 build/temper "${args[@]}" --output-dir "$tmp/one" --per-device-train-batch-size "$B" 2>/dev/null
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS \
    build/temper "${args[@]}" --output-dir "$tmp/two" --per-device-train-batch-size "$((B / 2))" 2>/dev/null
  # the all-reduce alone, on an array the size of the gradient (bench/allreduce.c)
  nf=$(/usr/bin/python3 -c "
import json, struct, sys
f = open(sys.argv[1], 'rb'); h = json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))
n = 0
for k, v in h.items():
    if k != '__metadata__':
        p = 1
        for d in v['shape']: p *= d
        n += p
print(n)" "$dir/$name/model.safetensors")
  ar=$(OMP_NUM_THREADS=1 mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS build/bench/allreduce --floats "$nf" --reps 10 2>/dev/null)
  /usr/bin/python3 - "$tmp/one/metrics.jsonl" "$tmp/two/metrics.jsonl" "$nf" "$B" "$STEPS" "$name" "$ar" <<'P'
import json, struct, sys
one, two, n, B, steps, name, ar = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], json.loads(sys.argv[7])
last = lambda p: json.loads(open(p).read().splitlines()[-1])
a, b = last(one), last(two)
pa, pb = B * steps / a["train_runtime"], B * steps / b["train_runtime"]
print("dp_dpo_step %s: 1 process x 2 threads %.3f pairs/s, 2 processes x 1 thread %.3f pairs/s, ratio %.2f, "
      "collectives %.1f ms/step on rank 0 (all-reduce alone: %.1f ms for %.1f MB fp32, %.2f GB/s per rank)"
      % (name, pa, pb, pb / pa, 1e3 * b["dist_seconds_per_step"], ar["ms"], 4 * n / 1e6, ar["gbytes_per_s"]))
P
  echo "  global batch $B pairs x $T tokens, $STEPS steps, the same OpenBLAS; $cpu"
done
