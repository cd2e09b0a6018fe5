/* QEMU 7.2 TCG plugin: counts guest instructions between profiling markers.
 *
 * Markers (see tb_markers.h) are matched by the first halfword of the
 * instruction only, because QEMU 7.2 can misreport the size of a 16-bit
 * Thumb instruction that ends near a 1 KiB page boundary:
 *   0x46db  mov r11, r11  checkpoint
 *   0x46d2  mov r10, r10  end marker
 * Marker instructions are not counted. Output (plugin argument out=PATH),
 * one decimal line per segment: the instructions executed between two
 * consecutive checkpoints, and from the last checkpoint to an end marker.
 * After an end marker, the next checkpoint starts a new run of segments.
 * The file is written at each end marker and again when QEMU exits.
 *
 * Build: gcc -shared -fPIC -O2 icount_plugin.c -o icount_plugin.so
 * Use:   qemu-system-arm ... -plugin icount_plugin.so,out=counts.txt
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The part of QEMU 7.2's qemu-plugin.h (API version 1) used here ---- */

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_VERSION 1

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* ---- Counting ---- */

#define MARK_CHECKPOINT 0x46dbu
#define MARK_END 0x46d2u

static uint64_t executed;   /* guest instructions so far, markers excluded */
static uint64_t last_mark;  /* `executed` at the last checkpoint */
static bool in_segment;     /* a checkpoint was passed since the last end */
static uint64_t *segments;  /* finished segment counts */
static size_t n_segments, cap_segments;
static const char *out_path;

static void add_segment(void)
{
    if (n_segments == cap_segments) {
        cap_segments = cap_segments ? 2 * cap_segments : 64;
        segments = realloc(segments, cap_segments * sizeof *segments);
        if (!segments) {
            perror("icount_plugin");
            exit(1);
        }
    }
    segments[n_segments++] = executed - last_mark;
}

static void write_segments(void)
{
    FILE *f = fopen(out_path, "w");
    size_t i;

    if (!f) {
        perror(out_path);
        return;
    }
    for (i = 0; i < n_segments; i++)
        fprintf(f, "%llu\n", (unsigned long long)segments[i]);
    fclose(f);
}

static void on_checkpoint(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (in_segment)
        add_segment();
    last_mark = executed;
    in_segment = true;
}

static void on_end(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (in_segment)
        add_segment();
    in_segment = false;
    write_segments();
}

static void on_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    write_segments();
}

/* Called once per translated block: instrument each of its instructions. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);

    (void)id;
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint8_t *code = qemu_plugin_insn_data(insn);
        unsigned first = code[0] | (unsigned)code[1] << 8; /* little-endian */

        if (first == MARK_CHECKPOINT)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_checkpoint, QEMU_PLUGIN_CB_NO_REGS, NULL);
        else if (first == MARK_END)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        else
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    int i;

    (void)info;
    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0)
            out_path = argv[i] + 4;
    }
    if (!out_path) {
        fprintf(stderr, "icount_plugin: missing argument out=PATH\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
