/* detector.c - see detector.h. */
#include "detector.h"

#include <string.h>

#define DET_CHANNELS GESTURE_IN_CHANNELS
#define DET_LENGTH GESTURE_IN_LENGTH

void detector_init(detector_t *d)
{
    memset(d, 0, sizeof *d);
#ifndef DET_WINDOWED
    gesture_stream_reset(d->state);
#endif
    d->run_class = DET_NONE;
    d->armed = 1;
}

/* The class of the window ending at this sample, when a decision falls here; else -1. */
static int detector_decision(detector_t *d, const int16_t *sample)
{
    d->samples++;
#ifdef DET_WINDOWED
    /* Slide the window by one sample: the memmove costs far less than an inference. */
    memmove(d->window, d->window + DET_CHANNELS, sizeof d->window - DET_CHANNELS * sizeof d->window[0]);
    memcpy(d->window + (DET_LENGTH - 1) * DET_CHANNELS, sample, DET_CHANNELS * sizeof d->window[0]);
    if (d->samples < DET_LENGTH || (d->samples - DET_LENGTH) % DET_HOP != 0)
        return -1;
    return gesture_classify(d->window, d->scores, d->arena);
#else
    if (!gesture_stream_push(d->state, sample, 1, d->scores))
        return -1;
    return gesture_stream_class(d->scores);
#endif
}

int detector_push(detector_t *d, const int16_t *sample, detector_event_fn on_event, void *ctx)
{
    int cls = detector_decision(d, sample);
    if (cls < 0)
        return -1;
    if (cls == d->run_class) {
        d->run_length++;
    } else {
        d->run_class = cls;
        d->run_length = 1;
    }
    d->none_run = cls == DET_NONE ? d->none_run + 1 : 0;
    if (d->none_run >= DET_REARM)
        d->armed = 1;
    if (d->armed && cls != DET_NONE && d->run_length == DET_MIN_RUN) {
        on_event(cls, d->samples - 1, ctx);
        d->armed = 0;
    }
    return cls;
}
