/*
 * main_host.c - the same firmware loop on the host: samples int16 [N][C] little-endian on
 * stdin, the same EVENT/DONE lines as main_qemu.c on stdout.
 */
#include <stdio.h>

#include "detector.h"

static void on_event(int cls, uint32_t sample, void *ctx)
{
    (void)ctx;
    printf("EVENT %lu %d %s\n", (unsigned long)sample, cls, gesture_class_names[cls]);
}

int main(void)
{
    static detector_t detector;
    int16_t sample[GESTURE_IN_CHANNELS];
    unsigned long n = 0, decisions = 0;
    detector_init(&detector);
    while (fread(sample, sizeof sample[0], GESTURE_IN_CHANNELS, stdin) == GESTURE_IN_CHANNELS) {
        decisions += detector_push(&detector, sample, on_event, 0) >= 0;
        n++;
    }
    printf("DONE %lu samples, %lu decisions\n", n, decisions);
    return 0;
}
