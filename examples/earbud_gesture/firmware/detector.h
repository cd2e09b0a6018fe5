/*
 * detector.h - streaming gesture detection around a compiled tinybnn model ("gesture").
 *
 * Feed samples one at a time as the IMU FIFO and touch controller deliver them; every
 * DET_HOP samples the last GESTURE_IN_LENGTH samples are classified, and a gesture is
 * reported once its class has won DET_MIN_RUN windows in a row. After a report the
 * detector waits for DET_REARM "none" windows before it reports again, so one gesture is
 * reported once. (DET_MIN_RUN * DET_HOP samples must exceed the longest double-tap gap,
 * or the first tap of a double tap would be reported as a single tap.)
 *
 * Portable C99: the same file runs in the Cortex-M firmware and on the host.
 */
#ifndef DETECTOR_H
#define DETECTOR_H

#include <stdint.h>

#include "gesture.h"

#ifndef DET_HOP
#define DET_HOP 5 /* samples between classifications: 50 ms at 100 Hz */
#endif
#ifndef DET_MIN_RUN
#define DET_MIN_RUN 10 /* windows in a row: 500 ms, longer than any double-tap gap */
#endif
#ifndef DET_REARM
#define DET_REARM 4 /* "none" windows before the next report */
#endif
#define DET_NONE 0 /* class index of "none" */

typedef struct {
    int16_t window[GESTURE_IN_LENGTH * GESTURE_IN_CHANNELS]; /* [T][C], oldest first */
    uint32_t samples;   /* samples pushed so far */
    int run_class;      /* class of the current run of windows */
    int run_length;
    int none_run;       /* consecutive "none" windows */
    int armed;          /* may report */
    int32_t scores[GESTURE_NUM_CLASSES];
    uint32_t arena[(GESTURE_ARENA_BYTES + 3) / 4];
} detector_t;

/* Called for each detected gesture: class index and the index of the sample that completed it. */
typedef void (*detector_event_fn)(int cls, uint32_t sample, void *ctx);

void detector_init(detector_t *d);

/* Push one sample (GESTURE_IN_CHANNELS values). Returns the window's class when this sample
 * completed a classification, else -1. */
int detector_push(detector_t *d, const int16_t *sample, detector_event_fn on_event, void *ctx);

#endif /* DETECTOR_H */
