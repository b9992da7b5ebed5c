"""Flash and static RAM of a firmware ELF (pyelftools), split the way the
benchmarks report it: model arena vs. runtime .data/.bss vs. reserved stack."""
from __future__ import annotations

from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile


def elf_memory(elf) -> dict:
    """flash_bytes: load image (.isr_vector, .text, .rodata, .data init values, ...);
    static_ram_bytes: every writable allocated section (stack and arena included);
    runtime_ram_bytes: .data + .bss + arena canaries (RAM that is neither arena nor stack);
    bank_arena_bytes: the arenas in other memory banks (``.tvm_arena_<bank>`` sections, e.g.
    the H743's SRAM1-3 and DTCM), by section."""
    with open(Path(elf), "rb") as f:
        e = ELFFile(f)
        sections = {}
        flash = ram = 0
        for s in e.iter_sections():
            flags = s["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or s["sh_size"] == 0:
                continue
            sections[s.name] = s["sh_size"]
            if s["sh_type"] != "SHT_NOBITS":
                flash += s["sh_size"]
            if flags & SH_FLAGS.SHF_WRITE:
                ram += s["sh_size"]
        syms = {}
        symtab = e.get_section_by_name(".symtab")
        if symtab is not None:
            for name in ("__arena_start", "__arena_end", "_sstack", "_estack"):
                found = symtab.get_symbol_by_name(name)
                if found:
                    syms[name] = found[0]["st_value"]
    arena = syms.get("__arena_end", 0) - syms.get("__arena_start", 0)
    arena_section = sections.get(".tvm_arena", 0)
    data, bss = sections.get(".data", 0), sections.get(".bss", 0)
    return {
        "flash_bytes": flash,
        "text_bytes": sections.get(".text", 0) + sections.get(".isr_vector", 0),
        "rodata_bytes": sections.get(".rodata", 0),
        "data_bytes": data,
        "bss_bytes": bss,
        "arena_bytes": arena,
        "stack_reserved_bytes": sections.get(".stack", 0),
        "runtime_ram_bytes": data + bss + max(0, arena_section - arena),
        "static_ram_bytes": ram,
        "bank_arena_bytes": {n: size for n, size in sections.items() if n.startswith(".tvm_arena_")},
        "sections": sections,
    }
