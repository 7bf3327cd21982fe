// tests/unit/test_vision.c: the kernels Qwen2.5-VL and Qwen2-VL add (kernels/cpu_vision.c,
// cpu_layernorm.c: QuickGELU, LayerNorm) against fp64
// references written here, their backwards against central finite differences (the
// tolerances of test_kernels.c), and the vision model's input checks (model/vision.h).
// The whole tower and model against PyTorch: tests/oracle/test_vl.py.
#include "base/rng.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/vision.h"
#include "test.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define FD_H 1e-4

static rng R;

static float *randn(long n, float s) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) x[i] = s * rng_normal(&R);
    return x;
}

// ---- exact GELU ----
static double gelu_d(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }

static void test_gelu(void) {
    const long n = 1037;
    float *x = randn(n, 3), *y = malloc(sizeof(float) * n), *G = randn(n, 1), *dx = calloc(n, sizeof(float));
    x[0] = -30, x[1] = 30, x[2] = 0;
    k_gelu_fwd(y, x, n);
    double fe = 0, be = 0, mb = 1e-12;
    for (long i = 0; i < n; i++) fe = fmax(fe, fabs(y[i] - gelu_d(x[i])) / fmax(1.0, fabs(gelu_d(x[i]))));
    k_gelu_bwd(dx, G, x, n);
    for (long i = 0; i < n; i++) {
        double fd = G[i] * (gelu_d(x[i] + FD_H) - gelu_d(x[i] - FD_H)) / (2 * FD_H);
        be = fmax(be, fabs(dx[i] - fd));
        mb = fmax(mb, fabs(fd));
    }
    CHECK(fe < 1e-5, "gelu fwd vs erf in fp64 (err %.1e)", fe);
    CHECK(be / mb < 1e-4, "gelu bwd vs FD (err %.1e)", be / mb);
    float d0 = dx[5];
    k_gelu_bwd(dx, G, x, n);
    CHECK(fabsf(dx[5] - 2 * d0) <= 1e-6f * fabsf(d0) + 1e-12f, "gelu bwd accumulates (+=)");
    free(x), free(y), free(G), free(dx);
}

// ---- QuickGELU (Qwen2-VL's vision MLP) ----
static double qgelu_d(double x) { return x / (1 + exp(-1.702 * x)); }

static void test_quick_gelu(void) {
    const long n = 1037;
    float *x = randn(n, 3), *y = malloc(sizeof(float) * n), *G = randn(n, 1), *dx = calloc(n, sizeof(float));
    x[0] = -30, x[1] = 30, x[2] = 0, x[3] = -100;
    k_quick_gelu_fwd(y, x, n);
    double fe = 0, be = 0, mb = 1e-12;
    for (long i = 0; i < n; i++) fe = fmax(fe, fabs(y[i] - qgelu_d(x[i])) / fmax(1.0, fabs(qgelu_d(x[i]))));
    k_quick_gelu_bwd(dx, G, x, n);
    int finite = 1;
    for (long i = 0; i < n; i++) {
        double fd = G[i] * (qgelu_d(x[i] + FD_H) - qgelu_d(x[i] - FD_H)) / (2 * FD_H);
        be = fmax(be, fabs(dx[i] - fd));
        mb = fmax(mb, fabs(fd));
        finite &= isfinite(dx[i]) && isfinite(y[i]);
    }
    CHECK(fe < 1e-6 && finite, "quick_gelu fwd vs x sigmoid(1.702 x) in fp64 (err %.1e)", fe);
    CHECK(be / mb < 1e-4, "quick_gelu bwd vs FD (err %.1e)", be / mb);
    float d0 = dx[5];
    k_quick_gelu_bwd(dx, G, x, n);
    CHECK(fabsf(dx[5] - 2 * d0) <= 1e-6f * fabsf(d0) + 1e-12f, "quick_gelu bwd accumulates (+=)");
    free(x), free(y), free(G), free(dx);
}

// ---- LayerNorm with weight and bias (Qwen2-VL's norm1, norm2, ln_q) ----
static int ln_N, ln_D;
static double *ln_x, *ln_w, *ln_b, *ln_G;

// sum(G * layernorm(x)) in fp64, and the row outputs into y when given
static double ln_loss(double *y) {
    double L = 0;
    for (int n = 0; n < ln_N; n++) {
        const double *x = ln_x + (long)n * ln_D;
        double mu = 0, var = 0;
        for (int j = 0; j < ln_D; j++) mu += x[j];
        mu /= ln_D;
        for (int j = 0; j < ln_D; j++) var += (x[j] - mu) * (x[j] - mu);
        const double r = 1 / sqrt(var / ln_D + 1e-6);
        for (int j = 0; j < ln_D; j++) {
            double o = (x[j] - mu) * r * ln_w[j] + ln_b[j];
            if (y) y[(long)n * ln_D + j] = o;
            L += ln_G[(long)n * ln_D + j] * o;
        }
    }
    return L;
}

