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
# src/image knows base only (images, resampling, perturbations: no model, no tokenizer).
img=$(grep -nE '#include "' src/image/*.[ch] | grep -vE '#include "(base|image)/' | head -3)
ok "src/image includes only base and image" "$img"
# src/data reads images (a prompt's token count depends on its image's size) through
# src/image only, and knows no model.
data_up=$(grep -nE '#include "(model|kernels|objectives|optim|rollout|train|dist)/' src/data/*.[ch] | head -3)
ok "src/data includes nothing from model, kernels, objectives, optim, rollout, train or dist" "$data_up"
# dist (collectives) sits just above base: it knows base only; the layers that compute
# (kernels, model, objectives, optim, tokenizer, task, data, reward, tools) never call it,
# only rollout and train (and the CLI, which starts and stops it); only dist_mpi.c sees mpi.h
dist_up=$(grep -nE '#include "(kernels|model|tokenizer|task|data|objectives|optim|rollout|reward|tools|train)/' src/dist/*.[ch] | head -3)
ok "src/dist includes nothing above src/base" "$dist_up"
dist_users=$(grep -lE '#include "dist/' src/{base,kernels,model,tokenizer,task,data,objectives,optim,reward,tools}/*.[ch] 2>/dev/null | head -3)
ok "only src/rollout and src/train (and cli) include src/dist" "$dist_users"
mpi_h=$(grep -lE '#include <mpi\.h>' src/*/*.[ch] cli/*.[ch] | grep -v '^src/dist/dist_mpi.c$' | head -3)
ok "only src/dist/dist_mpi.c includes mpi.h" "$mpi_h"
[ $fails -eq 0 ]
