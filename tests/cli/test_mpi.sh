#!/usr/bin/env bash
# Data parallelism over MPI (issue 16; docs/distributed.md), under mpirun --oversubscribe
# -np 2 with one thread per rank, on tiny models:
# - dpo on 2 ranks (per-device batch 2) = one process with the same global batch (batch 2,
#   accumulation 2): every logged loss (and DPO's reward margins and log-probs) within 1e-6
#   relative, the gradient norm within 1e-5 (its sum of squares is taken in another order);
# - --zero 1 (AdamW state sharded) gives the same weights and optimizer state, byte for byte;
# - a grpo run on 2 ranks matches one process with the same generation batch (1e-6 relative);
#   under --bf16 too;
# - ppo on 2 ranks matches one process with the same batch (shared value head, and a separate
#   value model under --zero 1, whose checkpoint one process resumes); --zero 1 the same bytes;
# - SIGKILL of rank 1 mid-run: mpirun ends the job promptly naming rank 1, the last
#   checkpoint is complete, and resuming it with one process continues as the whole run;
# - a stopped rank (SIGSTOP): the others time out (TEMPER_DIST_TIMEOUT) naming it, no hang;
# - temper sample under -np 2 writes the same bytes as -np 1 and as one process; eval the
#   same samples.jsonl and summary.json;
# - run by hand, temper does not start MPI (strace: no OpenMPI component opened);
# - a command that is not data parallel (init) refuses to run under mpirun;
# - the collectives (tests/unit/test_dist.c) on 3 ranks: rank-order sums, bit for bit.
# mpirun missing is a failure, not a skip: make check installs OpenMPI (scripts/install-deps).
cd "$(dirname "$0")/../.."
T=$(realpath "${TEMPER:-build/temper}")
fail=0
ok() { if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fail=1; fi; }
if ! command -v mpirun >/dev/null 2>&1; then
  echo "not ok - mpirun is missing: install openmpi-bin (scripts/install-deps)"
  exit 1
fi
tmp=$(mktemp -d /tmp/temper-mpi.XXXXXX); trap 'rm -rf "$tmp"' EXIT
PY=/usr/bin/python3
export OMP_NUM_THREADS=1
# OpenMPI refuses root without both of these (containers and CI run as root)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI="mpirun --oversubscribe -np 2"
REPO=$PWD
cd "$tmp"

"$T" init --preset tiny --out m --seed 3 2>/dev/null
$PY -c "import sys; sys.path.insert(0, '$REPO/tests/oracle'); import tiny_tokenizer; tiny_tokenizer.write('tok')"
"$T" init --arch llama --preset tiny --tokenizer tok --out ms --seed 3 2>/dev/null
$PY - <<'P'
import json
with open("dpo.jsonl", "w") as f:
    for i in range(16):
        f.write(json.dumps({"prompt_input_ids": [1, 2, 3 + i, 9, 10 + i], "chosen_input_ids": [4, 5, 6 + i % 3],
                            "rejected_input_ids": [7, 8 + i % 5, 20 + i, 21]}) + "\n")
with open("g.jsonl", "w") as f:
    for a in range(5):
        for b in range(5): f.write(json.dumps({"prompt": f"{a}+{b}=", "answer": str(a + b)}) + "\n")
P
# compare.py A B KEY[:TOL],... [from_step]: the logged values of each key agree within TOL
# relative (1e-6 unless given)
cat > compare.py <<'P'
import json, sys
a, b = sys.argv[1], sys.argv[2]
keys = [(k.split(":")[0], float(k.split(":")[1]) if ":" in k else 1e-6) for k in sys.argv[3].split(",")]
since = int(sys.argv[4]) if len(sys.argv) > 4 else 0
def rows(p): return {r["step"]: r for r in map(json.loads, open(p)) if "loss" in r and r["step"] > since}
A, B = rows(a), rows(b)
worst, n, bad = 0.0, 0, []
for s in sorted(B):
    for k, tol in keys:
        x, y = A[s][k], B[s][k]
        d = abs(x - y) / max(abs(x), 1e-12); n += 1
        worst = max(worst, d)
        if d > tol: bad.append("%s at step %d: %r vs %r" % (k, s, x, y))
print("%d values, worst relative difference %.2e" % (n, worst), "; ".join(bad[:2]), "PASS" if n and not bad else "FAIL")
P
t_start=$(date +%s.%N)