static void test_layernorm(void) {
    const int N = 19, D = 37;  // D: no whole vector width (the tails), several column blocks
    ln_N = N, ln_D = D;
    float *x = randn((long)N * D, 2), *w = randn(D, 0.3f), *b = randn(D, 0.5f), *G = randn((long)N * D, 1);
    for (long i = 0; i < (long)N * D; i++) x[i] += 3.0f;  // a mean far from 0: the mean is subtracted
    for (int j = 0; j < D; j++) w[j] += 1.0f;
    ln_x = malloc(sizeof(double) * N * D), ln_G = malloc(sizeof(double) * N * D), ln_w = malloc(sizeof(double) * D),
    ln_b = malloc(sizeof(double) * D);
    double *yr = malloc(sizeof(double) * N * D);
    for (long i = 0; i < (long)N * D; i++) ln_x[i] = x[i], ln_G[i] = G[i];
    for (int j = 0; j < D; j++) ln_w[j] = w[j], ln_b[j] = b[j];
    float *y = malloc(sizeof(float) * N * D), *mean = malloc(sizeof(float) * N), *rstd = malloc(sizeof(float) * N);
    k_layernorm_fwd(y, mean, rstd, x, w, b, N, D, 1e-6f);
    ln_loss(yr);
    double fe = 0;
    for (long i = 0; i < (long)N * D; i++) fe = fmax(fe, fabs(y[i] - yr[i]));
    CHECK(fe < 1e-5, "layernorm fwd vs fp64 (err %.1e)", fe);
    float *y0 = malloc(sizeof(float) * N * D);
    k_layernorm_fwd(y0, mean, rstd, x, w, NULL, N, D, 1e-6f);
    double be0 = 0;
    for (long i = 0; i < (long)N * D; i++) be0 = fmax(be0, fabs((y[i] - y0[i]) - b[i % D]));
    CHECK(be0 < 1e-5, "layernorm fwd without a bias (err %.1e)", be0);
    float *dx = calloc((size_t)N * D, sizeof(float)), *dw = calloc(D, sizeof(float)), *db = calloc(D, sizeof(float));
    k_layernorm_bwd(dx, dw, db, G, x, w, mean, rstd, N, D);
    // central differences of the fp64 loss, for every x, w and b
    double *ps[3] = {ln_x, ln_w, ln_b};
    const float *an[3] = {dx, dw, db};
    const long cnt[3] = {(long)N * D, D, D};
    const char *nm[3] = {"dx", "dw", "db"};
    for (int t = 0; t < 3; t++) {
        double md = 0, mb = 1e-12;
        for (long i = 0; i < cnt[t]; i++) {
            const double keep = ps[t][i];
            ps[t][i] = keep + FD_H;
            double lp = ln_loss(NULL);
            ps[t][i] = keep - FD_H;
            double lm = ln_loss(NULL);
            ps[t][i] = keep;
            double fd = (lp - lm) / (2 * FD_H);
            md = fmax(md, fabs(an[t][i] - fd));
            mb = fmax(mb, fabs(fd));
        }
        CHECK(md / mb < 1e-4, "layernorm bwd %s vs FD (err %.1e)", nm[t], md / mb);
    }
    float d0 = dx[7], w0 = dw[3], b0 = db[3];
    k_layernorm_bwd(dx, dw, db, G, x, w, mean, rstd, N, D);
    CHECK(fabsf(dx[7] - 2 * d0) <= 1e-5f * fabsf(d0) + 1e-9f && fabsf(dw[3] - 2 * w0) <= 1e-5f * fabsf(w0) + 1e-9f &&
              fabsf(db[3] - 2 * b0) <= 1e-5f * fabsf(b0) + 1e-9f,
          "layernorm bwd accumulates (+=) into dx, dw, db");
    // dw and db are sums over rows in a fixed order: thread-count invariant bit for bit
    float *dw1 = calloc(D, sizeof(float)), *db1 = calloc(D, sizeof(float));
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    k_layernorm_bwd(NULL, dw1, db1, G, x, w, mean, rstd, N, D);
    omp_set_num_threads(nt > 1 ? nt : 3);
    float *dw2 = calloc(D, sizeof(float)), *db2 = calloc(D, sizeof(float));
    k_layernorm_bwd(NULL, dw2, db2, G, x, w, mean, rstd, N, D);
    omp_set_num_threads(nt);
    CHECK(!memcmp(dw1, dw2, sizeof(float) * D) && !memcmp(db1, db2, sizeof(float) * D), "layernorm dw, db: the same bits on 1 and %d threads",
          nt > 1 ? nt : 3);
    free(x), free(w), free(b), free(G), free(y), free(y0), free(mean), free(rstd), free(dx), free(dw), free(db);
    free(dw1), free(db1), free(dw2), free(db2), free(ln_x), free(ln_G), free(ln_w), free(ln_b), free(yr);
}

