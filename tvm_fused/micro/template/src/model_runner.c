/* Runs the generated model, measures it, and guards its arena with canaries.
 *
 * The input is written straight into the arena (tvmgen_default_input_ptr), as a
 * production firmware would: no extra RAM. If a run overwrites the input (the
 * memory planner may reuse its bytes), later repeats would see a different input,
 * so repeats stop and the reply says the input was not intact. */
#include "model_runner.h"
#include <string.h>
#include "board.h"
#include "crc32.h"
#include "rpc_protocol.h"
#include "tvmgen_default.h"

#define CANARY_WORDS 16u
#define CANARY_LO 0xCA7A11A5u
#define CANARY_HI 0x5EA1ED0Du

__attribute__((section(".bss.arena_canary_lo"), aligned(16))) volatile uint32_t arena_canary_lo[CANARY_WORDS];
__attribute__((section(".bss.arena_canary_hi"), aligned(4))) volatile uint32_t arena_canary_hi[CANARY_WORDS];
extern uint8_t __arena_start[], __arena_end[];
extern uint32_t _sdata, _edata, _sbss, _ebss;

static bool canary_broken_ever;
static uint64_t counter_overhead;

static void canaries_arm(void)
{
    for (uint32_t i = 0; i < CANARY_WORDS; i++) {
        arena_canary_lo[i] = CANARY_LO ^ i;
        arena_canary_hi[i] = CANARY_HI ^ i;
    }
}

bool arena_canaries_ok(void)
{
    for (uint32_t i = 0; i < CANARY_WORDS; i++)
        if (arena_canary_lo[i] != (CANARY_LO ^ i) || arena_canary_hi[i] != (CANARY_HI ^ i))
            return false;
    return true;
}

bool arena_canaries_ever_broken(void) { return canary_broken_ever; }

void model_init(void)
{
    memset(__arena_start, 0, (size_t)(__arena_end - __arena_start));
    canaries_arm();
    board_counter_start();
    counter_overhead = board_counter_read();
}

#ifdef TVMGEN_DEFAULT_STREAM_INPUT
/* Streamed input: the model pulls rows through tvmgen_default_read_input_rows() and
   never holds the frame. This test firmware serves the rows from a whole frame: on QEMU
   one uploaded over RPC into the board's spare RAM (section .stream_frame, outside the
   RAM budget, standing in for a camera); elsewhere a const all-zero frame in flash
   (set_input is refused: model_input_size() is 0). */
#ifdef BOARD_STREAM_FRAME_SECTION
__attribute__((section(".stream_frame"), aligned(16))) static int8_t stream_frame[TVMGEN_DEFAULT_INPUT_SIZE];
#define STREAM_FRAME_BYTES TVMGEN_DEFAULT_INPUT_SIZE
#else
static const int8_t stream_frame[TVMGEN_DEFAULT_INPUT_SIZE] = {0};
#define STREAM_FRAME_BYTES 0u
#endif
static int32_t stream_next_row;

int32_t tvmgen_default_read_input_rows(int8_t *rows, int32_t first_row, int32_t n_rows)
{
    if (first_row != stream_next_row || n_rows < 1 || first_row + n_rows > TVMGEN_DEFAULT_INPUT_ROWS)
        return -1;
    memcpy(rows, stream_frame + (uint32_t)first_row * TVMGEN_DEFAULT_INPUT_ROW_BYTES,
           (uint32_t)n_rows * TVMGEN_DEFAULT_INPUT_ROW_BYTES);
    stream_next_row += n_rows;
    return 0;
}

uint8_t *model_input(void) { return (uint8_t *)stream_frame; }
uint32_t model_input_size(void) { return STREAM_FRAME_BYTES; }
#else
uint8_t *model_input(void) { return (uint8_t *)tvmgen_default_input_ptr(); }
uint32_t model_input_size(void) { return TVMGEN_DEFAULT_INPUT_SIZE; }
#endif
uint8_t *model_output(void) { return (uint8_t *)tvmgen_default_output_ptr(); }
uint32_t model_output_size(void) { return TVMGEN_DEFAULT_OUTPUT_SIZE; }
uint32_t model_arena_size(void) { return TVMGEN_DEFAULT_ARENA_SIZE; }

uint32_t runtime_static_ram_bytes(void)
{
    return (uint32_t)(((char *)&_edata - (char *)&_sdata) + ((char *)&_ebss - (char *)&_sbss));
}

void model_run(uint32_t repeat, run_result_t *r)
{
    struct tvmgen_default_inputs in = {.input = tvmgen_default_input_ptr()};
    struct tvmgen_default_outputs out = {.output = tvmgen_default_output_ptr()};
    uint32_t input_crc = crc32_update(0, model_input(), model_input_size());
    bool input_intact = true;

    memset(r, 0, sizeof *r);
    r->min = UINT64_MAX;
    r->overhead = counter_overhead;
    if (repeat == 0)
        repeat = 1;
    for (uint32_t i = 0; i < repeat; i++) {
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
        stream_next_row = 0;
#endif
        board_counter_start();
        int32_t rc = tvmgen_default_run(&in, &out);
        uint64_t t = board_counter_read();
        r->runs_done++;
        r->model_status = rc;
        r->total += t;
        if (t < r->min)
            r->min = t;
        if (t > r->max)
            r->max = t;
        if (rc != 0 || !arena_canaries_ok())
            break;
        input_intact = crc32_update(0, model_input(), model_input_size()) == input_crc;
        if (!input_intact)
            break;
    }
    if (arena_canaries_ok()) {
        r->flags |= RPC_RUN_CANARIES_OK;
    } else {
        canary_broken_ever = true;
        canaries_arm(); /* re-arm so the next run is checked on its own */
    }
    if (input_intact)
        r->flags |= RPC_RUN_INPUT_INTACT;
    if (stack_high_water_bytes() < stack_size_bytes())
        r->flags |= RPC_RUN_STACK_OK;
}
