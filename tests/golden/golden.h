/*
 * golden.h - a binarized neural network compiled by tinybnn 0.1.0.
 *
 *   command:    tinybnn compile golden.pt -o golden --name golden
 *   model file: (a model object, not a file)
 *   sha256:     -
 *
 * Add golden.c, this header and tinybnn_kernels.h to the firmware; call golden_classify.
 * C99; needs only <stdint.h>, <stddef.h>, <string.h>; no malloc, no stdio, no float.
 */
#ifndef GOLDEN_H
#define GOLDEN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Input: GOLDEN_IN_LENGTH time steps of GOLDEN_IN_CHANNELS int16 samples, interleaved
 * [T][C] (as an IMU FIFO delivers them), raw sensor counts. Values outside
 * [GOLDEN_INPUT_MIN, GOLDEN_INPUT_MAX] are clamped, exactly as in training. */
#define GOLDEN_IN_CHANNELS 3
#define GOLDEN_IN_LENGTH 16
#define GOLDEN_INPUT_MIN (-32768)
#define GOLDEN_INPUT_MAX (32767)

/* Output: GOLDEN_NUM_CLASSES int32 scores; the class is the index of the largest. */
#define GOLDEN_NUM_CLASSES 3
#define GOLDEN_CLASS_TAP 0
#define GOLDEN_CLASS_DOUBLE_TAP 1
#define GOLDEN_CLASS_NONE 2

/* Scratch memory for one inference, in words: uint32_t arena[(GOLDEN_ARENA_BYTES + 3) / 4]. */
#define GOLDEN_ARENA_BYTES 196

/* Class names, indexed by class. */
extern const char *const golden_class_names[GOLDEN_NUM_CLASSES];

/*
 * Classify one window.
 *   samples: int16 [GOLDEN_IN_LENGTH][GOLDEN_IN_CHANNELS], interleaved
 *   scores:  int32 [GOLDEN_NUM_CLASSES], written
 *   arena:   uint32_t [(GOLDEN_ARENA_BYTES + 3) / 4], owned by the caller (reentrant)
 * Returns the class index (ties go to the lowest index).
 */
int golden_classify(const int16_t *samples, int32_t *scores, uint32_t *arena);

/* The same with a static arena inside golden.c: simpler, not reentrant. */
int golden_classify_static(const int16_t *samples, int32_t *scores);

#ifdef __cplusplus
}
#endif

#endif /* GOLDEN_H */
