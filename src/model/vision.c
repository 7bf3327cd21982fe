// The Qwen2.5-VL vision tower and M-RoPE (see vision.h for the semantics).
#include "model/vision.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE SIZE_MAX

struct vision {
    vision_block *blk;
    int ln;              // Qwen2-VL: LayerNorm (with bias) blocks and merger, fc1 -> QuickGELU -> fc2
    size_t patch_w, ln_q, ln_q_b, mlp0_w, mlp0_b, mlp2_w, mlp2_b;
    float *inv_freq;     // [head_dim/4] of the tower
    int trainable;       // any tower parameter has a gradient (set by the first forward)
    // the last forward's layout (grow-only buffers)
    int n_patches, n_merged, n_win, n_full, n_tokens;
    int *ibuf;
    size_t ibuf_cap;
    int *perm, *widx, *cu_win, *cu_full, *img_rows;  // in ibuf
    float *lm_ang;       // [n_tokens, head_dim/2] M-RoPE angles
    size_t lm_ang_cap;
    // activations (one arena, grow-only), in window order
    float *arena;
    size_t arena_cap;
    float *mean1, *mean2, *mean_m, *t_mean;  // LayerNorm's row means (Qwen2-VL)
    float *pix, *xs, *xmid, *rstd1, *rstd2, *q, *k, *v, *att, *lse, *gate, *up, *rstd_m, *h0, *mout, *emb, *ang;
    float *t_xn, *t_qkv, *t_h, *t_rstd, *t_g, *d_x, *d_xn, *d_q, *d_k, *d_v, *d_att, *d_qkv, *d_h, *d_gate, *d_up, *d_g, *d_h0,
        *d_mout;
    float *scratch;
    size_t scratch_cap;
};

static int patch_dim(const model_config *c) { return 3 * c->vis.temporal_patch * c->vis.patch * c->vis.patch; }

int vision_param_count(const model_config *c) {
    return c->arch == ARCH_QWEN2_5_VL ? 12 * c->vis.depth + 7 : c->arch == ARCH_QWEN2_VL ? 12 * c->vis.depth + 8 : 0;
}

// Merge units a window side: Qwen2-VL has no windows (one per frame: a side no image reaches).
static int win_units(const model_config *c) {
    return c->vis.window ? c->vis.window / c->vis.merge / c->vis.patch : 1 << 20;
}

