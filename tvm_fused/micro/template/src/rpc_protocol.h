/* Wire format of the host <-> firmware RPC (see docs/rpc.md).
 *
 * This header is the single source of the protocol constants: the Python side
 * (tvm_fused/micro/protocol.py) mirrors them and tests/micro checks that both agree.
 *
 * Frame (little-endian):
 *   0  u8   RPC_MAGIC0
 *   1  u8   RPC_MAGIC1
 *   2  u16  seq        request sequence number, echoed in the reply
 *   4  u8   cmd        command; replies carry cmd | RPC_REPLY_FLAG
 *   5  u8   status     0 in requests; RPC_STATUS_* in replies
 *   6  u16  len        payload length, <= RPC_MAX_PAYLOAD
 *   8  u8   payload[len]
 *   8+len u32 crc      CRC-32 (IEEE, as zlib.crc32) of bytes 2 .. 8+len-1
 */
#ifndef RPC_PROTOCOL_H
#define RPC_PROTOCOL_H

#define RPC_PROTOCOL_VERSION 1u
#define RPC_MAGIC0 0xA5u
#define RPC_MAGIC1 0x5Au
#define RPC_HEADER_SIZE 8u
#define RPC_CRC_SIZE 4u
#ifndef RPC_MAX_PAYLOAD
#define RPC_MAX_PAYLOAD 1024u
#endif
#define RPC_REPLY_FLAG 0x80u

/* Commands */
#define RPC_CMD_PING 0x01u       /* payload echoed back */
#define RPC_CMD_INFO 0x02u       /* board, arena, input/output sizes and shapes */
#define RPC_CMD_SET_INPUT 0x03u  /* u32 offset, data[]: write into the model input */
#define RPC_CMD_RUN 0x04u        /* u32 repeat -> counters */
#define RPC_CMD_GET_OUTPUT 0x05u /* u32 offset, u16 length -> data[] */
#define RPC_CMD_STATS 0x06u      /* stack high-water, canaries, static RAM, error counters */
#define RPC_CMD_CRC32 0x07u      /* u8 what (0 = rest of payload, 1 = input, 2 = output) -> u32 */
#define RPC_CMD_BOOT 0x7Fu       /* unsolicited, sent once after reset (seq 0) */

/* Reply status codes */
#define RPC_STATUS_OK 0u
#define RPC_STATUS_BAD_CRC 1u       /* frame CRC mismatch: resend */
#define RPC_STATUS_UNKNOWN_CMD 2u
#define RPC_STATUS_TOO_LONG 3u      /* len > RPC_MAX_PAYLOAD: frame dropped */
#define RPC_STATUS_TIMEOUT 4u       /* frame truncated: no byte for RPC_FRAME_TIMEOUT_MS */
#define RPC_STATUS_RANGE 5u         /* offset/length outside the tensor */
#define RPC_STATUS_BAD_PAYLOAD 6u   /* payload too short for the command */
#define RPC_STATUS_MODEL_ERROR 7u   /* tvmgen_default_run returned non-zero */
#define RPC_STATUS_CANARY 8u        /* arena canary overwritten during the run */
#define RPC_STATUS_FAULT 9u         /* CPU fault while handling the request; device halted */
#define RPC_STATUS_STACK 10u        /* stack painted area exhausted (overflow) */

/* RUN reply flags */
#define RPC_RUN_CANARIES_OK 0x01u
#define RPC_RUN_INPUT_INTACT 0x02u  /* input bytes unchanged by the run(s) */
#define RPC_RUN_STACK_OK 0x04u

/* INFO counter kinds */
#define RPC_COUNTER_QEMU_TICKS 0u   /* SysTick ticks of virtual time (QEMU -icount) */
#define RPC_COUNTER_CYCLES 1u       /* DWT CYCCNT core cycles */

#endif
