#!/usr/bin/env bash
# ARCHITECTURE.md's layering, checked in the source: above src/kernels, kernels are
# reached through the backend table (model->K), never by calling a k_* function, so a
# second backend only has to fill a table; objectives know no model.
cd "$(dirname "$0")/../.."
fails=0
ok() { if [ -z "$2" ]; then echo "ok - $1"; else echo "not ok - $1: $2"; fails=$((fails + 1)); fi; }
direct=$(grep -nE '(^|[^>.a-z_0-9])k_[a-z_]+\(' src/model/*.c src/train/*.c src/rollout/*.c | grep -vE ':\s*//' | head -5)
ok "src/model, src/train, src/rollout call no k_* kernel directly (the backend table only)" "$direct"
model=$(grep -lE '#include "model/' src/objectives/*.[ch] | head -3)
ok "src/objectives includes nothing from src/model" "$model"
[ $fails -eq 0 ]