int vision_create(model *m, tm_error *err) {
    const model_config *c = &m->cfg;
    const int E = c->vis.hidden, I = c->vis.ffn, C = E * c->vis.merge * c->vis.merge, hv = E / c->vis.heads;
    vision *v = calloc(1, sizeof *v);
    if (!v) return tm_fail(err, "out of memory");
    m->vis = v;
    v->ln = c->arch == ARCH_QWEN2_VL;
    v->blk = calloc((size_t)c->vis.depth, sizeof *v->blk);
    v->inv_freq = malloc(sizeof(float) * (size_t)(hv / 4));
    if (!v->blk || !v->inv_freq) return tm_fail(err, "out of memory");
    // Qwen2_5_VisionRotaryEmbedding(head_dim / 2): 1 / 10000^(2j / (head_dim/2)), in fp32
    for (int j = 0; j < hv / 4; j++) v->inv_freq[j] = 1.0f / powf(10000.0f, (float)(2 * j) / (float)(hv / 2));
    model_add_param(m, "visual.patch_embed.proj.weight", 2, E, patch_dim(c), 1, &v->patch_w);
    model_param *pe = &m->params[m->nparams - 1];  // as the Conv3d stores it: [E, 3, t, p, p]
    pe->ndim = 5;
    pe->shape[1] = 3;
    pe->shape[2] = c->vis.temporal_patch;
    pe->shape[3] = pe->shape[4] = c->vis.patch;
    char name[96];
    for (int l = 0; l < c->vis.depth; l++) {
        vision_block *o = &v->blk[l];
#define P(field, suffix, nd, a, b, decay) \
    snprintf(name, sizeof name, "visual.blocks.%d.%s", l, suffix), model_add_param(m, name, nd, a, b, decay, &o->field)
        o->norm1_b = o->norm2_b = o->up_w = o->up_b = NONE;
        P(norm1, "norm1.weight", 1, E, 1, 0);
        if (v->ln) P(norm1_b, "norm1.bias", 1, E, 1, 0);
        P(norm2, "norm2.weight", 1, E, 1, 0);
        if (v->ln) P(norm2_b, "norm2.bias", 1, E, 1, 0);
        P(qkv_w, "attn.qkv.weight", 2, 3 * E, E, 1);
        P(qkv_b, "attn.qkv.bias", 1, 3 * E, 1, 0);
        P(proj_w, "attn.proj.weight", 2, E, E, 1);
        P(proj_b, "attn.proj.bias", 1, E, 1, 0);
        if (v->ln) {  // VisionMlp: fc1 (kept in gate_*), QuickGELU, fc2 (in down_*)
            P(gate_w, "mlp.fc1.weight", 2, I, E, 1);
            P(gate_b, "mlp.fc1.bias", 1, I, 1, 0);
            P(down_w, "mlp.fc2.weight", 2, E, I, 1);
            P(down_b, "mlp.fc2.bias", 1, E, 1, 0);
            continue;
        }
        P(gate_w, "mlp.gate_proj.weight", 2, I, E, 1);
        P(gate_b, "mlp.gate_proj.bias", 1, I, 1, 0);
        P(up_w, "mlp.up_proj.weight", 2, I, E, 1);
        P(up_b, "mlp.up_proj.bias", 1, I, 1, 0);
        P(down_w, "mlp.down_proj.weight", 2, E, I, 1);
        P(down_b, "mlp.down_proj.bias", 1, E, 1, 0);
#undef P
    }
    model_add_param(m, "visual.merger.ln_q.weight", 1, E, 1, 0, &v->ln_q);
    v->ln_q_b = NONE;
    if (v->ln) model_add_param(m, "visual.merger.ln_q.bias", 1, E, 1, 0, &v->ln_q_b);
    model_add_param(m, "visual.merger.mlp.0.weight", 2, C, C, 1, &v->mlp0_w);
    model_add_param(m, "visual.merger.mlp.0.bias", 1, C, 1, 0, &v->mlp0_b);
    model_add_param(m, "visual.merger.mlp.2.weight", 2, c->vis.out_hidden, C, 1, &v->mlp2_w);
    model_add_param(m, "visual.merger.mlp.2.bias", 1, c->vis.out_hidden, 1, 0, &v->mlp2_b);
    return 0;
}

void vision_free(vision *v) {
    if (!v) return;
    free(v->blk);
    free(v->inv_freq);
    free(v->ibuf);
    free(v->lm_ang);
    free(v->arena);
    free(v->scratch);
    free(v);
}

void vision_freeze(model *m) {
    for (int i = 0; i < m->nparams; i++)
        if (!strncmp(m->params[i].name, "visual.", 7)) m->params[i].trainable = 0;
}

const float *vision_lm_angles(const model *m) { return m->vis->lm_ang; }

const float *vision_last_output(const model *m, int *n_merged) {
    if (n_merged) *n_merged = m->vis->n_merged;
    return m->vis->emb;
}

// ---- layout: windows, permutation, segments, M-RoPE positions ----

