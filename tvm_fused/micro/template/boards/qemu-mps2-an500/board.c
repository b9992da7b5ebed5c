/* QEMU mps2-an500 (Cortex-M7): CMSDK APB UART0, SysTick counter.
 *
 * DWT CYCCNT reads 0 in QEMU, so runs are measured with SysTick in virtual time;
 * under `-icount shift=N` virtual time is a deterministic function of the number
 * of executed instructions, which the host converts back (see docs/rpc.md). */
#include "board.h"
#include "cm7.h"
#include "rpc_protocol.h"

#define UART0_BASE 0x40004000u
#define UART_DATA REG32(UART0_BASE + 0x00u)
#define UART_STATE REG32(UART0_BASE + 0x04u)
#define UART_CTRL REG32(UART0_BASE + 0x08u)
#define UART_BAUDDIV REG32(UART0_BASE + 0x10u)
#define UART_STATE_TXFULL 1u
#define UART_STATE_RXFULL 2u

#define SYSCLK_HZ 25000000u /* QEMU's MPS2 system clock, drives SysTick */

const char board_name[] = "qemu-mps2-an500";
const uint32_t board_counter_hz = SYSCLK_HZ;
const uint8_t board_counter_kind = RPC_COUNTER_QEMU_TICKS;

void board_init(void)
{
    UART_BAUDDIV = SYSCLK_HZ / 115200u;
    UART_CTRL = 3u; /* TX + RX enable, no interrupts: polled */
    systick_init();
}

int board_uart_getc(void)
{
    if (UART_STATE & UART_STATE_RXFULL)
        return (int)(UART_DATA & 0xFFu);
    return -1;
}

void board_uart_putc(uint8_t c)
{
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = c;
}

void board_counter_start(void) { systick_restart(); }
uint64_t board_counter_read(void) { return board_ticks(); }
