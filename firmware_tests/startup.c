/* Vector table, reset handler and fault handlers for the firmware harness.
 *
 * The reset handler sets up RAM, paints the stack, runs main() and exits
 * through semihosting with main's return value as QEMU's exit status.
 * Exceptions exit with reserved statuses (tinybnn/firmware.py maps them):
 *   3  HardFault  (every fault on ARMv6-M; escalated faults elsewhere, since
 *                  MemManage/BusFault/UsageFault/SecureFault stay disabled)
 *   4  NMI
 *   5  any other exception (a handler the harness never expects to run)
 * so test programs should return statuses other than 3, 4 and 5. */
#include <stdint.h>

#include "semihost.h"
#include "stack.h"

int main(void);

/* Linker script symbols (boards/common.ld). */
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_bottom[], __stack_top[];

#define FAULT_HARD 3
#define FAULT_NMI 4
#define FAULT_OTHER 5

/* System control registers. */
#define CPACR (*(volatile uint32_t *)0xe000ed88u) /* coprocessor (FPU) access */
#define MPU_CTRL (*(volatile uint32_t *)0xe000ed94u)
#define MPU_RBAR (*(volatile uint32_t *)0xe000ed9cu)
#define MPU_RASR (*(volatile uint32_t *)0xe000eda0u)

/* Global so that the linker script can name it as the ELF entry point. */
void reset_handler(void) __attribute__((noreturn));
static void hardfault_handler(void);
static void nmi_handler(void);
static void other_handler(void);
/* Called from the handlers' assembly, hence not static. */
void tb_fault(const uint32_t *frame, int status) __attribute__((noreturn));

/* Exception numbers 0..15: initial SP, then handler addresses. No interrupt
 * is ever enabled, so the table stops at SysTick. */
__attribute__((used, section(".vectors"))) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top,
    reset_handler,
    nmi_handler,
    hardfault_handler,
    other_handler, /* MemManage */
    other_handler, /* BusFault */
    other_handler, /* UsageFault */
    other_handler, /* SecureFault (ARMv8-M) */
    0, 0, 0,       /* reserved */
    other_handler, /* SVCall */
    other_handler, /* DebugMonitor */
    0,             /* reserved */
    other_handler, /* PendSV */
    other_handler, /* SysTick */
};

void reset_handler(void)
{
    const uint32_t *src = __data_load;
    uint32_t *dst;

#ifdef __ARM_FP
    /* Grant full access to CP10/CP11 (the FPU) before any FP instruction. */
    CPACR |= 0xfu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (dst = __data_start; dst < __data_end;)
        *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end;)
        *dst++ = 0;
    tb_stack_paint();
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    /* Cortex-M3/M4/M7: QEMU's mps2 boards ignore accesses to unmapped memory,
     * so make the 1 KiB below the stack a no-access MPU region (base aligned
     * by common.ld) to turn an overflow into a fault. The other boards fault
     * below RAM by themselves. */
    MPU_RBAR = ((uint32_t)(uintptr_t)__stack_bottom - 1024u) | 1u << 4; /* region 0 */
    MPU_RASR = 1u << 28 | 9u << 1 | 1u; /* execute-never, no access, 2^(9+1) B, on */
    MPU_CTRL = 1u << 2 | 1u;            /* default memory map elsewhere, MPU on */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    tb_exit(main());
}

/* Reports the fault and exits. `frame` is the stack pointer at exception
 * entry: the stacked r0-r3, r12, lr, pc, xPSR, if the stack was usable. */
void tb_fault(const uint32_t *frame, int status)
{
    static const char *const names[] = {"HARDFAULT", "NMI", "UNEXPECTED EXCEPTION"};

    tb_print("\n");
    tb_print(names[status - FAULT_HARD]);
    if (frame >= __stack_bottom && frame + 8 <= __stack_top) {
        tb_print(" pc=");
        tb_print_hex(frame[6]);
        tb_print(" lr=");
        tb_print_hex(frame[5]);
    } else {
        tb_print(" sp=");
        tb_print_hex((uint32_t)(uintptr_t)frame);
        tb_print(" outside the stack (overflow?)");
    }
    tb_print("\n");
    tb_exit(status);
}

/* Each handler passes the exception-entry SP (the stacked frame) to
 * tb_fault. It stays on that stack when there are at least 128 bytes left
 * below it; otherwise (stack overflow, corrupt SP) it moves SP to the stack
 * top, so that even an overflow gets reported. */
#define STR(x) #x
#define XSTR(x) STR(x)
#define FAULT_ENTRY(name, status)                                           \
    __attribute__((naked)) static void name(void)                           \
    {                                                                       \
        __asm__ volatile("mov r0, sp\n\t"                                   \
                         "ldr r1, =__stack_top\n\t"                         \
                         "cmp r0, r1\n\t"                                   \
                         "bhi 1f\n\t"                                       \
                         "ldr r2, =__stack_bottom + 128\n\t"                \
                         "cmp r0, r2\n\t"                                   \
                         "bhs 2f\n"                                         \
                         "1:\tmov sp, r1\n"                                 \
                         "2:\tmovs r1, #" XSTR(status) "\n\t"               \
                         "ldr r2, =tb_fault\n\t"                            \
                         "bx r2\n\t");                                      \
    }

FAULT_ENTRY(hardfault_handler, FAULT_HARD)
FAULT_ENTRY(nmi_handler, FAULT_NMI)
FAULT_ENTRY(other_handler, FAULT_OTHER)
