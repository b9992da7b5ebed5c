/* NUCLEO-F767ZI: USART3 on PD8 (TX) / PD9 (RX), AF7, wired to the ST-LINK VCP.
 * Runs on the reset clock (HSI 16 MHz, flash 0 wait states): cycle counts from
 * DWT CYCCNT. I- and D-caches are enabled as in a production build. */
#include "board.h"
#include "cm7.h"
#include "rpc_protocol.h"
#include "stm32_usart3.h"

#define HCLK_HZ 16000000u
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG32(RCC_BASE + 0x40u)
#define GPIOD_BASE 0x40020C00u
#define GPIOD_MODER REG32(GPIOD_BASE + 0x00u)
#define GPIOD_AFRH REG32(GPIOD_BASE + 0x24u)

const char board_name[] = "nucleo-f767zi";
const uint32_t board_counter_hz = HCLK_HZ;
const uint8_t board_counter_kind = RPC_COUNTER_CYCLES;

void board_init(void)
{
    RCC_AHB1ENR |= (1u << 3);  /* GPIODEN */
    RCC_APB1ENR |= (1u << 18); /* USART3EN */
    (void)RCC_APB1ENR;
    GPIOD_MODER = (GPIOD_MODER & ~(0xFu << 16)) | (0xAu << 16);        /* PD8, PD9: AF */
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 0x77u;                         /* AF7 */
    stm32_usart3_init(HCLK_HZ);
    cache_enable();
    systick_init();
    dwt_init();
}

int board_uart_getc(void) { return stm32_usart3_getc(); }
void board_uart_putc(uint8_t c) { stm32_usart3_putc(c); }

void board_counter_start(void) { DWT_CYCCNT = 0; }
uint64_t board_counter_read(void) { return DWT_CYCCNT; }
