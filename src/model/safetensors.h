// model/safetensors: reading (mmap) and writing the safetensors format.
//
// Format: u64 little-endian header size H, then H bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
// then the data section; offsets are relative to its start.
// The parser checks everything a hostile or truncated file can get wrong (header
// past the end, offsets out of range or overlapping, size not matching dtype×shape,
// unknown dtypes) and reports it as one line naming the file and tensor.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef enum { ST_F32, ST_BF16, ST_F16, ST_OTHER } st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    char dtype_name[12];
    int ndim;
    int64_t shape[8];
    int64_t numel;
    uint64_t begin, end;  // relative to the data section
} st_tensor;

typedef struct st_file {
    char *path;
    int fd;
    const uint8_t *map;
    size_t size;
    size_t data_offset;  // 8 + header size
    int ntensors;
    st_tensor *tensors;
} st_file;

// Parses and validates a header from a buffer holding (at least the start of) a file of
// total size file_size. Used by st_open and by the fuzzer. path is only for messages.
int st_parse(st_file *f, const uint8_t *buf, size_t buf_size, size_t file_size, const char *path, tm_error *err);
int st_open(st_file *f, const char *path, tm_error *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
// Converts a tensor to fp32 into dst[numel].
int st_read_f32(const st_file *f, const st_tensor *t, float *dst, tm_error *err);

// Writing: tensors given as fp32 arrays, stored as dtype (F32, BF16 with
// round-to-nearest-even, or F16). Written to a temporary name and renamed.
typedef struct st_out_tensor {
    const char *name;
    int ndim;
    int64_t shape[8];
    const float *data;
} st_out_tensor;
int st_write(const char *path, const st_out_tensor *ts, int n, st_dtype dtype, tm_error *err);
// The same with the values produced while writing instead of held (data unused): fill gets
// tensor i's elements [start, start + count) in order, a chunk at a time, so a file larger
// than memory (a randomly initialized 8B model) needs one chunk of it.
typedef void (*st_fill_fn)(void *ctx, int tensor, int64_t start, int64_t count, float *dst);
int st_write_fill(const char *path, const st_out_tensor *ts, int n, st_dtype dtype, st_fill_fn fill, void *ctx, tm_error *err);

// Scalar conversions (exposed for tests).
float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_bf16(float f);
float st_f16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);
