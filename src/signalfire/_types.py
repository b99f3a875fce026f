"""Array aliases and millisecond-time helpers shared by every layer.

Time inside signalfire is always int64 milliseconds since the Unix epoch. Arrays
cross layer boundaries as numpy arrays with the dtypes named here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
Bool = npt.NDArray[np.bool_]

#: Bit pattern of Prometheus's staleness marker, a NaN distinct from ordinary NaN.
STALE_NAN_BITS = 0x7FF0000000000002
#: The staleness marker as a Python float (bits preserved when stored in float64 arrays).
STALE_NAN: float = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])

MIN_TIME = -(2**63)
MAX_TIME = 2**63 - 1


def is_stale(values: F64) -> Bool:
    """Mask of the samples that are staleness markers (compares bit patterns, not values)."""
    mask: Bool = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64) == np.uint64(STALE_NAN_BITS)
    return mask


def is_stale_value(v: float) -> bool:
    """True when the single float ``v`` is the staleness marker."""
    return bool(np.array([v], dtype=np.float64).view(np.uint64)[0] == STALE_NAN_BITS)


def stale_array(n: int) -> F64:
    """``n`` staleness markers."""
    return np.full(n, STALE_NAN_BITS, dtype=np.uint64).view(np.float64)