// Checks the grids against the batch and counts patches, merged tokens, windows and frames.
static int count_layout(const model *m, const model_batch *b, int *np, int *nm, int *nw, int *nf, tm_error *err) {
    const model_config *c = &m->cfg;
    const int ms = c->vis.merge, vm = win_units(c);
    *np = *nm = *nw = *nf = 0;
    for (int i = 0; i < b->n_images; i++) {
        const int t = b->image_grid_thw[3 * i], h = b->image_grid_thw[3 * i + 1], w = b->image_grid_thw[3 * i + 2];
        if (t <= 0 || h <= 0 || w <= 0 || h % ms || w % ms || (long)t * h * w > 1 << 24)
            return tm_fail(err, "image %d: image_grid_thw [%d, %d, %d] must be positive with h and w multiples of %d", i, t, h, w, ms);
        const int lh = h / ms, lw = w / ms;
        *np += t * h * w;
        *nm += t * lh * lw;
        *nw += t * ((lh + vm - 1) / vm) * ((lw + vm - 1) / vm);
        *nf += t;
    }
    int pads = 0;
    for (int i = 0; i < b->n_tokens; i++) {
        pads += b->tokens[i] == c->image_token_id;
        if (b->tokens[i] == c->video_token_id)
            return tm_fail(err, "token %d at position %d is a video placeholder: videos are not supported (images only)", c->video_token_id, i);
    }
    if (pads != *nm)
        return tm_fail(err, "the batch has %d image-pad tokens (id %d) but its %d image(s) make %d embeddings (image_grid_thw / %d)", pads,
                       c->image_token_id, b->n_images, *nm, ms * ms);
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t esize, tm_error *err) {
    if (need <= *cap) return 0;
    free(*p);
    *p = aligned_alloc(64, ((need * esize + 63) / 64) * 64);
    *cap = *p ? need : 0;
    if (!*p) return tm_fail(err, "out of memory for the vision tower (%zu MiB)", need * esize >> 20);
    memset(*p, 0, need * esize);
    return 0;
}

// transformers' get_window_index: per frame, windows of vm x vm merge units, row-major, cut at
// the edge (the padded, empty windows dropped as unique_consecutive does); widx[j] is the merge
// unit (in the processor's order) at window position j.
static void window_layout(vision *v, const model_config *c, const model_batch *b) {
    const int ms = c->vis.merge, vm = win_units(c), mu = ms * ms;
    int j = 0, base = 0, nw = 0, nf = 0, pbase = 0;
    v->cu_win[0] = v->cu_full[0] = 0;
    for (int i = 0; i < b->n_images; i++) {
        const int t = b->image_grid_thw[3 * i], lh = b->image_grid_thw[3 * i + 1] / ms, lw = b->image_grid_thw[3 * i + 2] / ms;
        for (int f = 0; f < t; f++) {
            for (int wh = 0; wh < (lh + vm - 1) / vm; wh++)
                for (int ww = 0; ww < (lw + vm - 1) / vm; ww++) {
                    int n = 0;
                    for (int r = wh * vm; r < (wh + 1) * vm && r < lh; r++)
                        for (int cc = ww * vm; cc < (ww + 1) * vm && cc < lw; cc++, n++) v->widx[j++] = base + (f * lh + r) * lw + cc;
                    v->cu_win[nw + 1] = v->cu_win[nw] + n * mu;
                    nw++;
                }
            pbase += lh * lw * mu;
            v->cu_full[nf + 1] = pbase;
            nf++;
        }
        base += t * lh * lw;
    }
    for (int u = 0; u < v->n_merged; u++)
        for (int k = 0; k < mu; k++) v->perm[u * mu + k] = v->widx[u] * mu + k;
}

