// libFuzzer target: the safetensors header parser must reject any byte string with an
// error message, never crash, hang or leak.
#include <stdint.h>
#include <stdlib.h>
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f = {0};
    tm_error err;
    if (st_parse(&f, data, size, size, "fuzz.safetensors", &err) == 0) {
        for (int i = 0; i < f.ntensors; i++) free(f.tensors[i].name);
        free(f.tensors);
    }
    return 0;
}
