/* QEMU 7.2 TCG plugin: counts guest instructions between profiling markers,
 * and (with classes=PATH) what kind of instructions they were.
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
 * Classes (argument classes=PATH): the same segments, one line each, with the
 * count of every class in the order of the first line, "# <names>". Each
 * instruction is classified once, when QEMU translates it, from its Thumb
 * encoding (`classify`): loads and stores (single; "pipelined" when the
 * instruction before it in the same translated block is a load single, as
 * the Cortex-M3/M4 overlap them), load/store multiple with their register
 * counts, branches (conditional ones resolved taken or not at run time, from
 * where execution continues), multiplies, DSP multiply-accumulates, divides.
 * Data reads from the Code region (addresses below 0x20000000, where the
 * boards keep flash) are counted at run time too, as are the instructions'
 * halfwords, for a flash wait-state model. tinybnn/firmware/cycles.py turns
 * these counts into cycles with each core's published timings.
 *
 * Build: gcc -shared -fPIC -O2 icount_plugin.c -o icount_plugin.so
 * Use:   qemu-system-arm ... -plugin icount_plugin.so,out=counts.txt[,classes=classes.txt]
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
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef uint32_t qemu_plugin_meminfo_t;

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                                          uint64_t vaddr, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
                                      void *userdata);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* ---- Classes ---- */

/* The classes, in the order of the classes file. Counts of instructions, except
 * the *_regs (registers moved by the load/store multiples of that class), the
 * halfwords of the executed instructions (a 32-bit one counts two) and
 * code_reads (data reads from the Code region). */
#define CLASSES(X)                                                                     \
    X(alu) X(load) X(load_pipelined) X(store) X(store_pipelined) X(load_multiple)       \
    X(load_multiple_regs) X(store_multiple) X(store_multiple_regs) X(pop_pc) X(pop_pc_regs) \
    X(branch) X(branch_link) X(table_branch) X(cond_taken) X(cond_not_taken) X(mul)     \
    X(mla) X(mul_long) X(dsp_mac) X(div) X(halfwords) X(code_reads)
#define ENUM(name) C_##name,
enum { CLASSES(ENUM) N_CLASSES };
#define NAME(name) #name,
static const char *const class_names[N_CLASSES] = {CLASSES(NAME)};

#define CODE_REGION_END 0x20000000u /* ARMv6-M/ARMv7-M: Code is 0x00000000-0x1fffffff */

static unsigned popcount16(unsigned v)
{
    unsigned n = 0;
    for (v &= 0xffffu; v; v &= v - 1)
        n++;
    return n;
}

/* What one instruction is. `regs` gets the register count of a load/store
 * multiple (LDRD/STRD: 2). Anything not listed is an ALU-class instruction
 * (data processing, moves, compares, IT, hints, barriers, system). */