// The tower's rotary angles [n_patches, hv/2] in window order: the first hv/4 by the patch's
// row, the rest by its column (transformers' rot_pos_emb, the processor's patch order).
static void vision_angles(vision *v, const model_config *c, const model_batch *b) {
    const int ms = c->vis.merge, hv = c->vis.hidden / c->vis.heads, q = hv / 4;
    int *row = v->img_rows + v->n_merged, *col = row + v->n_patches;  // rows/cols per patch (original order)
    int p = 0;
    for (int i = 0; i < b->n_images; i++) {
        const int t = b->image_grid_thw[3 * i], h = b->image_grid_thw[3 * i + 1], w = b->image_grid_thw[3 * i + 2];
        for (int f = 0; f < t; f++)
            for (int bh = 0; bh < h / ms; bh++)
                for (int bw = 0; bw < w / ms; bw++)
                    for (int mh = 0; mh < ms; mh++)
                        for (int mw = 0; mw < ms; mw++, p++) {
                            row[p] = bh * ms + mh;
                            col[p] = bw * ms + mw;
                        }
    }
    for (int n = 0; n < v->n_patches; n++) {
        const int o = v->perm[n];
        float *a = v->ang + (size_t)n * (hv / 2);
        for (int j = 0; j < q; j++) {
            a[j] = (float)row[o] * v->inv_freq[j];
            a[q + j] = (float)col[o] * v->inv_freq[j];
        }
    }
}

// M-RoPE (transformers' get_rope_index) and the rows of the image tokens.
static int lm_angles(vision *v, const model *m, const model_batch *b, tm_error *err) {
    const model_config *c = &m->cfg;
    const int half = c->head_dim / 2, ms = c->vis.merge;
    const int s0 = c->mrope_section[0], s1 = s0 + c->mrope_section[1];
    int img = 0, r = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        long shift = 0;  // position of this token's band minus its position id
        for (int i = b->cu_seqlens[s]; i < b->cu_seqlens[s + 1];) {
            long pt, ph, pw;
            int run = 1;
            float *a = v->lm_ang + (size_t)i * half;
            if (b->tokens[i] != c->image_token_id) {
                pt = ph = pw = b->pos[i] + shift;
                for (int j = 0; j < half; j++) a[j] = (float)pt * m->inv_freq[j];
                i++;
                continue;
            }
            if (img >= b->n_images) return tm_fail(err, "image-pad token at position %d has no image left", i);
            const int t = b->image_grid_thw[3 * img], lh = b->image_grid_thw[3 * img + 1] / ms, lw = b->image_grid_thw[3 * img + 2] / ms;
            run = t * lh * lw;
            if (i + run > b->cu_seqlens[s + 1])
                return tm_fail(err, "image %d needs %d image-pad tokens from position %d, its sequence ends first", img, run, i);
            const long p0 = b->pos[i] + shift;
            for (int k = 0; k < run; k++) {
                if (b->tokens[i + k] != c->image_token_id)
                    return tm_fail(err, "image %d needs %d consecutive image-pad tokens from position %d, position %d is token %d", img, run, i,
                                   i + k, b->tokens[i + k]);
                const int hh = (k / lw) % lh, ww = k % lw;
                pt = p0;  // images: temporal position 0 (second_per_grid_t = 0)
                ph = p0 + hh;
                pw = p0 + ww;
                a = v->lm_ang + (size_t)(i + k) * half;
                for (int j = 0; j < half; j++) a[j] = (float)(j < s0 ? pt : j < s1 ? ph : pw) * m->inv_freq[j];
                v->img_rows[r++] = i + k;
            }
            // the next text position is p0 + max(lh, lw); its position id is pos[i] + run
            shift += (lh > lw ? lh : lw) - run;
            i += run;
            img++;
        }
    }
    if (img != b->n_images) return tm_fail(err, "the batch has %d image(s) but image-pad tokens for %d", b->n_images, img);
    return 0;
}