# ---- the collectives themselves on 3 ranks (tests/unit/test_dist.c), in rounds of 1000
# elements so that the 100003-element sums take many
TEMPER_DIST_ROUND=1000 mpirun --oversubscribe -np 3 -x TEMPER_DIST_ROUND "$REPO/build/tests/test_dist" 2>/dev/null | grep -E '^(not )?ok'
[ ${PIPESTATUS[0]} -eq 0 ] || { echo "not ok - test_dist under mpirun -np 3 exits 0"; fail=1; }

# ---- dpo: 2 ranks = 1 process with the same global batch; --zero 1 = --zero 0
D="--model m --data dpo.jsonl --max-steps 6 --lr-scheduler-type constant --learning-rate 1e-3 --logging-steps 1 --save-steps 3 --quiet"
"$T" dpo $D --output-dir one --per-device-train-batch-size 2 --gradient-accumulation-steps 2 2>/dev/null
$MPI "$T" dpo $D --output-dir two --per-device-train-batch-size 2 2>two.err; rc=$?
ok "dpo under mpirun -np 2 exits 0 (rc $rc)" '[ $rc -eq 0 ] && [ -f two/model.safetensors ]'
r=$($PY compare.py one/metrics.jsonl two/metrics.jsonl loss,rewards/margins,logps/chosen,logps/rejected,grad_norm:1e-5)
ok "dpo -np 2 = 1 process, global batch 4, 6 steps: $r" '[[ "$r" == *PASS ]]'
ok "dpo: rank 0 alone writes metrics.jsonl: one line per step and the summary ($(wc -l <two/metrics.jsonl))" '[ $(wc -l <two/metrics.jsonl) -eq 7 ]'
$MPI "$T" dpo $D --output-dir zero --per-device-train-batch-size 2 --zero 1 2>/dev/null
ok "--zero 1: the same weights as --zero 0, byte for byte" 'cmp -s two/model.safetensors zero/model.safetensors'
ok "--zero 1: the checkpoint's AdamW state (gathered from the shards) is the same, byte for byte" \
   'cmp -s two/checkpoint-6/optimizer.safetensors zero/checkpoint-6/optimizer.safetensors'

# ---- grpo: 2 ranks (4 completions each) = 1 process (8), rewards that vary (DAPO overlong), β > 0
G="--model ms --data g.jsonl --num-generations 4 --max-completion-length 8 --overlong-buffer-len 6 --reward-weights 0,0,1 --beta 0.1
   --lr-scheduler-type constant --learning-rate 1e-3 --logging-steps 1 --save-steps 0 --max-steps 2 --quiet"
"$T" grpo $G --output-dir g1 --per-device-train-batch-size 8 2>/dev/null
$MPI "$T" grpo $G --output-dir g2 --per-device-train-batch-size 4 2>/dev/null; rc=$?
r=$($PY compare.py g1/metrics.jsonl g2/metrics.jsonl loss,grad_norm:1e-5,reward,reward_std,kl,entropy,num_tokens)
ok "grpo -np 2 = 1 process, 8 completions per step, 2 steps (rc $rc): $r" '[ $rc -eq 0 ] && [[ "$r" == *PASS ]]'
# --bf16: the same under mixed precision; the second step shows that every rank's bf16 copy of
# the weights followed the data-parallel update (trainer_step_all refreshes it)
"$T" grpo $G --bf16 --output-dir gb1 --per-device-train-batch-size 8 2>/dev/null
$MPI "$T" grpo $G --bf16 --output-dir gb2 --per-device-train-batch-size 4 2>/dev/null; rc=$?
r=$($PY compare.py gb1/metrics.jsonl gb2/metrics.jsonl loss,grad_norm:1e-5,reward,kl,num_tokens)
ok "grpo --bf16 -np 2 = 1 process --bf16, 2 steps (rc $rc): $r" '[ $rc -eq 0 ] && [[ "$r" == *PASS ]]'

# ---- ppo: 2 ranks (4 sequences each) = 1 process (8, as 2 micro-batches), 1 mini-batch, 2 PPO
# epochs, a KL reward and scores that vary (the missing-EOS penalty): whitening, token counts and
# critic gradients are the whole batch's. The *_avg metrics (means of micro-batch means, TRL's)
# are not compared: each rank permutes its own sequences, so the micro-batches differ.
PP="--model ms --data g.jsonl --response-length 8 --missing-eos-penalty 1 --kl-coef 0.1 --num-ppo-epochs 2 --max-steps 2
    --lr-scheduler-type constant --learning-rate 1e-3 --logging-steps 1 --save-steps 0 --quiet"
