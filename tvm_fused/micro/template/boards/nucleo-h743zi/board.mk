# STM32H743ZI: 2 MiB flash at 0x08000000; DTCM 128 KiB at 0x20000000 (stack,
# data, bss); AXI SRAM 512 KiB at 0x24000000 (arena); SRAM1-3 288 KiB at 0x30000000.
# RAM_BUDGET limits the arena region (AXI SRAM).
BOARD_RAM_SIZE := 524288
RAM_BUDGET ?= $(BOARD_RAM_SIZE)
LDSCRIPT := boards/nucleo-h743zi/memory.ld
BOARD_SRCS := src/stm32_nucleo.c
