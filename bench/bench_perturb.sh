#!/usr/bin/env bash
# perturb lines: images/s of each Vision Matters perturbation, temper (bench/perturb.c)
# against the repo's Python operations (bench/perturb_ref.py: OpenCV 4, Pillow, PyTorch),
# in memory on the same 16 images of about 448x336, one thread each.
set -euo pipefail
MAKEFLAGS= make --no-print-directory -s build/bench/perturb >/dev/null
if ! /usr/bin/python3 -c "import cv2, PIL, torch" 2>/dev/null; then
  echo "perturb: skipped (python3-opencv, python3-pil or python3-torch missing: run scripts/install-deps)"; exit 0
fi
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
secs=${PERTURB_SECONDS:-1}
OMP_NUM_THREADS=1 build/bench/perturb --dir "$dir" --seconds "$secs" > "$dir/c.txt"
OMP_NUM_THREADS=1 /usr/bin/python3 bench/perturb_ref.py "$dir" "$secs" > "$dir/py.txt"
join "$dir/c.txt" "$dir/py.txt" | while read -r op c py; do
  ref=$([ "$op" = mixup ] && echo "Pillow+torch" || echo "OpenCV")
  printf "perturb %-7s temper %8.1f images/s   %-12s %8.1f images/s   ratio %.2f\n" "$op" "$c" "$ref" "$py" \
    "$(echo "$c / $py" | bc -l)"
done
echo "  16 images ~448x336 in memory, draws included, PNG I/O not; one thread, CPU time; ${BENCH_CPU:-cpu: $(bash bench/cpu.sh)}"
