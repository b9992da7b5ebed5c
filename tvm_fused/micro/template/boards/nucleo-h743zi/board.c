/* NUCLEO-H743ZI(2): USART3 on PD8 (TX) / PD9 (RX), AF7, wired to the ST-LINK VCP.
 * Runs on the reset clock (HSI 64 MHz): cycle counts from DWT CYCCNT.
 * I- and D-caches are enabled as in a production build. */
#include "board.h"
#include "cm7.h"
#include "rpc_protocol.h"
#include "stm32_nucleo.h"

#define HCLK_HZ 64000000u
#define RCC_BASE 0x58024400u
#define RCC_AHB2ENR REG32(RCC_BASE + 0xDCu)
#define RCC_AHB4ENR REG32(RCC_BASE + 0xE0u)
#define RCC_APB1LENR REG32(RCC_BASE + 0xE8u)
#define GPIOD_BASE 0x58020C00u

const char board_name[] = "nucleo-h743zi";
const uint32_t board_counter_hz = HCLK_HZ;
const uint8_t board_counter_kind = RPC_COUNTER_CYCLES;

void board_init(void)
{
    RCC_AHB2ENR |= (7u << 29);  /* SRAM1EN..SRAM3EN: activations may live in SRAM1-3 (memory banks) */
    (void)RCC_AHB2ENR;
    RCC_AHB4ENR |= (1u << 3);   /* GPIODEN */
    RCC_APB1LENR |= (1u << 18); /* USART3EN; kernel clock = pclk1 = 64 MHz */
    (void)RCC_APB1LENR;
    stm32_nucleo_init(GPIOD_BASE, HCLK_HZ);
}
