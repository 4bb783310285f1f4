"""Host-side integrity: compare the stopped source's RAM with the paused destination's.

Both guests keep RAM in shared files (memory-backend-file, share=on). After `completed`
the source is stopped (postmigrate) and the destination is held paused (-S), so every
page must be identical; a differing page is one the migration lost or corrupted. This
works even when the destination guest cannot run any more (QEMU 7.2 under TCG: the
kernel panics right after the switchover, so the in-guest check never answers).
"""

from __future__ import annotations

import mmap
from pathlib import Path

PAGE = 4096
CHUNK = 1 << 20


def differing_pages(a: Path, b: Path, limit: int = 64) -> tuple[int, int, list[int]]:
    """(pages compared, pages differing, first `limit` differing page frame numbers)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        size = min(a.stat().st_size, b.stat().st_size)
        ma = mmap.mmap(fa.fileno(), size, prot=mmap.PROT_READ)
        mb = mmap.mmap(fb.fileno(), size, prot=mmap.PROT_READ)
        try:
            bad, first = 0, list[int]()
            for off in range(0, size, CHUNK):
                end = min(off + CHUNK, size)
                if ma[off:end] == mb[off:end]:
                    continue
                for p in range(off, end, PAGE):
                    if ma[p : p + PAGE] != mb[p : p + PAGE]:
                        bad += 1
                        if len(first) < limit:
                            first.append(p // PAGE)
            return size // PAGE, bad, first
        finally:
            ma.close()
            mb.close()
