/*
 * snippets.S - hand-written Thumb code whose instruction classes are known, for the test of
 * the QEMU plugin's classifier (tests/test_cycles.py holds the expected counts). Each
 * snippet sets up its registers, then runs its measured part between a checkpoint
 * (mov r11, r11) and an end marker (mov r10, r10): one segment each.
 * r0 points to RAM (snippet_ram), r1 to flash (snippet_flash, in .rodata).
 */
    .syntax unified
    .thumb

    .section .rodata
    .align 2
snippet_flash:
    .word 1, 2, 3, 4

    .bss
    .align 2
snippet_ram:
    .space 32

    .text

/* ARMv6-M: loads and stores, pipelined after a load, reads of flash. */
    .global snippet_loads
    .thumb_func
snippet_loads:
    push {r4-r7, lr}
    ldr r0, =snippet_ram
    ldr r1, =snippet_flash
    mov r11, r11
    ldr r2, [r0]
    ldr r3, [r0, #4]
    ldr r4, [r1]
    str r2, [r0, #8]
    str r3, [r0, #12]
    adds r2, r2, r3
    ldr r5, [r1, #4]
    mov r10, r10
    pop {r4-r7, pc}

/* ARMv6-M: load/store multiple, push and pop. */
    .global snippet_multiple
    .thumb_func
snippet_multiple:
    push {r4-r7, lr}
    ldr r0, =snippet_ram
    ldr r1, =snippet_flash
    mov r11, r11
    push {r4, r5, r6}
    ldmia r0!, {r2, r3}
    stmia r0!, {r2, r3}
    pop {r4, r5, r6}
    ldmia r1!, {r2, r3}
    mov r10, r10
    pop {r4-r7, pc}

/* ARMv6-M: a loop (conditional branch taken 4 times, not taken once), B, BL, BX, POP {pc},
 * MULS. */
    .global snippet_branches
    .thumb_func
snippet_branches:
    push {r4-r7, lr}
    movs r2, #5
    movs r3, #3
    mov r11, r11
1:
    subs r2, r2, #1
    bne 1b
    b 2f
    nop
2:
    bl snippet_leaf
    bl snippet_leaf_pop
    muls r2, r3, r2
    muls r2, r3, r2
    mov r10, r10
    pop {r4-r7, pc}

    .thumb_func
snippet_leaf:
    bx lr

    .thumb_func
snippet_leaf_pop:
    push {lr}
    pop {pc}

#if __ARM_ARCH >= 7
/* ARMv7E-M: 32-bit multiplies, DSP multiply-accumulates, divides, LDRD/STRD, CBZ/CBNZ,
 * TBB and a 32-bit conditional branch. */
    .global snippet_v7
    .thumb_func
snippet_v7:
    push {r4-r7, lr}
    ldr r0, =snippet_ram
    movs r3, #7
    movs r4, #3
    movs r5, #1
    mov r11, r11
    mul r2, r3, r4
    mla r2, r3, r4, r5
    mls r2, r3, r4, r5
    umull r2, r6, r4, r5
    smlal r2, r6, r4, r5
    smlad r2, r3, r4, r5
    smuad r2, r3, r4
    smlabb r2, r3, r4, r5
    sdiv r2, r3, r4
    udiv r2, r3, r4
    ldrd r2, r6, [r0]
    strd r2, r6, [r0, #8]
    cbz r4, 1f
    movs r2, #0
1:
    cbnz r4, 2f
    nop
2:
    movs r2, #1
    tbb [pc, r2]
3:
    .byte (4f - 3b) / 2, (5f - 3b) / 2
    .align 1
4:
    nop
5:
    cmp r4, #0
    bne.w 6f
    nop
6:
    mov r10, r10
    pop {r4-r7, pc}
#endif
