/* Semihosting console and exit for the tinybnn firmware test harness.
 *
 * All calls trap with `bkpt 0xab`, which every M-profile core (ARMv6-M
 * included) supports; QEMU must run with -semihosting-config enable=on. */
#ifndef TB_SEMIHOST_H
#define TB_SEMIHOST_H

#include <stdint.h>

/* Write a NUL-terminated string to the host console (SYS_WRITE0). */
void tb_print(const char *s);
/* Write a signed decimal integer, e.g. "-42". */
void tb_print_int(int32_t v);
/* Write a 32-bit value as "0x" followed by 8 hex digits. */
void tb_print_hex(uint32_t v);
/* Stop the emulator; QEMU exits with `status` as its process status. */
void tb_exit(int status) __attribute__((noreturn));

#endif