static int classify(unsigned hw1, unsigned hw2, bool wide, unsigned *regs)
{
    *regs = 0;
    if (!wide) {
        if ((hw1 & 0xff00u) == 0x4700u) /* BX, BLX (register) */
            return C_branch;
        if ((hw1 & 0xfc00u) == 0x4400u && ((hw1 >> 8) & 3u) != 1u &&
            ((((hw1 >> 7) & 1u) << 3) | (hw1 & 7u)) == 15u) /* ADD/MOV pc, Rm */
            return C_branch;
        if ((hw1 & 0xffc0u) == 0x4340u) /* MULS */
            return C_mul;
        if ((hw1 & 0xf800u) == 0x4800u) /* LDR (literal) */
            return C_load;
        if ((hw1 & 0xf000u) == 0x5000u) /* register offset: STR, STRH, STRB, then loads */
            return ((hw1 >> 9) & 7u) < 3u ? C_store : C_load;
        if ((hw1 & 0xe000u) == 0x6000u || (hw1 & 0xf000u) == 0x8000u ||
            (hw1 & 0xf000u) == 0x9000u) /* immediate offset: word, byte, halfword, SP */
            return (hw1 >> 11) & 1u ? C_load : C_store;
        if ((hw1 & 0xfe00u) == 0xb400u) { /* PUSH */
            *regs = popcount16(hw1 & 0x1ffu);
            return C_store_multiple;
        }
        if ((hw1 & 0xfe00u) == 0xbc00u) { /* POP */
            *regs = popcount16(hw1 & 0x1ffu);
            return hw1 & 0x100u ? C_pop_pc : C_load_multiple;
        }
        if ((hw1 & 0xf000u) == 0xc000u) { /* STM, LDM */
            *regs = popcount16(hw1 & 0xffu);
            return hw1 & 0x800u ? C_load_multiple : C_store_multiple;
        }
        if ((hw1 & 0xf000u) == 0xd000u && ((hw1 >> 8) & 0xfu) < 0xeu) /* B<cond> */
            return C_cond_taken; /* resolved at run time */
        if ((hw1 & 0xf500u) == 0xb100u) /* CBZ, CBNZ */
            return C_cond_taken;
        if ((hw1 & 0xf800u) == 0xe000u) /* B */
            return C_branch;
        return C_alu;
    }
    if ((hw1 & 0xf800u) == 0xf000u && (hw2 & 0x8000u)) { /* branches, misc control */
        if ((hw2 & 0xd000u) == 0xd000u)
            return C_branch_link; /* BL */
        if ((hw2 & 0xd000u) == 0x9000u)
            return C_branch; /* B.W */
        if ((hw2 & 0xd000u) == 0x8000u && ((hw1 >> 6) & 0xfu) < 0xeu)
            return C_cond_taken; /* B<cond>.W */
        return C_alu; /* MSR, MRS, barriers, hints */
    }
    if ((hw1 & 0xfe40u) == 0xe800u) { /* LDM, STM (and PUSH.W, POP.W) */
        *regs = popcount16(hw2);
        if (hw1 & 0x10u)
            return hw2 & 0x8000u ? C_pop_pc : C_load_multiple;
        return C_store_multiple;
    }
    if ((hw1 & 0xfe40u) == 0xe840u) { /* LDRD, STRD, exclusives, TBB, TBH */
        if ((hw1 & 0xfff0u) == 0xe8d0u && (hw2 & 0xffe0u) == 0xf000u)
            return C_table_branch;
        if ((hw1 & 0xffe0u) == 0xe840u) /* LDREX, STREX */
            return hw1 & 0x10u ? C_load : C_store;
        *regs = 2;
        return hw1 & 0x10u ? C_load_multiple : C_store_multiple;
    }
    if ((hw1 & 0xfe00u) == 0xf800u) /* load/store single, byte to word */
        return hw1 & 0x10u ? C_load : C_store;
    if ((hw1 & 0xff80u) == 0xfb00u) { /* multiply, multiply-accumulate */
        unsigned op1 = (hw1 >> 4) & 7u;
        if (op1 == 0u) /* MUL (Ra = pc), MLA, MLS */
            return (hw2 >> 12) == 0xfu && !(hw2 & 0x30u) ? C_mul : C_mla;
        return op1 == 7u ? C_alu : C_dsp_mac; /* USAD8 / SMLAxy, SMLAD, SMUAD, SMLSD... */
    }
    if ((hw1 & 0xff80u) == 0xfb80u) { /* long multiply, divide */
        unsigned op1 = (hw1 >> 4) & 7u;
        return op1 == 1u || op1 == 3u ? C_div : C_mul_long;
    }
    return C_alu;
}

/* ---- Counting ---- */

#define MARK_CHECKPOINT 0x46dbu
#define MARK_END 0x46d2u

static uint64_t executed;            /* guest instructions so far, markers excluded */
static uint64_t last_mark;           /* `executed` at the last checkpoint */
static uint64_t counts[N_CLASSES];   /* per class, so far */
static uint64_t last_counts[N_CLASSES];
static bool in_segment;              /* a checkpoint was passed since the last end */
static uint64_t *segments;           /* finished segment counts, 1 + N_CLASSES each */
static size_t n_segments, cap_segments;
static const char *out_path, *classes_path;
static uint64_t branch_fallthrough;  /* of the conditional branch just executed, or 0 */

static void add_segment(void)
{
    size_t k;

    if (n_segments == cap_segments) {
        cap_segments = cap_segments ? 2 * cap_segments : 64;
        segments = realloc(segments, cap_segments * (1 + N_CLASSES) * sizeof *segments);
        if (!segments) {
            perror("icount_plugin");
            exit(1);
        }
    }
    segments[n_segments * (1 + N_CLASSES)] = executed - last_mark;
    for (k = 0; k < N_CLASSES; k++)
        segments[n_segments * (1 + N_CLASSES) + 1 + k] = counts[k] - last_counts[k];
    n_segments++;
}

