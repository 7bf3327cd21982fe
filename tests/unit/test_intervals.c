// tests/unit/test_intervals: the intervals the demo's report prints (rollout/metrics):
// Wilson's interval of a proportion and Newcombe's paired interval of a gain.
// References: the published Newcombe square-and-add interval of Fagerland, Lydersen
// and Laake's worked example (Cavo et al. 2012, the 2x2 table 59 6 / 16 80: estimate
// -0.0621, 95% CI -0.1186 to -0.0046, as the R package contingencytables checks it),
// and float64 values of a Python transcription of that package's function
// for the branches of the correlation term (the numbers are pasted here).
#include <math.h>
#include "rollout/metrics.h"
#include "test.h"

static const double Z = 1.959963984540054;

static void check_gain(int n11, int n10, int n01, int n00, double lo_ref, double hi_ref, double tol, const char *what) {
    double lo, hi;
    paired_gain_interval(n11, n10, n01, n00, Z, &lo, &hi);
    CHECK(fabs(lo - lo_ref) < tol && fabs(hi - hi_ref) < tol, "paired gain (%d,%d,%d,%d) %s: [%.6f, %.6f] vs [%.6f, %.6f]", n11, n10, n01,
          n00, what, lo, hi, lo_ref, hi_ref);
}

int main(void) {
    double lo, hi;
    // Wilson (float64 Python values): 93 of 500 -> [0.154334, 0.222454] (docs/demo-plan.md's
    // 0.186 [0.154, 0.222]), 0 of 100 -> [0, 0.036993]
    wilson_interval(93, 500, Z, &lo, &hi);
    CHECK(fabs(lo - 0.1543339917500702) < 1e-12 && fabs(hi - 0.22245409405978459) < 1e-12, "wilson 93/500: [%.5f, %.5f]", lo, hi);
    wilson_interval(0, 100, Z, &lo, &hi);
    CHECK(fabs(lo) < 1e-12 && fabs(hi - 0.03699349820698568) < 1e-12, "wilson 0/100: [%.6f, %.6f]", lo, hi);
    wilson_interval(0, 0, Z, &lo, &hi);
    CHECK(lo == 0 && hi == 1, "wilson with no trials: [0, 1]");

    // the published example (4 decimals): model 2 = the table's columns, gain +0.0621
    check_gain(59, 6, 16, 80, 0.0046, 0.1186, 5e-5, "Fagerland et al.'s Cavo 2012 example");
    // the Python transcription, float64: a positive correlation above n/2 (the demo's case)
    check_gain(59, 6, 16, 80, 0.004625113933, 0.118621195639, 1e-9, "python");
    check_gain(120, 10, 35, 335, 0.023777449886, 0.076430672314, 1e-9, "python, n 500, gain excludes 0");
    check_gain(100, 20, 5, 375, -0.050445475117, -0.010093208581, 1e-9, "python, a loss");
    // a negative ad - bc (no correction), an empty margin (phi 0), full agreement
    check_gain(1, 7, 1, 12, -0.506920226686, -0.025559124165, 1e-9, "python, ad < bc");
    check_gain(0, 0, 3, 17, -0.038396333126, 0.360418864741, 1e-9, "python, model 1 never right");
    check_gain(10, 0, 0, 10, -0.089756659378, 0.089756659378, 1e-9, "python, identical models: symmetric about 0");
    paired_gain_interval(0, 0, 0, 0, Z, &lo, &hi);
    CHECK(lo == -1 && hi == 1, "paired gain with no items: [-1, 1]");
    return test_done();
}
