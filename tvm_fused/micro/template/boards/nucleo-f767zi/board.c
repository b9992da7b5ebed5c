/* NUCLEO-F767ZI: USART3 on PD8 (TX) / PD9 (RX), AF7, wired to the ST-LINK VCP.
 * Runs on the reset clock (HSI 16 MHz, flash 0 wait states): cycle counts from
 * DWT CYCCNT. I- and D-caches are enabled as in a production build. */
#include "board.h"
#include "cm7.h"
#include "rpc_protocol.h"
#include "stm32_nucleo.h"

#define HCLK_HZ 16000000u
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG32(RCC_BASE + 0x40u)
#define GPIOD_BASE 0x40020C00u

const char board_name[] = "nucleo-f767zi";
const uint32_t board_counter_hz = HCLK_HZ;
const uint8_t board_counter_kind = RPC_COUNTER_CYCLES;

void board_init(void)
{
    RCC_AHB1ENR |= (1u << 3);  /* GPIODEN */
    RCC_APB1ENR |= (1u << 18); /* USART3EN */
    (void)RCC_APB1ENR;
    stm32_nucleo_init(GPIOD_BASE, HCLK_HZ);
}
