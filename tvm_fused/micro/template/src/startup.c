/* Vector table and reset handler for every board.
 *
 * Reset_Handler is naked assembly so that the FPU is enabled before any compiled
 * code runs (with -mfloat-abi=hard GCC may use VFP registers anywhere). */
#include <stdint.h>
#include <string.h>
#include "cm7.h"

#define STACK_PAINT 0xC0FFEE11u

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
extern int main(void);
void Reset_Handler(void);
void reset_c(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm volatile(
        "ldr r0, =_estack      \n"
        "msr msp, r0           \n"
        /* CPACR: full access to CP10/CP11 (the FPU) */
        "ldr r0, =0xE000ED88   \n"
        "ldr r1, [r0]          \n"
        "orr r1, r1, #(0xF << 20) \n"
        "str r1, [r0]          \n"
        "dsb                   \n"
        "isb                   \n"
        "b reset_c             \n");
}

/* Fill the stack below the current frame with a pattern: the lowest overwritten
   word later gives the stack high-water mark. */
static void __attribute__((noinline)) paint_stack(void)
{
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (volatile uint32_t *p = &_sstack; (uint32_t)p < sp - 64u; p++)
        *p = STACK_PAINT;
}

__attribute__((noreturn)) void reset_c(void)
{
    extern const uint32_t g_vectors[];
    SCB_VTOR = (uint32_t)g_vectors;
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
    paint_stack();
    main();
    for (;;) {
    }
}

/* Lowest stack word that is no longer painted -> bytes of stack used. */
uint32_t stack_high_water_bytes(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT)
        p++;
    return (uint32_t)((char *)&_estack - (char *)p);
}

uint32_t stack_size_bytes(void) { return (uint32_t)((char *)&_estack - (char *)&_sstack); }

void Default_Handler(void)
{
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

/* 16 core vectors + external IRQs (all Default_Handler; no IRQ is enabled). */
#define N_EXT_IRQ 150
__attribute__((section(".isr_vector"), used)) const uint32_t g_vectors[16 + N_EXT_IRQ] = {
    (uint32_t)&_estack,
    (uint32_t)Reset_Handler,
    (uint32_t)NMI_Handler,
    (uint32_t)HardFault_Handler,
    (uint32_t)HardFault_Handler, /* MemManage: escalates, reported the same way */
    (uint32_t)HardFault_Handler, /* BusFault: escalates, reported the same way */
    (uint32_t)HardFault_Handler, /* UsageFault: escalates, reported the same way */
    0, 0, 0, 0,
    (uint32_t)SVC_Handler,
    (uint32_t)DebugMon_Handler,
    0,
    (uint32_t)PendSV_Handler,
    (uint32_t)SysTick_Handler,
    [16 ... 16 + N_EXT_IRQ - 1] = (uint32_t)Default_Handler,
};
