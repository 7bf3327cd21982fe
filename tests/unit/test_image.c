// src/image: decoding and encoding, bad input, the draws, the exact operations.
// (The resamplers are proven against Pillow and OpenCV in tests/oracle/test_image.py
// and test_perturb.py.)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/io.h"
#include "image/perturb.h"
#include "image/qwen2vl_processor.h"
#include "image/visual_task.h"
#include "test.h"

int main(void) {
    tm_error err;
    char dir[] = "/tmp/temper_test_image_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char png[256], jpg[256], cut[256], txt[256];
    snprintf(png, sizeof png, "%s/a.png", dir);
    snprintf(jpg, sizeof jpg, "%s/a.jpg", dir);
    snprintf(cut, sizeof cut, "%s/cut.png", dir);
    snprintf(txt, sizeof txt, "%s/not.png", dir);

    img_rgb im, back = {0};
    CHECK(img_alloc(&im, 13, 7, 0, 0, 0, &err) == 0, "img_alloc");
    for (int i = 0; i < 13 * 7 * 3; i++) im.px[i] = (uint8_t)(i * 37 + 11);
    CHECK(img_save(&im, png, &err) == 0 && img_load(&back, png, &err) == 0 && back.w == 13 && back.h == 7 &&
              !memcmp(back.px, im.px, 13 * 7 * 3), "PNG round trip is lossless");
    img_free(&back);
    CHECK(img_save(&im, jpg, &err) == 0 && img_load(&back, jpg, &err) == 0 && back.w == 13 && back.h == 7,
          "JPEG round trip keeps the size");
    img_free(&back);

    // A truncated PNG: one line naming the file.
    size_t len;
    char *data = io_read_file(png, &len, &err);
    CHECK(data && io_write_file_atomic(cut, data, len / 2, &err) == 0, "write a truncated PNG");
    free(data);
    int rc = img_load(&back, cut, &err);
    CHECK(rc == -1 && strstr(err.msg, cut) && !strchr(err.msg, '\n') && back.px == NULL,
          "a truncated PNG fails with one line naming it: %s", err.msg);
    CHECK(io_write_file_atomic(txt, "hello", 5, &err) == 0 && img_load(&back, txt, &err) == -1 && strstr(err.msg, txt),
          "a text file named .png fails naming it: %s", err.msg);
    CHECK(img_load(&back, "/nonexistent/x.png", &err) == -1 && strstr(err.msg, "/nonexistent/x.png"),
          "a missing file fails naming it: %s", err.msg);

    // Crop is a copy of the window; outside the image is an error.
    img_rgb c;
    CHECK(img_crop(&c, &im, 2, 3, 5, 4, &err) == 0 && c.w == 5 && c.h == 4 && !memcmp(c.px, im.px + (3 * 13 + 2) * 3, 15) &&
              !memcmp(c.px + 3 * 15, im.px + (6 * 13 + 2) * 3, 15), "crop copies the window");
    img_free(&c);
    CHECK(img_crop(&c, &im, 10, 0, 5, 2, &err) == -1 && strstr(err.msg, "outside"), "crop outside the image fails: %s", err.msg);

    // Noise: numpy's float -> uint8 cast (truncate, wrap) then a saturating add.
    img_rgb z, n;
    img_alloc(&z, 2, 1, 10, 10, 10, &err);
    double noise[6] = {-3.7, 3.9, -300.5, 255.9, 256.2, -1e10};
    CHECK(img_add_noise(&n, &z, noise, &err) == 0 && n.px[0] == 255 && n.px[1] == 13 && n.px[2] == 222 &&
              n.px[3] == 255 && n.px[4] == 10 && n.px[5] == 10,
          "noise wraps like numpy's astype(uint8) and saturates like cv2.add (%d %d %d %d %d %d)", n.px[0], n.px[1],
          n.px[2], n.px[3], n.px[4], n.px[5]);
    img_free(&z), img_free(&n);

    // Draws: the partner is another image, uniformly; lambda and angle in range.
    img_perturb_opts o;
    img_perturb_defaults(&o);
    int hits[4] = {0}, self = 0, range_ok = 1;
    for (int s = 0; s < 400; s++) {
        rng r;
        img_example_rng(&r, (uint64_t)s, 1);
        img_draw d;
        img_perturb_draw(&d, IMG_OP_MIXUP, &o, &r, 1, 4, &im, &err);
        hits[d.partner]++;
        self += d.partner == 1;
        range_ok &= d.lambda >= 0.7 && d.lambda < 0.9;
        img_example_rng(&r, (uint64_t)s, 1);
        img_perturb_draw(&d, IMG_OP_BLUR, &o, &r, 1, 4, &im, &err);
        range_ok &= d.ksize == 3 || d.ksize == 5 || d.ksize == 7;
    }
    CHECK(self == 0 && hits[0] > 100 && hits[2] > 100 && hits[3] > 100 && range_ok,
          "partner never the image itself, spread over the others (%d %d %d); lambda, ksize in range", hits[0], hits[2], hits[3]);
    rng r;
    img_draw d;
    CHECK(img_perturb_draw(&d, IMG_OP_CONCAT, &o, &r, 0, 1, &im, &err) == -1 && strstr(err.msg, "at least 2"),
          "concat of a one-image set fails: %s", err.msg);

    // smart_resize (values from HF's function).
    int h, w;
    CHECK(img_qwen2vl_smart_resize(57, 100, 28, 3136, 1003520, &h, &w, &err) == 0 && h == 56 && w == 112, "smart_resize 57x100 -> 56x112");
    CHECK(img_qwen2vl_smart_resize(20, 30, 28, 3136, 1003520, &h, &w, &err) == 0 && h == 56 && w == 84, "smart_resize 20x30 -> 56x84 (min_pixels)");
    CHECK(img_qwen2vl_smart_resize(42, 70, 28, 3136, 1003520, &h, &w, &err) == 0 && h == 56 && w == 56,
          "smart_resize rounds halves to even (42/28 = 1.5 -> 2, 70/28 = 2.5 -> 2)");
    CHECK(img_qwen2vl_smart_resize(500, 700, 28, 3136, 200704, &h, &w, &err) == 0 && h == 364 && w == 504, "smart_resize 500x700 -> 364x504 (max_pixels)");
    CHECK(img_qwen2vl_smart_resize(1, 300, 28, 3136, 1003520, &h, &w, &err) == -1 && strstr(err.msg, "aspect"), "aspect ratio over 200 fails");

    // Every operation on awkward sizes (1x1, 6x5, 1-pixel-wide), so ASan/UBSan see each
    // resampler's edges; the values are checked against Pillow and OpenCV by the oracle.
    int sizes[][2] = {{1, 1}, {6, 5}, {1, 9}, {40, 3}, {13, 7}};
    int all_ok = 1;
    for (int a = 0; a < 5; a++) {
        img_rgb x, y, out;
        img_alloc(&x, sizes[a][0], sizes[a][1], 0, 0, 0, &err);
        img_alloc(&y, sizes[(a + 1) % 5][0], sizes[(a + 1) % 5][1], 0, 0, 0, &err);
        for (int i = 0; i < x.w * x.h * 3; i++) x.px[i] = (uint8_t)(i * 29);
        for (int i = 0; i < y.w * y.h * 3; i++) y.px[i] = (uint8_t)(i * 53);
        for (int op = 0; op < 6; op++) {
            img_perturb_opts oo;
            img_perturb_defaults(&oo);
            oo.max_kernel_size = 49;
            img_example_rng(&r, 3, (uint64_t)a);
            int rc2 = img_perturb_draw(&d, (img_op)op, &oo, &r, 0, 2, &x, &err);
            if (!rc2) rc2 = img_perturb_apply(&out, &x, &y, &d, &oo, &err);
            if (rc2) printf("# %s on %dx%d: %s\n", img_op_name((img_op)op), x.w, x.h, err.msg);
            else img_free(&out);
            img_draw_free(&d);
            all_ok &= rc2 == 0;
        }
        for (int f = 0; f < 3; f++) {
            all_ok &= img_resize_pil(&out, &x, 5 + a, 17 - a, (img_filter)f, &err) == 0;
            img_free(&out);
        }
        all_ok &= img_gaussian_blur_cv(&out, &x, 49, &err) == 0;
        img_free(&out);
        img_qwen2vl_config qc;
        img_qwen2vl_defaults(&qc);
        img_patches pp;
        int prc = img_qwen2vl_process(&qc, &x, &pp, &err);
        if (!prc) img_patches_free(&pp);
        if (prc) printf("# processor on %dx%d: %s\n", x.w, x.h, err.msg);
        all_ok &= prc == 0;
        img_free(&x), img_free(&y);
    }
    CHECK(all_ok, "every operation runs on 1x1, 6x5, 1x9, 40x3, 13x7 images");
    const char *paths[2] = {png, jpg};
    img_rgb one;
    img_perturb_opts po;
    img_perturb_defaults(&po);
    CHECK(img_perturb_one(&one, &d, IMG_OP_CONCAT, &po, 9, paths, 2, 0, &err) == 0 && d.partner == 1 && one.h == 7 &&
              one.w == 12, "img_perturb_one: concat of a.png with its only partner a.jpg is 12x7 (%dx%d)", one.w, one.h);
    img_free(&one), img_draw_free(&d);
    const char *bad_paths[2] = {png, cut};
    CHECK(img_perturb_one(&one, &d, IMG_OP_MIXUP, &po, 9, bad_paths, 2, 0, &err) == -1 && strstr(err.msg, cut) && one.px == NULL,
          "img_perturb_one: a broken partner fails naming it: %s", err.msg);
    img_draw_free(&d);
    visual_example vx;
    int vis_ok = 1;
    for (int i = 0; i < 6; i++) {
        img_rgb v;
        vis_ok &= visual_render(&v, &vx, 1, i, &err) == 0 && vx.answer >= 1 && vx.answer <= 12;
        img_free(&v);
    }
    CHECK(vis_ok, "the visual task renders each kind with an answer in 1..12");

    img_free(&im);
    unlink(png), unlink(jpg), unlink(cut), unlink(txt);
    rmdir(dir);
    return test_done();
}