static int reserve(vision *v, const model *m, const model_batch *b, int np, int nm, int nw, int nf, tm_error *err) {
    const model_config *c = &m->cfg;
    const size_t N = (size_t)np, M = (size_t)nm, L = (size_t)c->vis.depth, E = (size_t)c->vis.hidden, I = (size_t)c->vis.ffn;
    const size_t H = (size_t)c->vis.heads, C = E * (size_t)(c->vis.merge * c->vis.merge), Do = (size_t)c->vis.out_hidden;
    const size_t P = (size_t)patch_dim(c), hv = E / H;
    if (grow((void **)&v->lm_ang, &v->lm_ang_cap, (size_t)b->n_tokens * (size_t)(c->head_dim / 2), sizeof(float), err)) return -1;
    size_t ni = N + M + (size_t)nw + 1 + (size_t)nf + 1 + 2 * N + M;
    if (grow((void **)&v->ibuf, &v->ibuf_cap, ni, sizeof(int), err)) return -1;
    v->perm = v->ibuf;
    v->widx = v->perm + N;
    v->cu_win = v->widx + M;
    v->cu_full = v->cu_win + nw + 1;
    v->img_rows = v->cu_full + nf + 1;  // [M] the image rows, then [2N] vision_angles' scratch
    size_t sizes[] = {N * P, (L + 1) * N * E, L * N * E, L * N, L * N, L * N * E, L * N * E, L * N * E, L * N * E, L * N * H,
                      L * N * I, L * N * I, N, M * C, M * Do, M * Do, N * hv / 2,
                      N * E, N * 3 * E, N * I, N, M * C, N * E, N * E, N * E, N * E, N * E, N * E, N * 3 * E, N * I, N * I, N * I,
                      M * C, M * C, M * Do, L * N, L * N, N, N};
    float **ptrs[] = {&v->pix, &v->xs, &v->xmid, &v->rstd1, &v->rstd2, &v->q, &v->k, &v->v, &v->att, &v->lse, &v->gate, &v->up,
                      &v->rstd_m, &v->h0, &v->mout, &v->emb, &v->ang, &v->t_xn, &v->t_qkv, &v->t_h, &v->t_rstd, &v->t_g, &v->d_x,
                      &v->d_xn, &v->d_q, &v->d_k, &v->d_v, &v->d_att, &v->d_qkv, &v->d_h, &v->d_gate, &v->d_up, &v->d_g, &v->d_h0,
                      &v->d_mout, &v->mean1, &v->mean2, &v->mean_m, &v->t_mean};
    const size_t n = sizeof sizes / sizeof sizes[0];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += (sizes[i] + 15) & ~(size_t)15;
    if (grow((void **)&v->arena, &v->arena_cap, total, sizeof(float), err)) return -1;
    float *p = v->arena;
    for (size_t i = 0; i < n; i++) {
        *ptrs[i] = p;
        p += (sizes[i] + 15) & ~(size_t)15;
    }
    return 0;
}

static int is_full(const model_config *c, int l) {
    if (c->arch == ARCH_QWEN2_VL) return 1;
    for (int i = 0; i < c->vis.n_fullatt; i++)
        if (c->vis.fullatt[i] == l) return 1;
    return 0;
}

// norm1, norm2, ln_q: RMSNorm (Qwen2.5-VL's Qwen2RMSNorm) or LayerNorm with bias (Qwen2-VL's
// nn.LayerNorm), eps 1e-6 in both; mean is LayerNorm's only.
static void norm_fwd(const model *m, float *y, float *mean, float *rstd, const float *x, size_t w, size_t b, int N, int E) {
    if (m->vis->ln) m->K->layernorm_fwd(y, mean, rstd, x, m->w + w, m->w + b, N, E, 1e-6f);
    else m->K->rmsnorm_fwd(y, rstd, x, m->w + w, 0.0f, N, E, 1e-6f);
}

static void norm_bwd(model *m, float *dx, const float *dy, const float *x, size_t w, size_t b, const float *mean, const float *rstd,
                     int N, int E) {
    if (m->vis->ln) m->K->layernorm_bwd(dx, model_grad(m, w), model_grad(m, b), dy, x, m->w + w, mean, rstd, N, E);
    else m->K->rmsnorm_bwd(dx, model_grad(m, w), dy, x, m->w + w, 0.0f, rstd, N, E);
}

// ---- forward ----

