/*
 * host_driver.c - runs a compiled model on the host, for tests and for users without the
 * ARM toolchain. Build with -DTB_NAME=<name> and -include <name>.h.
 *
 * stdin:  N windows, each int16 [IN_LENGTH][IN_CHANNELS] little-endian
 * stdout: per window, NUM_CLASSES int32 scores then the int32 class index
 */
#include <stdio.h>
#include <stdlib.h>

#define TB_CAT2(a, b) a##b
#define TB_CAT(a, b) TB_CAT2(a, b)
#define TB_FN(suffix) TB_CAT(TB_NAME, suffix)

#ifndef TB_ARENA_BYTES
#error "build with -DTB_ARENA_BYTES=<NAME>_ARENA_BYTES and friends"
#endif

int main(void)
{
    static int16_t samples[TB_IN_LENGTH * TB_IN_CHANNELS];
    static uint32_t arena[(TB_ARENA_BYTES + 3) / 4];
    int32_t scores[TB_NUM_CLASSES + 1];
    size_t n = sizeof samples / sizeof samples[0];
    while (fread(samples, sizeof samples[0], n, stdin) == n) {
        scores[TB_NUM_CLASSES] = TB_FN(_classify)(samples, scores, arena);
        if (fwrite(scores, sizeof scores[0], TB_NUM_CLASSES + 1, stdout) != TB_NUM_CLASSES + 1)
            return 1;
    }
    return ferror(stdin) ? 1 : 0;
}
