// cli/omp_wait.h: the OpenMP wait policy of temper's programs (the CLI and bench/*).
//
// The one process-wide setting temper changes on its own, here and nowhere else.
//
// Why: libgomp's default is to spin for about 300,000 iterations (~1-3 ms) after every
// parallel region before it sleeps. On a machine shared with other work the spinning
// threads take the cores that the thread everyone waits for needs: `temper eval` spent
// 76% of its time in libgomp's spin loop and ran 37 to 87 s, against 14 s with
// OMP_WAIT_POLICY=passive. A waiting thread that sleeps at once costs a futex wake-up
// per region (microseconds) on an idle machine and nothing under load.
//
// omp_wait_default(argv): call it once, first thing in main(), before any thread or
// file is opened. If the user set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT, it sets
// OMP_WAIT_POLICY=passive and re-executes the program (/proc/self/exe with the same
// argv and the new environment); the second run finds the variable set and returns.
// A re-exec is needed because libgomp reads its variables once, in its own constructor,
// which runs before main and before any constructor of ours; a .preinit_array hook is
// earlier still, but glibc resets `environ` after it, so a setenv there is lost.
// Returns (the program goes on under libgomp's defaults) if the exec fails, e.g. with
// no /proc. Any value the user sets, OMP_WAIT_POLICY=active included, is left alone.
//
// Effects: the variable stays in the environment, so the programs temper starts inherit
// it (the python sandbox gets its own fixed environment and does not). Startup costs one
// more program start: about 20 ms of CPU on the development machine, most of it loading
// OpenBLAS a second time; nothing next to loading a model. Setting OMP_WAIT_POLICY (any
// value) skips it.
#pragma once

void omp_wait_default(char **argv);
