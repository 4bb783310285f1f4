"""A tiny real guest for libvirt tests: a multiboot flat binary that rewrites memory forever.

It boots in milliseconds under TCG (no kernel, no initrd), so a test spends its time on
the migration, not on booting. vCPU 0 increments one word in every page of a
`working_set_mib` region, round after round, as fast as TCG runs it: a CPU-bound dirtier
whose dirty rate outruns a slow link, so pre-copy only converges when throttled.
Used only until/unless the harness appliance (dq-stress) is preferred.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

LOAD_ADDR = 0x100000  # QEMU's multiboot loader puts the image at 1 MiB
DIRTY_BASE = 0x400000  # dirty from 4 MiB up, clear of the image
MB_MAGIC = 0x1BADB002
MB_FLAGS = 1 << 16  # "address fields valid": a flat binary, no ELF needed


def image(working_set_mib: int, fill_mib: int = 0) -> bytes:
    """`fill_mib`: touch that much memory once first (non-zero pages make pre-copy's first
    pass take real time), then rewrite `working_set_mib` forever."""
    pages = working_set_mib * 256
    fill_pages = max(fill_mib * 256, 1)
    header_len = 32
    entry = LOAD_ADDR + header_len
    header = struct.pack(
        "<IIIIIIII",
        MB_MAGIC,
        MB_FLAGS,
        (-(MB_MAGIC + MB_FLAGS)) & 0xFFFFFFFF,
        LOAD_ADDR,  # header_addr (header sits at the start of the image)
        LOAD_ADDR,  # load_addr
        0,  # load_end_addr: whole file
        0,  # bss_end_addr: none
        entry,
    )
    # 32-bit protected mode, paging off (multiboot state):
    #          mov esi, DIRTY_BASE ; mov ecx, fill_pages
    #   fill:  inc dword [esi] ; add esi, 4096 ; loop fill
    #   outer: mov esi, DIRTY_BASE ; mov ecx, pages
    #   inner: inc dword [esi] ; add esi, 4096 ; loop inner ; jmp outer
    code = b"".join(
        [
            b"\xbe" + struct.pack("<I", DIRTY_BASE),  # mov esi, imm32      (5)
            b"\xb9" + struct.pack("<I", fill_pages),  # mov ecx, imm32      (5)
            b"\xff\x06",  # inc dword [esi]                                 (2)
            b"\x81\xc6" + struct.pack("<I", 4096),  # add esi, 4096         (6)
            b"\xe2\xf6",  # loop -10 (back to inc)                          (2)
            b"\xbe" + struct.pack("<I", DIRTY_BASE),  # mov esi, imm32      (5)
            b"\xb9" + struct.pack("<I", pages),  # mov ecx, imm32           (5)
            b"\xff\x06",  # inc dword [esi]                                 (2)
            b"\x81\xc6" + struct.pack("<I", 4096),  # add esi, 4096         (6)
            b"\xe2\xf6",  # loop -10 (back to inc)                          (2)
            b"\xeb\xea",  # jmp -22 (back to mov esi)                       (2)
        ]
    )
    return header + code


def write(path: Path, working_set_mib: int, fill_mib: int = 0) -> Path:
    path.write_bytes(image(working_set_mib, fill_mib))
    return path


# Where the loops sit in the image (offsets from the entry point, see `image`).
_ENTRY = LOAD_ADDR + 32
_OUTER, _INNER_INC, _INNER_ADD, _INNER_LOOP, _JMP = 20, 30, 32, 38, 40


def bad_pages(dump: bytes, eip: int, esi: int, working_set_mib: int, fill_mib: int = 0) -> int:
    """Pages of the working set that do not hold what the guest last wrote there.

    `dump`: the paused guest's physical memory from DIRTY_BASE, `working_set_mib` long;
    `eip`/`esi`: vCPU 0's registers at that pause. Every pass adds 1 to word 0 of each page
    in order, so the pages the current pass has already reached hold R+1, the rest R, and
    every other byte is 0. A page a migration lost (stale) or tore breaks that exactly."""
    pages = working_set_mib * 256
    fill_pages = max(fill_mib * 256, 1)
    assert len(dump) == pages * 4096, (len(dump), pages)
    off = eip - _ENTRY
    cursor = (esi - DIRTY_BASE) // 4096
    if off in (_INNER_INC, _INNER_LOOP):
        done = cursor  # esi names the next page to write (inc) or just moved past it (loop)
    elif off == _INNER_ADD:
        done = cursor + 1  # the page under esi was just incremented
    elif off in (_OUTER, _OUTER + 5, _JMP):
        done = 0  # between passes: every page holds the same count
    else:
        raise ValueError(f"vCPU 0 outside the dirty loop (eip {eip:#x}): not checkable")
    words = [
        int.from_bytes(dump[i * 4096 : i * 4096 + 4], "little") - (1 if i < fill_pages else 0)
        for i in range(pages)
    ]
    # R from the majority, so one stale page cannot make every other page look bad.
    rest = words[done:] if done < pages else [w - 1 for w in words]
    base = Counter(rest).most_common(1)[0][0]
    bad = 0
    zero = bytes(4092)
    for i, w in enumerate(words):
        want = base + 1 if i < done else base
        if w != want or dump[i * 4096 + 4 : (i + 1) * 4096] != zero:
            bad += 1
    return bad
