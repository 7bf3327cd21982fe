// cli/omp_wait.c: OMP_WAIT_POLICY=passive unless the user chose (see omp_wait.h).
#include "cli/omp_wait.h"
#include <stdlib.h>
#include <unistd.h>

void omp_wait_default(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 0)) return;
    execv("/proc/self/exe", argv);
}