int vision_forward(model *m, const model_batch *b, float *x, tm_error *err) {
    vision *v = m->vis;
    const model_config *c = &m->cfg;
    const struct kernels *K = m->K;
    int np = 0, nm = 0, nw = 0, nf = 0;
    if (b->n_images < 0 || (b->n_images && (!b->pixel_values || !b->image_grid_thw)))
        return tm_fail(err, "the batch's images have no pixel_values or image_grid_thw");
    if (count_layout(m, b, &np, &nm, &nw, &nf, err)) return -1;
    if (reserve(v, m, b, np, nm, nw, nf, err)) return -1;
    v->n_patches = np;
    v->n_merged = nm;
    v->n_tokens = b->n_tokens;
    if (lm_angles(v, m, b, err)) return -1;
    if (!b->n_images) return 0;
    v->trainable = 0;
    for (int i = 0; i < m->nparams; i++) v->trainable |= !strncmp(m->params[i].name, "visual.", 7) && m->params[i].trainable;
    window_layout(v, c, b);
    vision_angles(v, c, b);
    v->n_win = nw;
    v->n_full = nf;
    // windows end at cut edges, so their count is exact; the frame segments too
    size_t need = K->attention_seg_scratch_floats(v->cu_full, nf);
    size_t need_w = K->attention_seg_scratch_floats(v->cu_win, nw);
    if (grow((void **)&v->scratch, &v->scratch_cap, need > need_w ? need : need_w, sizeof(float), err)) return -1;

    const int N = np, M = nm, E = c->vis.hidden, H = c->vis.heads, hv = E / H, I = c->vis.ffn, P = patch_dim(c);
    const int C = E * c->vis.merge * c->vis.merge, Do = c->vis.out_hidden;
    const size_t NE = (size_t)N * E;
    const float *W = m->w;
    for (int n = 0; n < N; n++) memcpy(v->pix + (size_t)n * P, b->pixel_values + (size_t)v->perm[n] * P, sizeof(float) * (size_t)P);
    K->linear_fwd(v->xs, v->pix, W + v->patch_w, NULL, N, P, E);
    for (int l = 0; l < c->vis.depth; l++) {
        const vision_block *o = &v->blk[l];
        float *xl = v->xs + l * NE, *xmid = v->xmid + l * NE, *xnext = v->xs + (l + 1) * NE;
        float *q = v->q + l * NE, *k = v->k + l * NE, *vv = v->v + l * NE, *att = v->att + l * NE;
        float *gate = v->gate + (size_t)l * N * I, *up = v->up + (size_t)l * N * I;
        norm_fwd(m, v->t_xn, v->mean1 + (size_t)l * N, v->rstd1 + (size_t)l * N, xl, o->norm1, o->norm1_b, N, E);
        K->linear_fwd(v->t_qkv, v->t_xn, W + o->qkv_w, W + o->qkv_b, N, E, 3 * E);
        for (int n = 0; n < N; n++) {  // qkv rows are [3][heads][hv]
            const float *r = v->t_qkv + (size_t)n * 3 * E;
            memcpy(q + (size_t)n * E, r, sizeof(float) * (size_t)E);
            memcpy(k + (size_t)n * E, r + E, sizeof(float) * (size_t)E);
            memcpy(vv + (size_t)n * E, r + 2 * E, sizeof(float) * (size_t)E);
        }
        K->rope_angle_fwd(q, v->ang, N, H, hv);
        K->rope_angle_fwd(k, v->ang, N, H, hv);
        const int full = is_full(c, l);
        K->attention_seg_fwd(att, v->lse + (size_t)l * N * H, q, k, vv, full ? v->cu_full : v->cu_win, full ? nf : nw, N, H, hv,
                             v->scratch);
        K->linear_fwd(xmid, att, W + o->proj_w, W + o->proj_b, N, E, E);
        K->add_inplace(xmid, xl, (long)NE);
        norm_fwd(m, v->t_xn, v->mean2 + (size_t)l * N, v->rstd2 + (size_t)l * N, xmid, o->norm2, o->norm2_b, N, E);
        K->linear_fwd(gate, v->t_xn, W + o->gate_w, W + o->gate_b, N, E, I);
        if (v->ln) {
            K->quick_gelu_fwd(v->t_h, gate, (long)N * I);
        } else {
            K->linear_fwd(up, v->t_xn, W + o->up_w, W + o->up_b, N, E, I);
            K->swiglu_fwd(v->t_h, gate, up, (long)N * I);
        }
        K->linear_fwd(xnext, v->t_h, W + o->down_w, W + o->down_b, N, I, E);
        K->add_inplace(xnext, xmid, (long)NE);
    }
    // merger: ln_q, then each merge unit's 4 rows as one row of C
    norm_fwd(m, v->t_xn, v->mean_m, v->rstd_m, v->xs + (size_t)c->vis.depth * NE, v->ln_q, v->ln_q_b, N, E);
    K->linear_fwd(v->h0, v->t_xn, W + v->mlp0_w, W + v->mlp0_b, M, C, C);
    K->gelu_fwd(v->t_g, v->h0, (long)M * C);
    K->linear_fwd(v->mout, v->t_g, W + v->mlp2_w, W + v->mlp2_b, M, C, Do);
    for (int j = 0; j < M; j++) memcpy(v->emb + (size_t)v->widx[j] * Do, v->mout + (size_t)j * Do, sizeof(float) * (size_t)Do);
    for (int r = 0; r < M; r++) memcpy(x + (size_t)v->img_rows[r] * Do, v->emb + (size_t)r * Do, sizeof(float) * (size_t)Do);
    return 0;
}

