/* UART, counter and init code shared by the STM32 Nucleo boards (see stm32_nucleo.h). */
#include "board.h"
#include "cm7.h"
#include "stm32_nucleo.h"

#define GPIO_MODER(base) REG32((base) + 0x00u)
#define GPIO_AFRH(base) REG32((base) + 0x24u)
#define USART3_BASE 0x40004800u
#define USART_CR1 REG32(USART3_BASE + 0x00u)
#define USART_BRR REG32(USART3_BASE + 0x0Cu)
#define USART_ISR REG32(USART3_BASE + 0x1Cu)
#define USART_ICR REG32(USART3_BASE + 0x20u)
#define USART_RDR REG32(USART3_BASE + 0x24u)
#define USART_TDR REG32(USART3_BASE + 0x28u)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)

void stm32_nucleo_init(uint32_t gpiod_base, uint32_t usart_clock_hz)
{
    GPIO_MODER(gpiod_base) = (GPIO_MODER(gpiod_base) & ~(0xFu << 16)) | (0xAu << 16); /* PD8, PD9: AF */
    GPIO_AFRH(gpiod_base) = (GPIO_AFRH(gpiod_base) & ~0xFFu) | 0x77u;                 /* AF7 */
    USART_BRR = (usart_clock_hz + 115200u / 2u) / 115200u;
    USART_CR1 = (1u << 3) | (1u << 2) | 1u; /* TE, RE, UE */
    cache_enable();
    systick_init();
    dwt_init();
}

int board_uart_getc(void)
{
    uint32_t isr = USART_ISR;
    if (isr & ISR_ORE)
        USART_ICR = ISR_ORE; /* a lost byte shows up as a CRC error / timeout */
    if (isr & ISR_RXNE)
        return (int)(USART_RDR & 0xFFu);
    return -1;
}

void board_uart_putc(uint8_t c)
{
    while (!(USART_ISR & ISR_TXE)) {
    }
    USART_TDR = c;
}

void board_counter_start(void) { DWT_CYCCNT = 0; }
uint64_t board_counter_read(void) { return DWT_CYCCNT; }