static void write_segments(void)
{
    FILE *f = fopen(out_path, "w");
    size_t i, k;

    if (!f) {
        perror(out_path);
        return;
    }
    for (i = 0; i < n_segments; i++)
        fprintf(f, "%llu\n", (unsigned long long)segments[i * (1 + N_CLASSES)]);
    fclose(f);
    if (!classes_path)
        return;
    f = fopen(classes_path, "w");
    if (!f) {
        perror(classes_path);
        return;
    }
    fprintf(f, "#");
    for (k = 0; k < N_CLASSES; k++)
        fprintf(f, " %s", class_names[k]);
    fprintf(f, "\n");
    for (i = 0; i < n_segments; i++) {
        for (k = 0; k < N_CLASSES; k++)
            fprintf(f, "%s%llu", k ? " " : "",
                    (unsigned long long)segments[i * (1 + N_CLASSES) + 1 + k]);
        fprintf(f, "\n");
    }
    fclose(f);
}

static void mark(void)
{
    last_mark = executed;
    memcpy(last_counts, counts, sizeof counts);
}

static void on_checkpoint(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (in_segment)
        add_segment();
    mark();
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

/* A conditional branch ends its translated block: the next block's address
 * says whether it was taken. Counted as taken when executed; undone here. */
static void on_cond_branch(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    branch_fallthrough = (uint64_t)(uintptr_t)userdata;
}

static void on_block(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    if (branch_fallthrough && (uint64_t)(uintptr_t)userdata == branch_fallthrough) {
        counts[C_cond_taken]--;
        counts[C_cond_not_taken]++;
    }
    branch_fallthrough = 0;
}

static void on_load(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                    void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (!qemu_plugin_mem_is_store(info) && vaddr < CODE_REGION_END)
        counts[C_code_reads]++;
}

/* Called once per translated block: instrument each of its instructions. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    int previous = C_alu;

    (void)id;
    if (classes_path)
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)qemu_plugin_tb_vaddr(tb));
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint8_t *code = qemu_plugin_insn_data(insn);
        unsigned first = code[0] | (unsigned)code[1] << 8; /* little-endian */
        bool wide = (first >> 11) >= 0x1du;
        unsigned second = 0, regs;
        int cls;

        if (first == MARK_CHECKPOINT || first == MARK_END) {
            qemu_plugin_register_vcpu_insn_exec_cb(
                insn, first == MARK_END ? on_end : on_checkpoint, QEMU_PLUGIN_CB_NO_REGS, NULL);
            previous = C_alu; /* a MOV: no load pipelines across it */
            continue;
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
        if (!classes_path)
            continue;
        if (wide && qemu_plugin_insn_size(insn) >= 4)
            second = code[2] | (unsigned)code[3] << 8;
        cls = classify(first, second, wide, &regs);
        if ((cls == C_load || cls == C_store) &&
            (previous == C_load || previous == C_load_pipelined))
            cls = cls == C_load ? C_load_pipelined : C_store_pipelined;
        previous = cls;
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &counts[cls], 1);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                   &counts[C_halfwords], wide ? 2 : 1);
        if (regs)
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       &counts[cls + 1], regs);
        if (cls == C_cond_taken)
            qemu_plugin_register_vcpu_insn_exec_cb(
                insn, on_cond_branch, QEMU_PLUGIN_CB_NO_REGS,
                (void *)(uintptr_t)(qemu_plugin_insn_vaddr(insn) + (wide ? 4u : 2u)));
        /* QEMU 7.2 calls no QEMU_PLUGIN_MEM_R callback for these loads: ask for both. */
        if (cls == C_load || cls == C_load_pipelined || cls == C_load_multiple ||
            cls == C_pop_pc || cls == C_table_branch)
            qemu_plugin_register_vcpu_mem_cb(insn, on_load, QEMU_PLUGIN_CB_NO_REGS,
                                             QEMU_PLUGIN_MEM_RW, NULL);
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
        else if (strncmp(argv[i], "classes=", 8) == 0)
            classes_path = argv[i] + 8;
    }
    if (!out_path) {
        fprintf(stderr, "icount_plugin: missing argument out=PATH\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
