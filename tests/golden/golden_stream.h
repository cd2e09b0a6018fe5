/*
 * golden_stream.h - a binarized neural network compiled by tinybnn 0.1.0.
 *
 *   command:    tinybnn compile golden_stream.pt -o golden --name golden_stream --streaming
 *   model file: (a model object, not a file)
 *   sha256:     -
 *
 * Add golden_stream.c, this header and tinybnn_kernels.h to the firmware; call golden_stream_classify.
 * C99; needs only <stdint.h>, <stddef.h>, <string.h>; no malloc, no stdio, no float.
 */
#ifndef GOLDEN_STREAM_H
#define GOLDEN_STREAM_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Input: GOLDEN_STREAM_IN_LENGTH time steps of GOLDEN_STREAM_IN_CHANNELS int16 samples, interleaved
 * [T][C] (as an IMU FIFO delivers them), raw sensor counts. Values outside
 * [GOLDEN_STREAM_INPUT_MIN, GOLDEN_STREAM_INPUT_MAX] are clamped, exactly as in training. */
#define GOLDEN_STREAM_IN_CHANNELS 3
#define GOLDEN_STREAM_IN_LENGTH 17
#define GOLDEN_STREAM_INPUT_MIN (-32768)
#define GOLDEN_STREAM_INPUT_MAX (32767)

/* Output: GOLDEN_STREAM_NUM_CLASSES int32 scores; the class is the index of the largest. */
#define GOLDEN_STREAM_NUM_CLASSES 3
#define GOLDEN_STREAM_CLASS_TAP 0
#define GOLDEN_STREAM_CLASS_DOUBLE_TAP 1
#define GOLDEN_STREAM_CLASS_NONE 2

/* Scratch memory for one inference, in words: uint32_t arena[(GOLDEN_STREAM_ARENA_BYTES + 3) / 4]. */
#define GOLDEN_STREAM_ARENA_BYTES 188

/* Class names, indexed by class. */
extern const char *const golden_stream_class_names[GOLDEN_STREAM_NUM_CLASSES];

/*
 * Classify one window.
 *   samples: int16 [GOLDEN_STREAM_IN_LENGTH][GOLDEN_STREAM_IN_CHANNELS], interleaved
 *   scores:  int32 [GOLDEN_STREAM_NUM_CLASSES], written
 *   arena:   uint32_t [(GOLDEN_STREAM_ARENA_BYTES + 3) / 4], owned by the caller (reentrant)
 * Returns the class index (ties go to the lowest index).
 */
int golden_stream_classify(const int16_t *samples, int32_t *scores, uint32_t *arena);

/* The same with a static arena inside golden_stream.c: simpler, not reentrant. */
int golden_stream_classify_static(const int16_t *samples, int32_t *scores);

/*
 * Streaming (compiled with --streaming): push samples as they come; once
 * GOLDEN_STREAM_IN_LENGTH samples have arrived, and then every GOLDEN_STREAM_DECISION_HOP samples, a
 * decision gives exactly the scores golden_stream_classify gives on the window of the last
 * GOLDEN_STREAM_IN_LENGTH samples. Each layer's output is computed once, not once per window.
 *   state: uint32_t [(GOLDEN_STREAM_STATE_BYTES + 3) / 4], owned by the caller (reentrant: one per
 *          stream); no arena is needed
 */
#define GOLDEN_STREAM_STATE_BYTES 388
#define GOLDEN_STREAM_DECISION_HOP 2

/* Start a stream: no samples yet. Call before the first push. */
void golden_stream_stream_reset(void *state);

/*
 * Push n samples, int16 [n][GOLDEN_STREAM_IN_CHANNELS] interleaved, raw sensor counts.
 *   scores: int32 [GOLDEN_STREAM_NUM_CLASSES], written with the latest decision's scores
 *           when this call makes one (left alone otherwise)
 * Returns the number of decisions these samples made (0 if none).
 */
int golden_stream_stream_push(void *state, const int16_t *samples, size_t n, int32_t *scores);

/* The class of a decision's scores: the largest, ties to the lowest index (as _classify). */
int golden_stream_stream_class(const int32_t *scores);

#ifdef __cplusplus
}
#endif

#endif /* GOLDEN_STREAM_H */
