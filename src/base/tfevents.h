// base/tfevents: TensorBoard event files, written by hand (no TensorFlow, no protobuf
// library). An event file is a sequence of TFRecords:
//   uint64 length | uint32 masked CRC32C of the length bytes | data | uint32 masked CRC32C of data
// (little-endian; masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8), each record one
// serialized tensorflow.Event (event.proto): wall_time = 1 (double), step = 2 (int64),
// file_version = 3 (string, "brain.Event:2" in the first record), summary = 5 (Summary,
// summary.proto: repeated Value value = 1; Value: tag = 1 (string), simple_value = 2 (float)).
// One scalar per event, as torch's SummaryWriter.add_scalar writes them.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/error.h"

typedef struct tm_tfevents {
    FILE *f;
    char path[4096];
} tm_tfevents;

// Creates logdir (mkdir -p) and in it events.out.tfevents.<unix time>.<host>.<pid>.0, the
// name TensorBoard's writers use, starting with the file_version record.
int tfevents_open(tm_tfevents *w, const char *logdir, tm_error *err);
// One scalar: tag, value (stored as a float, as simple_value is), step, wall time in seconds.
int tfevents_scalar(tm_tfevents *w, const char *tag, double value, int64_t step, double wall_time, tm_error *err);
// Flushes what was written (after each logging step, so a killed run keeps its events).
int tfevents_flush(tm_tfevents *w, tm_error *err);
void tfevents_close(tm_tfevents *w);
// CRC-32C (Castagnoli), as TFRecord frames use it; exposed for the tests.
uint32_t tfevents_crc32c(const void *data, size_t n);
