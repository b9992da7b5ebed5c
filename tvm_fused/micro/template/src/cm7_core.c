/* Core peripherals shared by all boards: SysTick time base, DWT, caches. */
#include "board.h"
#include "cm7.h"

#define SYSTICK_RELOAD 0xFFFFFFu
static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

void systick_init(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    systick_wraps = 0;
    SYST_CSR = 7u; /* core clock, interrupt on wrap, enable */
}

/* Writing CVR clears the counter and restarts the tick phase at this instruction
   (QEMU: the timer period is re-aligned to the write), so what follows is counted
   from a known phase: deterministic under -icount. */
void systick_restart(void)
{
    SYST_CVR = 0;
    systick_wraps = 0;
    SCB_ICSR = (1u << 25); /* PENDSTCLR: drop a wrap that may be pending */
}

uint64_t board_ticks(void)
{
    uint32_t wraps, val, pending;
    do {
        wraps = systick_wraps;
        val = SYST_CVR;
        pending = SCB_ICSR & ICSR_PENDSTSET;
    } while (wraps != systick_wraps);
    if (pending) { /* wrapped, interrupt not taken yet */
        val = SYST_CVR;
        wraps++;
    }
    /* After a clear the counter reads 0, then reloads to 0xFFFFFF on the next tick. */
    return ((uint64_t)wraps << 24) + ((0x1000000u - val) & 0xFFFFFFu);
}

void dwt_init(void)
{
    DEMCR |= (1u << 24); /* TRCENA */
    DWT_LAR = 0xC5ACCE55u;
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u; /* CYCCNTENA */
}

/* Enable the L1 I- and D-caches (Cortex-M7 TRM sequence): real boards only. */
void cache_enable(void)
{
    cm7_dsb();
    cm7_isb();
    SCB_ICIALLU = 0;
    cm7_dsb();
    cm7_isb();
    SCB_CCR |= (1u << 17); /* IC */
    cm7_dsb();
    cm7_isb();

    SCB_CSSELR = 0; /* level 1 data cache */
    cm7_dsb();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = (ccsidr >> 13) & 0x7FFFu;
    uint32_t ways = (ccsidr >> 3) & 0x3FFu;
    do {
        uint32_t w = ways;
        do {
            SCB_DCISW = ((sets & 0x1FFu) << 5) | ((w & 3u) << 30);
        } while (w-- != 0);
    } while (sets-- != 0);
    cm7_dsb();
    SCB_CCR |= (1u << 16); /* DC */
    cm7_dsb();
    cm7_isb();
}