// ---- RoPE by an angle table ----
static void test_rope_angle(void) {
    const int N = 7, H = 3, d = 10, half = d / 2;
    float *x = randn((long)N * H * d, 1), *ang = randn((long)N * half, 3), *y = malloc(sizeof(float) * N * H * d);
    memcpy(y, x, sizeof(float) * N * H * d);
    k_rope_angle_fwd(y, ang, N, H, d);
    double e = 0;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < half; i++) {
                const float *p = x + ((long)n * H + h) * d;
                double a = ang[n * half + i], r1 = p[i] * cos(a) - p[i + half] * sin(a), r2 = p[i + half] * cos(a) + p[i] * sin(a);
                const float *q = y + ((long)n * H + h) * d;
                e = fmax(e, fmax(fabs(q[i] - r1), fabs(q[i + half] - r2)));
            }
    CHECK(e < 1e-5, "rope by angle table fwd vs fp64 rotate_half (err %.1e)", e);
    // the backward is the transpose: <G, R x> = <R^T G, x>
    float *G = randn((long)N * H * d, 1), *Gt = malloc(sizeof(float) * N * H * d);
    memcpy(Gt, G, sizeof(float) * N * H * d);
    k_rope_angle_bwd(Gt, ang, N, H, d);
    double l = 0, r = 0;
    for (long i = 0; i < (long)N * H * d; i++) l += (double)G[i] * y[i], r += (double)Gt[i] * x[i];
    CHECK(fabs(l - r) < 1e-4 * fabs(l) + 1e-5, "rope by angle table bwd is the transpose (%.6f vs %.6f)", l, r);
    free(x), free(ang), free(y), free(G), free(Gt);
}

// ---- bidirectional attention within segments ----
static const int *g_cu;
static int g_nseg, g_N, g_H, g_d;
static double *g_q, *g_k, *g_v, *g_G;

static double att_loss(void) {
    double L = 0;
    const int ld = g_H * g_d;
    for (int s = 0; s < g_nseg; s++)
        for (int h = 0; h < g_H; h++)
            for (int i = g_cu[s]; i < g_cu[s + 1]; i++) {
                double mx = -INFINITY, sc[64];
                for (int j = g_cu[s]; j < g_cu[s + 1]; j++) {
                    double t = 0;
                    for (int c = 0; c < g_d; c++) t += g_q[i * ld + h * g_d + c] * g_k[j * ld + h * g_d + c];
                    sc[j - g_cu[s]] = t / sqrt((double)g_d);
                    mx = fmax(mx, sc[j - g_cu[s]]);
                }
                double z = 0;
                for (int j = g_cu[s]; j < g_cu[s + 1]; j++) z += exp(sc[j - g_cu[s]] - mx);
                for (int c = 0; c < g_d; c++) {
                    double o = 0;
                    for (int j = g_cu[s]; j < g_cu[s + 1]; j++) o += exp(sc[j - g_cu[s]] - mx) / z * g_v[j * ld + h * g_d + c];
                    L += g_G[i * ld + h * g_d + c] * o;
                }
            }
    return L;
}

