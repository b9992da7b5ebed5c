/* Firmware entry: board, model arena and canaries, then serve RPC forever. */
#include "board.h"
#include "cm7.h"
#include "model_runner.h"
#include "rpc.h"

int main(void)
{
    board_init();
    model_init();
    rpc_init();
    rpc_send_boot();
    for (;;)
        rpc_poll();
}

/* Report a CPU fault to the host (with the faulting PC), then halt. */
void hardfault_c(const uint32_t *frame)
{
    uint32_t info[6] = {SCB_CFSR, SCB_HFSR, frame[6], frame[5], SCB_MMFAR, SCB_BFAR};
    rpc_report_fault(info);
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile(
        "tst lr, #4   \n"
        "ite eq       \n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "b hardfault_c\n");
}
