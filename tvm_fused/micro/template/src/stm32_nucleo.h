/* Code the two STM32 Nucleo boards share (stm32_nucleo.c, built only for them via
 * BOARD_SRCS in their board.mk): USART3 on PD8 (TX) / PD9 (RX), AF7, wired to the
 * ST-LINK VCP (same USART3 address and register layout on the F7 and the H7),
 * and DWT CYCCNT as the measurement counter. */
#ifndef STM32_NUCLEO_H
#define STM32_NUCLEO_H
#include <stdint.h>

/* After the board enabled the GPIOD and USART3 clocks: PD8/PD9 to AF7, USART3 at
 * 115200 8N1 from ``usart_clock_hz``, then caches, SysTick and DWT. */
void stm32_nucleo_init(uint32_t gpiod_base, uint32_t usart_clock_hz);
#endif