static void test_attention_seg(void) {
    static const int cu[] = {0, 5, 5, 17, 18};  // an empty and a single-token segment too
    const int nseg = 4, N = 18, H = 2, d = 6, n = N * H * d;
    float *q = randn(n, 1), *k = randn(n, 1), *v = randn(n, 1), *G = randn(n, 1);
    float *out = malloc(sizeof(float) * n), *lse = malloc(sizeof(float) * N * H);
    float *scratch = malloc(sizeof(float) * k_attention_seg_scratch_floats(cu, nseg));
    k_attention_seg_fwd(out, lse, q, k, v, cu, nseg, N, H, d, scratch);
    g_cu = cu, g_nseg = nseg, g_N = N, g_H = H, g_d = d;
    g_q = malloc(sizeof(double) * n), g_k = malloc(sizeof(double) * n), g_v = malloc(sizeof(double) * n), g_G = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) g_q[i] = q[i], g_k[i] = k[i], g_v[i] = v[i], g_G[i] = 0;
    // forward: out[i] = dL/dG[i] of the reference (L is linear in G)
    double fe = 0;
    for (int i = 0; i < n; i++) {
        g_G[i] = 1;
        fe = fmax(fe, fabs(out[i] - att_loss()));
        g_G[i] = 0;
    }
    CHECK(fe < 1e-5, "segment attention fwd vs fp64 ref (err %.1e)", fe);
    for (int i = 0; i < n; i++) g_G[i] = G[i];
    float *dq = calloc(n, sizeof(float)), *dk = calloc(n, sizeof(float)), *dv = calloc(n, sizeof(float));
    k_attention_seg_bwd(dq, dk, dv, G, q, k, v, out, lse, cu, nseg, N, H, d, scratch);
    double *xs[] = {g_q, g_k, g_v};
    float *an[] = {dq, dk, dv};
    const char *nm[] = {"dq", "dk", "dv"};
    for (int t = 0; t < 3; t++) {
        double md = 0, mb = 1e-12;
        for (int i = 0; i < n; i++) {
            double x0 = xs[t][i];
            xs[t][i] = x0 + FD_H;
            double lp = att_loss();
            xs[t][i] = x0 - FD_H;
            double lm = att_loss();
            xs[t][i] = x0;
            double fd = (lp - lm) / (2 * FD_H);
            md = fmax(md, fabs(an[t][i] - fd));
            mb = fmax(mb, fabs(fd));
        }
        CHECK(md / mb < 1e-4, "segment attention bwd %s vs FD (err %.1e)", nm[t], md / mb);
    }
    float d0 = dk[7];
    k_attention_seg_bwd(dq, dk, dv, G, q, k, v, out, lse, cu, nseg, N, H, d, scratch);
    CHECK(fabsf(dk[7] - 2 * d0) <= 1e-5f * fabsf(d0) + 1e-9f, "segment attention bwd accumulates (+=)");
    free(q), free(k), free(v), free(G), free(out), free(lse), free(scratch), free(dq), free(dk), free(dv);
    free(g_q), free(g_k), free(g_v), free(g_G);
}

// ---- the model's checks of a batch's images ----
static void test_vision_errors(model_arch arch) {
    model_config c;
    tm_error err;
    memset(&err, 0, sizeof err);
    model m;
    const char *name = arch == ARCH_QWEN2_VL ? "Qwen2-VL" : "Qwen2.5-VL";
    CHECK(config_preset(&c, arch, "tiny", &err) == 0 && model_create(&m, &c, &err) == 0, "tiny %s builds", name);
    model_init_random(&m, 1);
    const int P = 3 * 2 * 14 * 14, pad = c.image_token_id;
    int grid[3] = {1, 4, 6};  // 24 patches, 6 image tokens
    float *pix = randn(24L * P, 1);
    int tok[12] = {1, c.vision_start_token_id, pad, pad, pad, pad, pad, pad, c.vision_end_token_id, 2, 3, 4};
    int tg[12], pos[12], cu[2] = {0, 12};
    for (int i = 0; i < 12; i++) tg[i] = i < 11 ? tok[i + 1] : -1, pos[i] = i;
    model_batch b = {.n_tokens = 12, .n_seqs = 1, .tokens = tok, .targets = tg, .pos = pos, .cu_seqlens = cu,
                     .n_images = 1, .pixel_values = pix, .image_grid_thw = grid};
    float lp[12], dlp[12];
    CHECK(model_enable_grad(&m, &err) == 0 && model_forward(&m, &b, lp, NULL, &err) == 0, "forward with one image (%s)", err.msg);
    int nm = 0;
    vision_last_output(&m, &nm);
    CHECK(nm == 6, "one image of grid 1x4x6 gives 6 embeddings (%d)", nm);
    // the backward reaches the patch embedding (under ASan in the san build)
    for (int i = 0; i < 12; i++) dlp[i] = tg[i] >= 0 ? -1.0f : 0.0f;
    model_backward(&m, &b, dlp, NULL);
    const model_param *pe = model_find_param(&m, "visual.patch_embed.proj.weight");
    double gs = 0;
    for (size_t i = 0; pe && i < pe->numel; i++) gs += fabs(m.g[pe->goff + i]);
    CHECK(pe && pe->ndim == 5 && gs > 0 && isfinite(gs), "%s: backward reaches the 5-D patch embedding (sum |g| %.3g)", name, gs);
    if (arch == ARCH_QWEN2_VL)  // the LayerNorm biases and the fc1/fc2 MLP get gradients too
        for (const char *const *k = (const char *const[]){"visual.blocks.0.norm1.bias", "visual.blocks.0.mlp.fc1.bias",
                                                           "visual.blocks.3.mlp.fc2.weight", "visual.merger.ln_q.bias", NULL};
             *k; k++) {
            const model_param *p = model_find_param(&m, *k);
            double s = 0;
            for (size_t i = 0; p && i < p->numel; i++) s += fabs(m.g[p->goff + i]);
            CHECK(p && s > 0 && isfinite(s), "Qwen2-VL: %s has a gradient (sum |g| %.3g)", *k, s);
        }
    tok[0] = c.video_token_id;
    CHECK(model_forward(&m, &b, lp, NULL, &err) != 0 && strstr(err.msg, "videos are not supported"), "a video pad is refused: %s", err.msg);
    tok[0] = 1;
    tok[7] = 5;  // one pad too few
    CHECK(model_forward(&m, &b, lp, NULL, &err) != 0 && strstr(err.msg, "image-pad tokens"), "too few pad tokens: %s", err.msg);
    tok[7] = pad;
    grid[1] = 5;  // not a multiple of the merge size
    CHECK(model_forward(&m, &b, lp, NULL, &err) != 0 && strstr(err.msg, "image_grid_thw"), "odd grid: %s", err.msg);
    grid[1] = 4;
    int cu2[3] = {0, 5, 12};  // the image's pads run over a sequence boundary
    b.n_seqs = 2, b.cu_seqlens = cu2;
    CHECK(model_forward(&m, &b, lp, NULL, &err) != 0 && strstr(err.msg, "sequence ends"), "pads across sequences: %s", err.msg);
    model_free(&m);
    free(pix);
}

