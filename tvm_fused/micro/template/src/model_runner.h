/* Glue between the RPC server and the generated AOT model (tvmgen_default.h). */
#ifndef MODEL_RUNNER_H
#define MODEL_RUNNER_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint32_t runs_done;
    int32_t model_status;   /* last tvmgen_default_run() result */
    uint8_t flags;          /* RPC_RUN_* */
    uint64_t total, min, max; /* measurement counter per run (ticks or cycles) */
    uint64_t overhead;      /* counter value of an empty measurement */
} run_result_t;

void model_init(void);
/* Inputs (outputs) as one byte range: every tensor concatenated in order. */
void model_input_write(uint32_t offset, const uint8_t *data, uint32_t n);
void model_output_read(uint32_t offset, uint8_t *out, uint32_t n);
uint32_t model_input_crc(void);
uint32_t model_output_crc(void);
uint32_t model_input_size(void);  /* all inputs, bytes */
uint32_t model_output_size(void); /* all outputs, bytes */
uint32_t model_num_inputs(void);
uint32_t model_num_outputs(void);
uint32_t model_tensor_size(bool input, uint32_t index);
uint32_t model_arena_size(void);
void model_run(uint32_t repeat, run_result_t *r);
bool arena_canaries_ok(void);     /* checked now */
bool arena_canaries_ever_broken(void);
uint32_t stack_high_water_bytes(void); /* startup.c */
uint32_t stack_size_bytes(void);
uint32_t runtime_static_ram_bytes(void); /* .data + .bss, arena and stack excluded */
#endif