PK="loss,grad_norm:1e-5,objective/kl:1e-5,objective/non_score_reward:1e-5,objective/rlhf_reward,objective/scores,objective/entropy,completions/mean_length,val/num_eos_tokens,episode"
"$T" ppo $PP --output-dir q1 --per-device-train-batch-size 4 --gradient-accumulation-steps 2 2>/dev/null
$MPI "$T" ppo $PP --output-dir q2 --per-device-train-batch-size 4 2>/dev/null; rc=$?
r=$($PY compare.py q1/metrics.jsonl q2/metrics.jsonl $PK)
ok "ppo (shared value head) -np 2 = 1 process, 8 sequences per step, 2 steps (rc $rc): $r" '[ $rc -eq 0 ] && [[ "$r" == *PASS ]]'
$MPI "$T" ppo $PP --output-dir q3 --per-device-train-batch-size 4 --zero 1 2>/dev/null
ok "ppo --zero 1: the same policy and value head as --zero 0, byte for byte" \
   'cmp -s q2/model.safetensors q3/model.safetensors && cmp -s q2/value_head.safetensors q3/value_head.safetensors'
"$T" ppo $PP --value-model ms --output-dir v1 --per-device-train-batch-size 4 --gradient-accumulation-steps 2 2>/dev/null
$MPI "$T" ppo $PP --value-model ms --output-dir v2 --per-device-train-batch-size 4 --zero 1 --save-steps 1 2>/dev/null; rc=$?
# the PPO loss is a small difference of terms (0.029): 2 ranks sum the value model's gradients
# in another order, which moves it by ~1e-6 relative in the portable (x86-64-v3) build
r=$($PY compare.py v1/metrics.jsonl v2/metrics.jsonl "${PK/loss,/loss:3e-6,}")
ok "ppo (separate value model, --zero 1) -np 2 = 1 process (rc $rc): $r" '[ $rc -eq 0 ] && [[ "$r" == *PASS ]] && [ -f v2/value_model/checkpoint-1/optimizer.safetensors ]'
rm -f v2/model.safetensors
"$T" ppo $PP --value-model ms --output-dir v2 --per-device-train-batch-size 4 --gradient-accumulation-steps 2 --resume-from-checkpoint last 2>/dev/null; rc=$?
r=$($PY compare.py v1/metrics.jsonl v2/metrics.jsonl $PK 1)
ok "ppo: 1 process resumes the 2-rank checkpoint (policy, value model, sharded AdamW) and step 2 equals the whole run's (rc $rc): $r" \
   '[ $rc -eq 0 ] && [[ "$r" == *PASS ]]'

