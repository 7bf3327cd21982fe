// image_tool: what tests/oracle/test_image.py compares with PIL + numpy.
//   image_tool patches IMG [preprocessor_config.json] OUT.bin
//       Qwen2-VL pixel_values: OUT.bin = int32 grid_t, grid_h, grid_w, n, dim, then n*dim float32
//   image_tool resize bilinear|bicubic|lanczos W H IMG OUT.png   (Pillow's Image.resize)
//   image_tool cvresize W H IMG OUT.png        (cv2.resize INTER_CUBIC)
//   image_tool blur K IMG OUT.png              (cv2.GaussianBlur (K, K), sigma 0)
//   image_tool rotate DEGREES IMG OUT.png      (the repo's rotate_image)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "image/image.h"
#include "image/perturb.h"
#include "image/qwen2vl_processor.h"

static int fail(const char *msg) {
    fprintf(stderr, "image_tool: %s\n", msg);
    return 1;
}

int main(int argc, char **argv) {
    tm_error err;
    img_rgb im;
    if (argc >= 4 && !strcmp(argv[1], "patches")) {
        img_qwen2vl_config c;
        img_qwen2vl_defaults(&c);
        if (argc == 5 && img_qwen2vl_load_config(&c, argv[3], &err)) return fail(err.msg);
        if (img_load(&im, argv[2], &err)) return fail(err.msg);
        img_patches p;
        if (img_qwen2vl_process(&c, &im, &p, &err)) return fail(err.msg);
        FILE *f = fopen(argv[argc - 1], "wb");
        if (!f) return fail("cannot write the output");
        int hdr[5] = {p.grid_thw[0], p.grid_thw[1], p.grid_thw[2], p.n, p.dim};
        fwrite(hdr, sizeof hdr, 1, f);
        fwrite(p.pixel_values, sizeof(float), (size_t)p.n * p.dim, f);
        fclose(f);
        img_patches_free(&p);
        img_free(&im);
        return 0;
    }
    if (argc == 7 && !strcmp(argv[1], "resize")) {
        img_filter fl = !strcmp(argv[2], "bilinear") ? IMG_BILINEAR : !strcmp(argv[2], "bicubic") ? IMG_BICUBIC : IMG_LANCZOS;
        img_rgb out;
        if (img_load(&im, argv[5], &err) || img_resize_pil(&out, &im, atoi(argv[3]), atoi(argv[4]), fl, &err) ||
            img_save(&out, argv[6], &err))
            return fail(err.msg);
        img_free(&im), img_free(&out);
        return 0;
    }
    img_rgb out;
    if (argc == 6 && !strcmp(argv[1], "cvresize")) {
        if (img_load(&im, argv[4], &err) || img_resize_cv_cubic(&out, &im, atoi(argv[2]), atoi(argv[3]), &err) ||
            img_save(&out, argv[5], &err))
            return fail(err.msg);
        img_free(&im), img_free(&out);
        return 0;
    }
    if (argc == 5 && (!strcmp(argv[1], "blur") || !strcmp(argv[1], "rotate"))) {
        int rc = img_load(&im, argv[3], &err);
        if (!rc) rc = !strcmp(argv[1], "blur") ? img_gaussian_blur_cv(&out, &im, atoi(argv[2]), &err) : img_rotate(&out, &im, atof(argv[2]), &err);
        if (rc || img_save(&out, argv[4], &err)) return fail(err.msg);
        img_free(&im), img_free(&out);
        return 0;
    }
    return fail("usage: image_tool patches IMG [CONFIG] OUT | resize FILTER W H IMG OUT | cvresize W H IMG OUT | blur K IMG OUT | rotate DEG IMG OUT");
}
