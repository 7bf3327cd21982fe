// Online DPO / KTO (train/online_dpo): the paper's trajectory filters, pairs only from
// prompts with both outcomes, and masked pre-tokenized rows (data/) that carry the
// trajectories' tool-token masks into the trainer. The rounds themselves (round 2 starts
// from round 1's model, resume) are tests/cli/test_online_dpo.sh.
#include <string.h>
#include "data/data.h"
#include "test.h"
#include "train/online_dpo.h"

static void test_pairs(void) {
    // 4 prompts x 4 samples: 0 mixed, 1 all correct, 2 all wrong, 3 mixed but its correct
    // samples filtered out, 4 nothing kept
    enum { P = 5, N = 4 };
    int correct[P * N] = {1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    uint8_t keep[P * N];
    memset(keep, 1, sizeof keep);
    keep[12] = keep[14] = 0;
    for (int s = 0; s < N; s++) keep[16 + s] = 0;
    int pairs[2 * P * 16];
    online_counts c = {0};
    int np = online_pairs(correct, keep, P, N, 1, 7, pairs, &c);
    CHECK(np == 1 && pairs[0] / N == 0 && pairs[1] / N == 0 && correct[pairs[0]] && !correct[pairs[1]],
          "one pair (paper): from the only prompt with both kept outcomes, chosen correct, rejected incorrect");
    CHECK(c.prompts == 5 && c.prompts_both == 1 && c.prompts_all_correct == 1 && c.prompts_all_wrong == 2 && c.prompts_none_kept == 1 &&
              c.pairs == 1,
          "counts: 1 with both, 1 only correct, 2 only incorrect (one after filtering), 1 with none kept");
    memset(&c, 0, sizeof c);
    np = online_pairs(correct, keep, P, N, 16, 7, pairs, &c);
    int distinct = 1, only0 = 1;
    for (int i = 0; i < np; i++) {
        only0 &= pairs[2 * i] / N == 0 && pairs[2 * i + 1] / N == 0 && correct[pairs[2 * i]] && !correct[pairs[2 * i + 1]];
        for (int j = 0; j < i; j++) distinct &= pairs[2 * i] != pairs[2 * j] || pairs[2 * i + 1] != pairs[2 * j + 1];
    }
    CHECK(np == 4 && distinct && only0, "--pairs-per-prompt 16: the 2 x 2 distinct pairs of prompt 0, none from the others (%d)", np);
    int seen[N] = {0};
    for (uint64_t seed = 0; seed < 32; seed++) {
        memset(&c, 0, sizeof c);
        online_pairs(correct, keep, P, N, 1, seed, pairs, &c);
        seen[pairs[0]]++, seen[pairs[1]]++;
    }
    CHECK(seen[0] && seen[2] && seen[1] && seen[3], "the pair is drawn at random (every sample of prompt 0 is drawn over 32 seeds)");
}

static void traj(rollout_traj *t, const int *ids, int len, int ncalls, const char *last_output, rollout_finish fin) {
    memset(t, 0, sizeof *t);
    t->ids = (int *)ids;
    t->len = len;
    t->finish = fin;
    t->ncalls = ncalls;
    if (ncalls) {
        t->calls = calloc((size_t)ncalls, sizeof *t->calls);
        t->calls[ncalls - 1].output = (char *)last_output;
    }
}

static void test_filter(void) {
    int a[] = {1, 2, 3}, b[] = {1, 2, 4}, d[] = {5, 6};
    rollout_traj tr[6];
    traj(&tr[0], a, 3, 1, "42", FINISH_STOP);                        // kept
    traj(&tr[1], a, 3, 1, "42", FINISH_STOP);                        // the same trajectory again
    traj(&tr[2], d, 2, 0, NULL, FINISH_STOP);                        // no tool call
    traj(&tr[3], b, 3, 2, "3\nReach max function call limit.", FINISH_MAX_TURNS);  // ends on an observation
    traj(&tr[4], b, 3, 1, "ZeroDivisionError: division by zero\nerror", FINISH_STOP);  // last observation holds "error"
    traj(&tr[5], b, 3, 1, "7", FINISH_LENGTH);                       // kept (cut, but the model's turn)
    uint8_t keep[6];
    online_counts c = {0};
    online_filter(tr, 1, 6, ROLLOUT_TOOL_PYTHON, keep, &c);
    CHECK(keep[0] && !keep[1] && !keep[2] && !keep[3] && !keep[4] && keep[5] && c.filtered == 3 && c.duplicates == 1,
          "python filters (get_dpo_dataset.py): no call, ending on an observation, last observation with \"error\" dropped; repeats count once");
    memset(&c, 0, sizeof c);
    online_filter(tr, 2, 3, ROLLOUT_TOOL_NONE, keep, &c);
    CHECK(keep[0] && !keep[1] && keep[2] && keep[3] && !keep[4] && !keep[5] && c.filtered == 0 && c.duplicates == 3,
          "without the python tool only repeats within a prompt are dropped (2 prompts of 3: a a d | b b b)");
    for (int i = 0; i < 6; i++) free(tr[i].calls);
}

static void test_masked_rows(void) {
    const char *row = "{\"prompt_input_ids\": [1, 2], \"chosen_input_ids\": [3, 4, 5], \"chosen_mask\": [1, 0, 1], "
                      "\"rejected_input_ids\": [6, 7], \"rejected_mask\": [0, 1]}";
    tm_error err;
    json_doc *d = json_parse(row, strlen(row), &err);
    data_opts o;
    data_opts_default(&o);
    o.format = DATA_DPO;
    data_example ex;
    int rc = data_example_from_json(NULL, json_root(d), &o, &ex, &err);
    static const uint8_t mc[] = {0, 0, 1, 0, 1}, mr[] = {0, 0, 0, 1};
    CHECK(rc == 0 && ex.seq[0].len == 5 && !memcmp(ex.seq[0].mask, mc, 5) && ex.seq[1].len == 4 && !memcmp(ex.seq[1].mask, mr, 4),
          "pre-tokenized pairs carry chosen_mask / rejected_mask: tool tokens (0) are not trained%s%s", rc ? ": " : "", rc ? err.msg : "");
    if (!rc) data_example_free(&ex);
    json_doc_free(d);
    const char *bad = "{\"prompt_input_ids\": [1], \"completion_input_ids\": [3, 4], \"completion_mask\": [1], \"label\": true}";
    d = json_parse(bad, strlen(bad), &err);
    o.format = DATA_KTO;
    rc = data_example_from_json(NULL, json_root(d), &o, &ex, &err);
    CHECK(rc != 0 && strstr(err.msg, "completion_mask"), "a mask of the wrong length is an error naming it (%s)", rc ? err.msg : "accepted");
    if (!rc) data_example_free(&ex);
    json_doc_free(d);
}

int main(void) {
    test_pairs();
    test_filter();
    test_masked_rows();
    return test_done();
}