# ---- SIGKILL of rank 1: the job ends, the last checkpoint is whole, 1 process resumes it
rank1() { for p in $(pgrep -P "$1"); do tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && echo $p; done; }
$MPI "$T" dpo $D --output-dir kill --per-device-train-batch-size 2 --max-steps 400 --save-steps 2 2>kill.err & mp=$!
for i in $(seq 400); do [ -d kill/checkpoint-2 ] && break; sleep 0.05; done
r1=$(rank1 $mp)
kill -9 $r1; t0=$(date +%s); wait $mp; rc=$?; t1=$(date +%s)
ok "SIGKILL of rank 1 (pid $r1): mpirun ends the job in $((t1 - t0)) s, exit $rc" '[ -n "$r1" ] && [ $rc -ne 0 ] && [ $((t1 - t0)) -le 20 ]'
ok "mpirun names the rank that died" 'grep -q "rank 1 .*exited on signal 9" kill.err'
last=$(ls -d kill/checkpoint-* | grep -v tmp | sort -t- -k2 -n | tail -1)
ok "the last checkpoint ($last) is complete" '[ -f $last/model.safetensors ] && [ -f $last/optimizer.safetensors ] && [ -f $last/trainer_state.json ]'
"$T" dpo $D --output-dir kill --per-device-train-batch-size 2 --gradient-accumulation-steps 2 --resume-from-checkpoint last 2>resume.err; rc=$?
step=${last##*-}
r=$($PY compare.py one/metrics.jsonl kill/metrics.jsonl loss,grad_norm:1e-5 "$step")
ok "resumed with 1 process from step $step to 6 (rc $rc): the steps after it equal the whole run's: $r" '[ $rc -eq 0 ] && [[ "$r" == *PASS ]]'

# ---- a stopped rank: the collective times out on the others, naming it
TEMPER_DIST_TIMEOUT=2 $MPI -x TEMPER_DIST_TIMEOUT "$T" dpo $D --output-dir stop --per-device-train-batch-size 2 --max-steps 400 2>stop.err & mp=$!
for i in $(seq 400); do [ -f stop/metrics.jsonl ] && [ -s stop/metrics.jsonl ] && break; sleep 0.05; done
r1=$(rank1 $mp)
kill -STOP $r1; t0=$(date +%s); wait $mp; rc=$?; t1=$(date +%s)
ok "SIGSTOP of rank 1: the job ends in $((t1 - t0)) s (timeout 2 s), exit $rc" '[ $rc -ne 0 ] && [ $((t1 - t0)) -le 20 ]'
ok "the error names the rank it waited for" 'grep -q "timed out after 2 s on rank 0 of 2 waiting for rank 1" stop.err'
kill -9 $r1 2>/dev/null

# ---- temper sample: the same bytes on 2 ranks, 1 rank and no mpirun
S="--model ms --data g.jsonl --limit 5 --n 3 --max-new-tokens 12 --seed 7 --batch 1 --quiet"
"$T" sample $S --out s0.jsonl 2>/dev/null
mpirun --oversubscribe -np 1 "$T" sample $S --out s1.jsonl 2>/dev/null
$MPI "$T" sample $S --out s2.jsonl 2>/dev/null; rc=$?
ok "sample -np 2 (rc $rc) is byte-identical to -np 1 and to one process ($(wc -l <s2.jsonl) lines)" \
   '[ $rc -eq 0 ] && [ -s s2.jsonl ] && cmp -s s0.jsonl s1.jsonl && cmp -s s1.jsonl s2.jsonl'

E="--model ms --data g.jsonl --limit 5 --n 3 --max-new-tokens 12 --seed 7 --batch 1 --quiet --save-ids"
"$T" eval $E --output-dir e1 2>/dev/null
$MPI "$T" eval $E --output-dir e2 2>/dev/null; rc=$?
ok "eval -np 2 (rc $rc): the same samples.jsonl and summary.json (but for the timings) as one process" \
   '[ $rc -eq 0 ] && cmp -s e1/samples.jsonl e2/samples.jsonl && diff <(grep -v second e1/summary.json) <(grep -v second e2/summary.json) >/dev/null'

# ---- online-dpo: the round's sampling is sharded by chunks of prompts and gathered; a round
# of 40 prompts (2 chunks) on 2 ranks writes the same samples.jsonl and data.json as one
# process (the random model answers nothing right: no pairs, no training)
$PY -c "
import json
with open('o.jsonl', 'w') as f:
    for i in range(40): f.write(json.dumps({'prompt': '%d+%d=' % (i % 7, i % 5), 'answer': str(i % 7 + i % 5)}) + '\n')"
O="--model ms --data o.jsonl --num-generations 2 --max-completion-length 6 --rounds 1 --quiet"
"$T" online-dpo $O --output-dir o1 2>/dev/null
$MPI "$T" online-dpo $O --output-dir o2 2>/dev/null; rc=$?
ok "online-dpo -np 2 (rc $rc): round 1's samples.jsonl and data.json equal one process's, byte for byte" \
   '[ $rc -eq 0 ] && [ -s o2/round-1/samples.jsonl ] && cmp -s o1/round-1/samples.jsonl o2/round-1/samples.jsonl && cmp -s o1/round-1/data.json o2/round-1/data.json'

# ---- run by hand, temper never starts MPI (MPI_Init loads OpenMPI's mca_* components; under
# mpirun -np 1 the same command does, which shows the check can fail)
S1="--model ms --data g.jsonl --limit 2 --n 1 --max-new-tokens 4 --seed 7 --quiet"
strace -f -e trace=openat -o tr0.txt "$T" sample $S1 --out x0.jsonl 2>/dev/null
mpirun --oversubscribe -np 1 strace -f -e trace=openat -o tr1.txt "$T" sample $S1 --out x1.jsonl 2>/dev/null
ok "without mpirun no MPI component is loaded ($(grep -c mca_ tr0.txt) opened; $(grep -c mca_ tr1.txt) under mpirun -np 1)" \
   '[ -s tr0.txt ] && ! grep -q "openmpi.*mca_" tr0.txt && grep -q "openmpi.*mca_" tr1.txt'

# ---- not data parallel: refused, not run twice
$MPI "$T" init --preset tiny --out p --seed 3 2>init.err; rc=$?
ok "init under mpirun -np 2 is refused with a message (rc $rc)" '[ $rc -ne 0 ] && grep -q "does not run under mpirun yet" init.err && [ ! -e p ]'
echo "# test_mpi: $(echo "$(date +%s.%N) - $t_start" | bc | cut -c1-5) s"
exit $fail