// ---- backward ----

void vision_backward(model *m, const model_batch *b, float *d_x) {
    vision *v = m->vis;
    if (!b->n_images) return;
    const model_config *c = &m->cfg;
    const struct kernels *K = m->K;
    const int N = v->n_patches, M = v->n_merged, E = c->vis.hidden, H = c->vis.heads, hv = E / H, I = c->vis.ffn, P = patch_dim(c);
    const int C = E * c->vis.merge * c->vis.merge, Do = c->vis.out_hidden;
    const size_t NE = (size_t)N * E;
    const float *W = m->w;
    // dL/d(merger output) in window order; the pad rows' embedding gets nothing
    for (int j = 0; j < M; j++) {
        float *src = d_x + (size_t)v->img_rows[v->widx[j]] * Do;
        memcpy(v->d_mout + (size_t)j * Do, src, sizeof(float) * (size_t)Do);
    }
    for (int r = 0; r < M; r++) memset(d_x + (size_t)v->img_rows[r] * Do, 0, sizeof(float) * (size_t)Do);
    if (!v->trainable) return;
#define G_(off) model_grad(m, off)
    norm_fwd(m, v->t_xn, v->t_mean, v->t_rstd, v->xs + (size_t)c->vis.depth * NE, v->ln_q, v->ln_q_b, N, E);
    K->gelu_fwd(v->t_g, v->h0, (long)M * C);
    K->zero(v->d_g, (long)M * C);
    K->linear_bwd(v->d_g, G_(v->mlp2_w), G_(v->mlp2_b), v->d_mout, v->t_g, W + v->mlp2_w, M, C, Do);
    K->zero(v->d_h0, (long)M * C);
    K->gelu_bwd(v->d_h0, v->d_g, v->h0, (long)M * C);
    K->zero(v->d_xn, (long)NE);
    K->linear_bwd(v->d_xn, G_(v->mlp0_w), G_(v->mlp0_b), v->d_h0, v->t_xn, W + v->mlp0_w, M, C, C);
    K->zero(v->d_x, (long)NE);
    norm_bwd(m, v->d_x, v->d_xn, v->xs + (size_t)c->vis.depth * NE, v->ln_q, v->ln_q_b, v->mean_m, v->rstd_m, N, E);
    for (int l = c->vis.depth - 1; l >= 0; l--) {
        const vision_block *o = &v->blk[l];
        const float *xl = v->xs + l * NE, *xmid = v->xmid + l * NE;
        const float *q = v->q + l * NE, *k = v->k + l * NE, *vv = v->v + l * NE, *att = v->att + l * NE;
        const float *gate = v->gate + (size_t)l * N * I, *up = v->up + (size_t)l * N * I;
        // MLP
        norm_fwd(m, v->t_xn, v->t_mean, v->t_rstd, xmid, o->norm2, o->norm2_b, N, E);
        if (v->ln) K->quick_gelu_fwd(v->t_h, gate, (long)N * I);
        else K->swiglu_fwd(v->t_h, gate, up, (long)N * I);
        K->zero(v->d_h, (long)N * I);
        K->linear_bwd(v->d_h, G_(o->down_w), G_(o->down_b), v->d_x, v->t_h, W + o->down_w, N, I, E);
        K->zero(v->d_gate, (long)N * I);
        K->zero(v->d_xn, (long)NE);
        if (v->ln) {
            K->quick_gelu_bwd(v->d_gate, v->d_h, gate, (long)N * I);
            K->linear_bwd(v->d_xn, G_(o->gate_w), G_(o->gate_b), v->d_gate, v->t_xn, W + o->gate_w, N, E, I);
        } else {
            K->zero(v->d_up, (long)N * I);
            K->swiglu_bwd(v->d_gate, v->d_up, v->d_h, gate, up, (long)N * I);
            K->linear_bwd(v->d_xn, G_(o->gate_w), G_(o->gate_b), v->d_gate, v->t_xn, W + o->gate_w, N, E, I);
            K->linear_bwd(v->d_xn, G_(o->up_w), G_(o->up_b), v->d_up, v->t_xn, W + o->up_w, N, E, I);
        }
        norm_bwd(m, v->d_x, v->d_xn, xmid, o->norm2, o->norm2_b, v->mean2 + (size_t)l * N, v->rstd2 + (size_t)l * N, N, E);
        // attention
        K->zero(v->d_att, (long)NE);
        K->linear_bwd(v->d_att, G_(o->proj_w), G_(o->proj_b), v->d_x, att, W + o->proj_w, N, E, E);
        K->zero(v->d_q, (long)NE);
        K->zero(v->d_k, (long)NE);
        K->zero(v->d_v, (long)NE);
        const int full = is_full(c, l);
        K->attention_seg_bwd(v->d_q, v->d_k, v->d_v, v->d_att, q, k, vv, att, v->lse + (size_t)l * N * H, full ? v->cu_full : v->cu_win,
                             full ? v->n_full : v->n_win, N, H, hv, v->scratch);
        K->rope_angle_bwd(v->d_q, v->ang, N, H, hv);
        K->rope_angle_bwd(v->d_k, v->ang, N, H, hv);
        for (int n = 0; n < N; n++) {
            float *r = v->d_qkv + (size_t)n * 3 * E;
            memcpy(r, v->d_q + (size_t)n * E, sizeof(float) * (size_t)E);
            memcpy(r + E, v->d_k + (size_t)n * E, sizeof(float) * (size_t)E);
            memcpy(r + 2 * E, v->d_v + (size_t)n * E, sizeof(float) * (size_t)E);
        }
        norm_fwd(m, v->t_xn, v->t_mean, v->t_rstd, xl, o->norm1, o->norm1_b, N, E);
        K->zero(v->d_xn, (long)NE);
        K->linear_bwd(v->d_xn, G_(o->qkv_w), G_(o->qkv_b), v->d_qkv, v->t_xn, W + o->qkv_w, N, E, 3 * E);
        norm_bwd(m, v->d_x, v->d_xn, xl, o->norm1, o->norm1_b, v->mean1 + (size_t)l * N, v->rstd1 + (size_t)l * N, N, E);
    }
    K->linear_bwd(NULL, G_(v->patch_w), NULL, v->d_x, v->pix, W + v->patch_w, N, P, E);
#undef G_
}
