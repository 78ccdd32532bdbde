"""Arrow columns made from plain Python values through their buffers.

pyarrow's converters from Python objects (``pa.array`` of a list, ``pa.table`` of a dict of
lists) first ask whether the values are pandas objects, and to ask, they import pandas when it is
installed (Ibis' DuckDB extra installs it). That import is a third of a second on one core, paid
at the very end of every build, when the snapshot file's tables are made from the documents, while
nothing else runs. The values there are plain ``str``, ``bytes``, ``int`` and ``bool``: laid out
in Arrow's buffers directly, the same columns cost no import.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from itertools import accumulate

import numpy as np
import numpy.typing as npt
import pyarrow as pa

#: Arrow's buffers are little-endian; ``array`` writes the machine's order.
_NATIVE_IS_ARROW = sys.byteorder == "little"


def string_column(values: Sequence[str]) -> pa.Array:
    return _variable_width(pa.large_string(), [value.encode() for value in values])


def optional_string_column(values: Sequence[str | None]) -> pa.Array:
    """Strings where ``None`` is a null (an account's optional details), without pandas either."""
    if not _NATIVE_IS_ARROW:
        return pa.array(values, pa.large_string())
    present = [value is not None for value in values]
    column = string_column([value or "" for value in values])
    if all(present):
        return column
    offsets, data = column.buffers()[1:]
    validity = bool_column(present).buffers()[1]
    return pa.Array.from_buffers(column.type, len(values), [validity, offsets, data])


def binary_column(values: Sequence[bytes]) -> pa.Array:
    return _variable_width(pa.large_binary(), values)


def int64_column(values: Sequence[int]) -> pa.Array:
    if not _NATIVE_IS_ARROW:
        return pa.array(values, pa.int64())
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(array("q", values))])


def bool_column(values: Sequence[bool]) -> pa.Array:
    bits = bytearray((len(values) + 7) // 8)
    for index, value in enumerate(values):
        if value:
            bits[index >> 3] |= 1 << (index & 7)
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bytes(bits))])


def table(columns: dict[str, pa.Array]) -> pa.Table:
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def _variable_width(kind: pa.DataType, values: Sequence[bytes]) -> pa.Array:
    if not _NATIVE_IS_ARROW:
        return pa.array(values, kind)
    offsets = array("q", [0])
    offsets.extend(accumulate(map(len, values)))
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(values))]
    return pa.Array.from_buffers(kind, len(values), buffers)


#: Arrow's integer types read as they are laid out (little-endian); any other type is cast first.
_INTEGER_LAYOUTS = {
    pa.int8(): "<i1",
    pa.int16(): "<i2",
    pa.int32(): "<i4",
    pa.int64(): "<i8",
    pa.uint8(): "<u1",
    pa.uint16(): "<u2",
    pa.uint32(): "<u4",
}


def int64_values(column: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """An integer column without nulls (a decimal one is cast) as int64 numpy values, read from
    its buffers: pyarrow's own ``to_numpy`` imports pandas, as its converters above would."""
    if column.null_count:
        raise ValueError("an integer column with nulls")
    if column.type not in _INTEGER_LAYOUTS:
        column = column.cast(pa.int64())
    layout = np.dtype(_INTEGER_LAYOUTS[column.type])
    parts = [
        np.frombuffer(
            chunk.buffers()[1],
            dtype=layout,
            count=len(chunk),
            offset=layout.itemsize * chunk.offset,
        )
        for chunk in column.chunks
    ]
    return np.concatenate(parts, dtype=np.int64) if parts else np.zeros(0, dtype=np.int64)
