# STM32F767ZI: 2 MiB flash at 0x08000000, 512 KiB SRAM at 0x20000000
# (DTCM 128 KiB + SRAM1 368 KiB + SRAM2 16 KiB, contiguous).
BOARD_RAM_SIZE := 524288
RAM_BUDGET ?= $(BOARD_RAM_SIZE)
LDSCRIPT := boards/nucleo-f767zi/memory.ld
BOARD_SRCS := src/stm32_nucleo.c
