/* USART3 (STM32F7 / STM32H7 register layout, same address on both): the UART
 * code the two Nucleo boards share. Each board.c enables the clocks and pins,
 * then calls stm32_usart3_init with the USART kernel clock. */
#ifndef STM32_USART3_H
#define STM32_USART3_H
#include <stdint.h>
#include "cm7.h"

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

/* 115200 8N1 from the USART kernel clock. */
static inline void stm32_usart3_init(uint32_t kernel_clock_hz)
{
    USART_BRR = (kernel_clock_hz + 115200u / 2u) / 115200u;
    USART_CR1 = (1u << 3) | (1u << 2) | 1u; /* TE, RE, UE */
}

static inline int stm32_usart3_getc(void)
{
    uint32_t isr = USART_ISR;
    if (isr & ISR_ORE)
        USART_ICR = ISR_ORE; /* a lost byte shows up as a CRC error / timeout */
    if (isr & ISR_RXNE)
        return (int)(USART_RDR & 0xFFu);
    return -1;
}

static inline void stm32_usart3_putc(uint8_t c)
{
    while (!(USART_ISR & ISR_TXE)) {
    }
    USART_TDR = c;
}
#endif
