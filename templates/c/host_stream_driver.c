/*
 * host_stream_driver.c - streams samples through a compiled model's streaming API on the
 * host, for tests. Build with -DTB_NAME=<name> and -include <name>.h.
 *
 * argv:   chunk sizes (samples per push), used in turn, cycled; none: 1
 * stdin:  int16 [N][IN_CHANNELS] little-endian
 * stdout: per push that made a decision, int32: samples pushed so far, decisions made by the
 *         push, NUM_CLASSES scores (the latest decision's), the class
 */
#include <stdio.h>
#include <stdlib.h>

#define TB_CAT2(a, b) a##b
#define TB_CAT(a, b) TB_CAT2(a, b)
#define TB_FN(suffix) TB_CAT(TB_NAME, suffix)

#ifndef TB_STATE_BYTES
#error "build with -DTB_STATE_BYTES=<NAME>_STATE_BYTES and friends"
#endif

#define TB_MAX_CHUNK 4096

int main(int argc, char **argv)
{
    static uint32_t state[(TB_STATE_BYTES + 3) / 4];
    static int16_t samples[TB_MAX_CHUNK * TB_IN_CHANNELS];
    int32_t out[TB_NUM_CLASSES + 3];
    int32_t pushed = 0;
    TB_FN(_stream_reset)(state);
    for (int turn = 0;; turn++) {
        size_t chunk = argc > 1 ? (size_t)strtoul(argv[1 + turn % (argc - 1)], NULL, 10) : 1;
        if (chunk < 1 || chunk > TB_MAX_CHUNK)
            return 2;
        size_t got = fread(samples, sizeof samples[0] * TB_IN_CHANNELS, chunk, stdin);
        if (got == 0)
            break;
        int decisions = TB_FN(_stream_push)(state, samples, got, out + 2);
        pushed += (int32_t)got;
        if (decisions) {
            out[0] = pushed;
            out[1] = decisions;
            out[TB_NUM_CLASSES + 2] = TB_FN(_stream_class)(out + 2);
            if (fwrite(out, sizeof out[0], TB_NUM_CLASSES + 3, stdout) != TB_NUM_CLASSES + 3)
                return 1;
        }
    }
    return ferror(stdin) ? 1 : 0;
}