// ---- the prompt side: the chat template's image parts and their expansion ----
static void test_image_pads(void) {
    // The content-list branch of Qwen2-VL / Qwen2.5-VL's chat template (its image and text parts).
    static const char *tmpl =
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
        "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
        "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
        "<|vision_start|><|image_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
        "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}";
    static const char *vars = "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, "
                              "{\"type\": \"text\", \"text\": \"How many dots?\"}]}]}";
    tm_error err;
    memset(&err, 0, sizeof err);
    jinja_tmpl *t = jinja_parse(tmpl, strlen(tmpl), "qwen2_vl", &err);
    json_doc *d = json_parse(vars, strlen(vars), &err);
    sbuf out;
    sbuf_init(&out);
    int rc = t && d ? jinja_render(t, json_root(d), 0, &out, &err) : -1;
    CHECK(rc == 0 && out.data && !strcmp(out.data, "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>How many dots?<|im_end|>\n"),
          "chat template renders a {\"type\": \"image\"} part as <|vision_start|><|image_pad|><|vision_end|>%s%s", rc ? ": " : "", rc ? err.msg : "");
    sbuf_free(&out);
    json_doc_free(d);
    jinja_free(t);
    const int32_t ids[] = {7, 151652, 151655, 151653, 8, 151652, 151655, 151653};
    const int counts[] = {3, 2};
    tok_ids o = {0};
    rc = tok_expand_image_pads(ids, 8, 151655, counts, 2, &o, &err);
    const int32_t want[] = {7, 151652, 151655, 151655, 151655, 151653, 8, 151652, 151655, 151655, 151653};
    CHECK(rc == 0 && o.n == 11 && !memcmp(o.v, want, sizeof want), "image pads expand to each image's embedding count");
    tok_ids_free(&o);
    memset(&o, 0, sizeof o);
    CHECK(tok_expand_image_pads(ids, 8, 151655, counts, 1, &o, &err) != 0 && strstr(err.msg, "more image placeholders"),
          "more placeholders than images: %s", err.msg);
    tok_ids_free(&o);
    memset(&o, 0, sizeof o);
    CHECK(tok_expand_image_pads(ids, 4, 151655, counts, 2, &o, &err) != 0 && strstr(err.msg, "1 image placeholder"),
          "fewer placeholders than images: %s", err.msg);
    tok_ids_free(&o);
}

int main(void) {
    rng_seed(&R, 42);
    test_gelu();
    test_quick_gelu();
    test_layernorm();
    test_rope_angle();
    test_attention_seg();
    test_vision_errors(ARCH_QWEN2_5_VL);
    test_vision_errors(ARCH_QWEN2_VL);
    test_image_pads();
    return test_done();
}
