"""Keep freed large blocks in the process heap instead of handing them back to the kernel.

Query evaluation makes many short-lived numpy arrays of tens or hundreds of MB. By
default glibc serves each one with a fresh ``mmap`` and ``munmap``s it when freed, so
the next array of that size pays a page fault for every 4 KiB page it touches: on the
machines measured (``bench/``), allocating and filling a 128 MB temporary cost 60-100 ms
that way against 8-15 ms when the freed memory is reused. :func:`keep_freed_memory`
raises glibc's mmap threshold and trim threshold (``mallopt``) so such blocks come from
the heap and stay there for reuse.

The price is resident memory: up to ``trim_bytes`` of freed heap stays mapped after a
large query, as a Go program keeps its heap for the next garbage-collection cycle.
These are settings of the whole process, so only the code that owns the process calls
this: ``signalfire.open(..., keep_freed_memory=True)``, the benchmarks, a server; a
plain ``signalfire.open()`` leaves the host's allocator alone.
``SIGNALFIRE_MALLOC_TUNE=0`` in the environment turns it off; on a C library other
than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: mallopt takes a C int.
_MAX_INT = 2**31 - 1

#: None until :func:`keep_freed_memory` is first called; then whether glibc took both.
_done: bool | None = None


def keep_freed_memory(mmap_bytes: int = 1 << 30, trim_bytes: int = 1 << 30) -> bool:
    """Raise the mmap and trim thresholds once per process; True when glibc accepted both."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("SIGNALFIRE_MALLOC_TUNE", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, min(mmap_bytes, _MAX_INT)) == 1
    ok_trim = mallopt(_M_TRIM_THRESHOLD, min(trim_bytes, _MAX_INT)) == 1
    _done = ok_mmap and ok_trim
    return _done


def tuning_state() -> bool | None:
    """None when nothing in this process asked for the tuning (the allocator is as the
    host left it), else whether :func:`keep_freed_memory` applied it."""
    return _done


def release_free_memory() -> None:
    """Hand freed heap memory back to the kernel now (glibc ``malloc_trim``), so the
    resident size shows what is in use: for memory figures, and after a large query when
    the memory is wanted elsewhere. Does nothing on other C libraries."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(ctypes.c_size_t(0))
    except (OSError, AttributeError):
        return
