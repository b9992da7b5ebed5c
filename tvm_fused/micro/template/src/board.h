/* Board layer: the only code that differs between QEMU and the STM32 Nucleos. */
#ifndef BOARD_H
#define BOARD_H
#include <stdint.h>
#include <stddef.h>

extern const char board_name[];
extern const uint32_t board_counter_hz;   /* SysTick / core clock frequency */
extern const uint8_t board_counter_kind;  /* RPC_COUNTER_* */

void board_init(void);                    /* clocks, caches, UART, counters */
int board_uart_getc(void);                /* next received byte, or -1 if none */
void board_uart_putc(uint8_t c);          /* blocking */

/* Free-running 64-bit SysTick tick count, for timeouts (all boards). */
uint64_t board_ticks(void);
/* Start / read the measurement counter: QEMU restarts SysTick (so the phase is
   aligned to the start and instruction counts are exact); real boards use DWT CYCCNT. */
void board_counter_start(void);
uint64_t board_counter_read(void);

/* Shared SysTick helpers (systick.c). */
void systick_init(void);
void systick_restart(void);
void dwt_init(void);
void cache_enable(void);
#endif
