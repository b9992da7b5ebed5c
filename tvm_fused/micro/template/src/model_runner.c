/* Runs the generated model, measures it, and guards its arena with canaries.
 *
 * The inputs are written straight into the arena (tvmgen_default_input_ptr_at), as a
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

/* A model's inputs (outputs) are addressed as one byte range: the tensors concatenated in
 * order, each living at its own arena offset. Older single-tensor exports have no
 * TVMGEN_DEFAULT_NUM_INPUTS and one input_ptr()/output_ptr(). */
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
/* Streamed input: the model pulls rows through tvmgen_default_read_input_rows() and
   never holds the frame. This test firmware serves the rows from a whole frame: on QEMU
   one uploaded over RPC into the board's spare RAM (section .stream_frame, outside the
   RAM budget, standing in for a camera); elsewhere a const all-zero frame in flash
   (set_input is refused: the input size is 0). */
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
#endif

#ifdef TVMGEN_DEFAULT_NUM_INPUTS
#define NUM_INPUTS TVMGEN_DEFAULT_NUM_INPUTS
#define NUM_OUTPUTS TVMGEN_DEFAULT_NUM_OUTPUTS
static uint8_t *tensor_ptr(bool input, uint32_t i)
{
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
    if (input)
        return (uint8_t *)stream_frame;
#endif
    return (uint8_t *)(input ? tvmgen_default_input_ptr_at(i) : tvmgen_default_output_ptr_at(i));
}
static uint32_t tensor_size(bool input, uint32_t i)
{
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
    if (input)
        return STREAM_FRAME_BYTES;
#endif
    return input ? tvmgen_default_input_sizes[i] : tvmgen_default_output_sizes[i];
}
#else
#define NUM_INPUTS 1u
#define NUM_OUTPUTS 1u
static uint8_t *tensor_ptr(bool input, uint32_t i)
{
    (void)i;
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
    if (input)
        return (uint8_t *)stream_frame;
#endif
    return (uint8_t *)(input ? tvmgen_default_input_ptr() : tvmgen_default_output_ptr());
}
static uint32_t tensor_size(bool input, uint32_t i)
{
    (void)i;
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
    if (input)
        return STREAM_FRAME_BYTES;
#endif
    return input ? TVMGEN_DEFAULT_INPUT_SIZE : TVMGEN_DEFAULT_OUTPUT_SIZE;
}
#endif

/* Copy n bytes at offset of the concatenated inputs/outputs to or from buf; the caller
   has checked offset + n against model_input_size()/model_output_size(). */
static void tensors_copy(bool input, uint32_t offset, uint8_t *buf, uint32_t n, bool to_tensor)
{
    uint32_t count = input ? NUM_INPUTS : NUM_OUTPUTS;
    for (uint32_t i = 0; i < count && n > 0; i++) {
        uint32_t size = tensor_size(input, i);
        if (offset >= size) {
            offset -= size;
            continue;
        }
        uint32_t chunk = size - offset < n ? size - offset : n;
        if (to_tensor)
            memcpy(tensor_ptr(input, i) + offset, buf, chunk);
        else
            memcpy(buf, tensor_ptr(input, i) + offset, chunk);
        buf += chunk;
        n -= chunk;
        offset = 0;
    }
}

void model_input_write(uint32_t offset, const uint8_t *data, uint32_t n)
{
    tensors_copy(true, offset, (uint8_t *)data, n, true);
}
void model_output_read(uint32_t offset, uint8_t *out, uint32_t n) { tensors_copy(false, offset, out, n, false); }

static uint32_t tensors_crc(bool input)
{
    uint32_t crc = 0;
    for (uint32_t i = 0; i < (input ? NUM_INPUTS : NUM_OUTPUTS); i++)
        crc = crc32_update(crc, tensor_ptr(input, i), tensor_size(input, i));
    return crc;
}
uint32_t model_input_crc(void) { return tensors_crc(true); }
uint32_t model_output_crc(void) { return tensors_crc(false); }
uint32_t model_num_inputs(void) { return NUM_INPUTS; }
uint32_t model_num_outputs(void) { return NUM_OUTPUTS; }
uint32_t model_tensor_size(bool input, uint32_t index) { return tensor_size(input, index); }
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
uint32_t model_input_size(void) { return STREAM_FRAME_BYTES; }
#else
uint32_t model_input_size(void) { return TVMGEN_DEFAULT_INPUT_SIZE; }
#endif
uint32_t model_output_size(void) { return TVMGEN_DEFAULT_OUTPUT_SIZE; }
uint32_t model_arena_size(void) { return TVMGEN_DEFAULT_ARENA_SIZE; }

uint32_t runtime_static_ram_bytes(void)
{
    return (uint32_t)(((char *)&_edata - (char *)&_sdata) + ((char *)&_ebss - (char *)&_sbss));
}

void model_run(uint32_t repeat, run_result_t *r)
{
#ifdef TVMGEN_DEFAULT_NUM_INPUTS
    struct tvmgen_default_inputs in;
    struct tvmgen_default_outputs out;
    tvmgen_default_io_in_arena(&in, &out); /* tensors already in the arena: no copies */
#else
    struct tvmgen_default_inputs in = {.input = tvmgen_default_input_ptr()};
    struct tvmgen_default_outputs out = {.output = tvmgen_default_output_ptr()};
#endif
    uint32_t input_crc = model_input_crc();
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
        input_intact = model_input_crc() == input_crc;
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
