/* Profiling markers recognised by icount_plugin.c.
 *
 * TB_MARK() is a checkpoint (`mov r11, r11`, Thumb 0x46db); the plugin
 * reports the guest instructions executed between consecutive checkpoints.
 * TB_MARK_END() (`mov r10, r10`, 0x46d2) closes the last segment. Both are
 * architectural no-ops, and compile to nothing unless TB_PROFILE is defined.
 * The "memory" clobber keeps memory accesses from moving across a marker. */
#ifndef TB_MARKERS_H
#define TB_MARKERS_H

#ifdef TB_PROFILE
#define TB_MARK() __asm__ volatile("mov r11, r11" ::: "memory")
#define TB_MARK_END() __asm__ volatile("mov r10, r10" ::: "memory")
#else
#define TB_MARK() ((void)0)
#define TB_MARK_END() ((void)0)
#endif

#endif
