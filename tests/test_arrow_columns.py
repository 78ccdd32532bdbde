"""The snapshot file's Arrow columns, made through their buffers, hold what pyarrow's own
converters would make of the same values (pinsights.engine.arrow_columns)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinsights.engine import arrow_columns as columns


@given(st.lists(st.text()))
def test_strings(values: list[str]) -> None:
    column = columns.string_column(values)
    column.validate(full=True)
    assert column.to_pylist() == pa.array(values, pa.string()).to_pylist()


@given(st.lists(st.none() | st.text()))
def test_optional_strings(values: list[str | None]) -> None:
    column = columns.optional_string_column(values)
    column.validate(full=True)
    assert column.to_pylist() == values
    assert column.null_count == values.count(None)


@given(st.lists(st.binary()))
def test_bytes(values: list[bytes]) -> None:
    column = columns.binary_column(values)
    column.validate(full=True)
    assert column.to_pylist() == values


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1)))
def test_int64(values: list[int]) -> None:
    column = columns.int64_column(values)
    column.validate(full=True)
    assert column.type == pa.int64() and column.to_pylist() == values


@given(st.lists(st.booleans()))
def test_booleans(values: list[bool]) -> None:
    column = columns.bool_column(values)
    column.validate(full=True)
    assert column.to_pylist() == values


@given(
    st.sampled_from(
        [
            pa.int8(),
            pa.int16(),
            pa.int32(),
            pa.int64(),
            pa.uint8(),
            pa.uint32(),
            pa.decimal128(38, 0),
        ]
    ),
    st.lists(st.lists(st.integers(0, 127), max_size=20), max_size=4),
    st.integers(0, 3),
)
def test_int64_values_read_every_chunk_and_slice(
    kind: pa.DataType, chunks: list[list[int]], cut: int
) -> None:
    """Integer columns back to numpy from their buffers: any integer width, several chunks, a
    chunk that is a slice of a longer one (an offset), a decimal column (cast)."""
    arrays = [pa.array(chunk, kind) for chunk in chunks]
    if arrays and len(arrays[0]) > cut:
        arrays[0] = arrays[0].slice(cut)
    column = pa.chunked_array(arrays, kind)
    values = columns.int64_values(column)
    assert values.dtype == np.int64 and values.tolist() == column.to_pylist()


def test_int64_values_refuse_nulls() -> None:
    with pytest.raises(ValueError, match="nulls"):
        columns.int64_values(pa.chunked_array([pa.array([1, None], pa.int64())]))


def test_a_build_does_not_import_pandas(tmp_path: Path) -> None:
    """What the module is for: a build's last step no longer waits on pyarrow importing pandas."""
    from pinsights.synthetic.generate import generate

    generate(tmp_path / "data", users=300, accounts=2, days=3, seed=1)
    script = f"""
import sys
from pathlib import Path
from pinsights.engine.settings import BuildSettings
from pinsights.store.publish import build
build(BuildSettings(data_dir=Path({str(tmp_path / "data")!r}),
                   store_dir=Path({str(tmp_path / "store")!r}), min_audience_size=5))
print("pandas" in sys.modules)
"""
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert finished.stdout.strip().splitlines()[-1] == "False"
    # Again on the same store: an incremental build, every dimension table's check the state's
    # (an empty quarantine made without pyarrow's pandas-importing helpers).
    again = script.replace('print("pandas"', 'print(report["refresh"]["mode"], "pandas"')
    again = again.replace("build(BuildSettings", "report = build(BuildSettings")
    finished = subprocess.run(
        [sys.executable, "-c", again], capture_output=True, text=True, check=True
    )
    assert finished.stdout.strip().splitlines()[-1] == "incremental False"
