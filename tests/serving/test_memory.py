"""Memory the serving process frees (a model set replaced at reload) goes back to the system."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from serving.runtime import release_free_memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_memory_is_handed_back_to_the_system():
    before = _rss_mb()
    chunks = [bytes(2000) for _ in range(100_000)]  # ~200 MB of heap blocks, as a model set's arrays and objects
    pinned = chunks[-1]  # the heap's last block stays in use, so glibc cannot give the rest back by itself
    del chunks
    held = _rss_mb()
    release_free_memory()
    assert held - before > 150
    assert _rss_mb() < before + 30, (before, held, _rss_mb())
    assert len(pinned) == 2000
