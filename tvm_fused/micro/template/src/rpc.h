#ifndef RPC_H
#define RPC_H
#include <stdint.h>
void rpc_init(void);
void rpc_send_boot(void);
void rpc_poll(void);          /* handle at most one received byte / timeout */
void rpc_report_fault(const uint32_t info[6]); /* from the fault handler; does not return */
#endif
