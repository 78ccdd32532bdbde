"""The state's segments in Ibis: written and decoded alike by both engines.

A segment (engine/refresh/state.py) holds every event row of the files one build read, as its
check judged them: ``(file, day, user_id, pin_id, account_key, interest_key, engaged, __bad)``.
:func:`encoded` makes those rows from the check query (``validate.finish``), so that the one
pass that checks the events writes them (``Backend.write_parquet``); :func:`decoded` gives a
segment's rows back with the check's ``__rule``, ``__source_file``, ``__line`` and ``__row``.
Both are Ibis expressions: DuckDB and Spark run the same ones, and read each other's segments.

One piece differs by engine, for speed only: the UTC day of an instant. Ibis' ``truncate("D")``
(``date_trunc``) is a calendar computation per row on DuckDB — ~3.0 CPU s for 20M instants on one
thread against ~0.9 for integer arithmetic on the microseconds (``epoch_us``: floored, so before
1970 too), with the same results; Spark's ``date_trunc`` on a UTC session is arithmetic already.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from pinsights.data.tables import EVENTS, LINE, SOURCE_FILE, Rule
from pinsights.data.validate import ROW, RULE
from pinsights.engine import arrow_columns as columns
from pinsights.engine.backend import Backend
from pinsights.engine.refresh.state import BAD

#: Between a bad row's rule, its line number (text files) and its original row in :data:`BAD`:
#: the rule and the line never hold it; the row, last, may hold anything.
SEPARATOR = "\x1f"
UTC = dt.Timestamp(timezone="UTC")
#: A segment's columns and their types (state.SEGMENT_COLUMNS names them as DuckDB does).
TYPES: dict[str, dt.DataType] = {
    "file": dt.int32,
    "day": UTC,
    "user_id": dt.int64,
    "pin_id": dt.int64,
    "account_key": dt.int32,
    "interest_key": dt.int32,
    "engaged": dt.boolean,
    BAD: dt.string,
}
_DAY_MICROS = 86_400_000_000


@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us(instant: dt.Timestamp(timezone="UTC")) -> dt.int64:  # type: ignore[valid-type]
    """DuckDB's microseconds since 1970 of an instant."""


@ibis.udf.scalar.builtin(name="divide")
def _divide(dividend: dt.int64, divisor: dt.int64) -> dt.int64:
    """DuckDB's integer division (exact: Ibis' ``//`` divides as doubles)."""


@ibis.udf.scalar.builtin(name="to_timestamp")
def _to_timestamp(seconds: dt.float64) -> dt.Timestamp(timezone="UTC"):  # type: ignore[valid-type]
    """DuckDB's instant of seconds since 1970."""


def utc_day(instant: ir.TimestampValue, engine: str) -> ir.TimestampValue:
    """The UTC day (its first instant) of ``instant``, on the ``engine`` that runs it."""
    if engine != "duckdb":
        return instant.truncate("D").cast(UTC)
    micros = _epoch_us(instant)
    floored = micros - ((micros % _DAY_MICROS) + _DAY_MICROS) % _DAY_MICROS
    return _to_timestamp(_divide(floored, 1_000_000).cast(dt.float64))


def encoded(checked: ir.Table, engine: str) -> ir.Table:
    """The segment's rows of the check query ``checked`` (``file``, the instant as ``day``,
    the kept columns, the rule and the bad rows' provenance): the instant's UTC day, and
    :data:`BAD` from the rule, the line (text files) and the row, null for used rows."""
    line = checked[LINE].cast(dt.string) if LINE in checked.columns else ibis.literal("")
    rule = checked[RULE]
    bad = ibis.ifelse(
        rule.notnull(),
        rule.concat(SEPARATOR, line.fill_null(""), SEPARATOR, checked[ROW]),
        ibis.null(dt.string),
    )
    computed = {"day": utc_day(checked.day, engine), BAD: bad}
    return checked.select(
        **{
            name: (computed[name] if name in computed else checked[name]).cast(kind)
            for name, kind in TYPES.items()
        }
    )


def decoded(rows: ir.Table, files: Mapping[int, str]) -> ir.Table:
    """A segment's ``rows`` with the check's columns besides :data:`BAD`: ``__rule``,
    ``__source_file`` (the path of the row's file, from ``files``: serial to path), ``__line``
    and ``__row``, decoded from it (null for used rows)."""
    bad = rows[BAD]
    first = bad.find(SEPARATOR)
    rest = bad.substr(first + 1)
    second = rest.find(SEPARATOR)
    line = rest.substr(0, second)
    source = (
        rows.file.substitute(dict(files), else_=ibis.null(dt.string))
        if files
        else ibis.null(dt.string)
    )
    return rows.select(
        *TYPES,
        **{
            RULE: bad.substr(0, first),
            SOURCE_FILE: ibis.ifelse(bad.notnull(), source, ibis.null(dt.string)),
            LINE: line.nullif("").cast(dt.int64),
            ROW: rest.substr(second + 1),
        },
    )


def serials(backend: Backend, path: Path, serial_of: Mapping[str, int]) -> ir.Table:
    """The files to read with their serials (``__refresh_path``, ``__refresh_file``), written to
    ``path`` and read by the engine: a small table either engine joins (a broadcast on Spark)."""
    # Columns from their buffers (arrow_columns): pa.array of a list would import pandas.
    pq.write_table(
        columns.table(
            {
                "__refresh_path": columns.string_column(list(serial_of)).cast(pa.string()),
                "__refresh_file": columns.int64_column(list(serial_of.values())).cast(pa.int32()),
            }
        ),
        path,
    )
    return backend.read_parquet("refresh_files", [path])


def kept_quarantine_rows(
    kept: ir.Table | None, serials: list[int], users: ir.Table, pins: ir.Table
) -> ir.Table:
    """Kept files' bad rows as the quarantine holds them: row-rule ones always, unknown
    references only while the user or pin is still unknown."""
    assert kept is not None
    rows = kept.filter(kept.file.isin(serials))
    known = rows.user_id.isin(users.user_id) & rows.pin_id.isin(pins.pin_id)
    rows = rows.filter((rows.rule != Rule.UNKNOWN_REFERENCE.value) | ~known.fill_null(False))
    return rows.select(
        table=ibis.literal(EVENTS.name),
        source_file=rows.source_file,
        line=rows.line,
        rule=rows.rule,
        row=rows.row,
    )
