// kernels/cpu_tuning.h: knobs of the CPU kernels that tests and benchmarks turn.
// Not part of the backend interface (kernels.h); the model never needs them.
#pragma once

// Row and vocabulary chunk of the fused lm-head (defaults 512 and 2048; rows are
// clamped to [1, 1024], vocab to >= 1). k_lmhead_scratch_floats() depends on them,
// so size the scratch after changing them. Not thread-safe: set once at start-up.
void k_lmhead_set_chunks(int rows, int vocab);
