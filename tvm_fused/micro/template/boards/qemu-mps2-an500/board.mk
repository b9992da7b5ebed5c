# QEMU mps2-an500: 4 MiB code RAM at 0x0, 4 MiB SRAM (ssram23) at 0x20000000.
BOARD_RAM_SIZE := 4194304
RAM_BUDGET ?= $(BOARD_RAM_SIZE)
LDSCRIPT := boards/qemu-mps2-an500/memory.ld
# The test frame of a streamed-input model lives outside the budget (memory.ld: FRAME).
BOARD_CFLAGS := -DBOARD_STREAM_FRAME_SECTION=1
