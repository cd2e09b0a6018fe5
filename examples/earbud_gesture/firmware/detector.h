/*
 * detector.h - streaming gesture detection around a compiled tinybnn model ("gesture").
 *
 * Feed samples one at a time as the IMU FIFO and touch controller deliver them. The model's
 * streaming API (compiled with --streaming) decides every GESTURE_DECISION_HOP samples on
 * the last GESTURE_IN_LENGTH samples, computing each layer's output once; a gesture is
 * reported once its class has won DET_MIN_RUN decisions in a row. After a report the
 * detector waits for DET_REARM "none" decisions before it reports again, so one gesture is
 * reported once. (DET_MIN_RUN * DET_HOP samples must exceed the longest double-tap gap,
 * 0.44 s, or the first tap of a double tap would be reported as a single tap.)
 *
 * Built with -DDET_WINDOWED, it is the loop the demo ran before streaming: it slides the
 * window by one sample and classifies the whole window every DET_HOP = 5 samples.
 *
 * Portable C99: the same file runs in the Cortex-M firmware and on the host.
 */
#ifndef DETECTOR_H
#define DETECTOR_H

#include <stdint.h>

#include "gesture.h"

#ifdef DET_WINDOWED
#define DET_HOP 5      /* samples between classifications: 50 ms at 100 Hz */
#define DET_MIN_RUN 10 /* windows in a row: 500 ms */
#define DET_REARM 4    /* "none" windows before the next report: 200 ms */
#else
#define DET_HOP GESTURE_DECISION_HOP /* 16 samples: 160 ms at 100 Hz */
#define DET_MIN_RUN 4                /* decisions in a row: 640 ms, at least the 500 ms above */
#define DET_REARM 2                  /* "none" decisions before the next report: 320 ms */
/* Chosen on simulated users 6000-6009, never on the demo's field-test users 5000-5009: 3
 * decisions in a row (480 ms) found 87 % of their gestures, 4 found 98 %, 5 found 94 %. */
#endif
#define DET_NONE 0 /* class index of "none" */

typedef struct {
#ifdef DET_WINDOWED
    int16_t window[GESTURE_IN_LENGTH * GESTURE_IN_CHANNELS]; /* [T][C], oldest first */
    uint32_t arena[(GESTURE_ARENA_BYTES + 3) / 4];
#else
    uint32_t state[(GESTURE_STATE_BYTES + 3) / 4]; /* the model's streaming state */
#endif
    uint32_t samples;   /* samples pushed so far */
    int run_class;      /* class of the current run of decisions */
    int run_length;
    int none_run;       /* consecutive "none" decisions */
    int armed;          /* may report */
    int32_t scores[GESTURE_NUM_CLASSES];
} detector_t;

/* Called for each detected gesture: class index and the index of the sample that completed it. */
typedef void (*detector_event_fn)(int cls, uint32_t sample, void *ctx);

void detector_init(detector_t *d);

/* Push one sample (GESTURE_IN_CHANNELS values). Returns the decision's class when this sample
 * completed one, else -1. */
int detector_push(detector_t *d, const int16_t *sample, detector_event_fn on_event, void *ctx);

#endif /* DETECTOR_H */
