"""The events' users checked per value (``validate.check_table``'s ``by_value``, DuckDB) judge every
row as the plain left join with every used user does, whether the ids are typed already (int64:
each row looked up, the unknown ones made distinct) or text (made distinct, then typed)."""

from __future__ import annotations

import random

import ibis
import pyarrow as pa
import pytest

from pinsights.data import validate
from pinsights.data.tables import EVENTS


def _rows(seed: int) -> tuple[list[int | None], list[int]]:
    """Event user ids (repeated, unknown, null) and the used users."""
    rng = random.Random(seed)
    used = rng.sample(range(1, 5_000), 1_000)
    unknown = [-7, 0, 5_001, 123_456_789_012]
    ids: list[int | None] = [rng.choice(used) for _ in range(4_000)]
    ids += [rng.choice(unknown) for _ in range(60)] + [None] * 5
    rng.shuffle(ids)
    return ids, used


def _table(con: ibis.BaseBackend, name: str, rows: pa.Table) -> ibis.Table:
    con.con.register(f"{name}_rows", rows)  # type: ignore[attr-defined]
    con.con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_rows")  # type: ignore[attr-defined]
    return con.table(name)


@pytest.mark.parametrize("as_text", [False, True])
@pytest.mark.parametrize("seed", [1, 2])
def test_users_by_value_judge_as_the_join(as_text: bool, seed: int) -> None:
    ids, used = _rows(seed)
    con = ibis.duckdb.connect()
    n = len(ids)
    values = [None if i is None else str(i) for i in ids] if as_text else ids
    kind = pa.string() if as_text else pa.int64()
    raw = _table(
        con,
        "raw_events",
        pa.table(
            {
                "event_time": pa.array(["2026-11-01T00:00:00Z"] * n, pa.string()),
                "user_id": pa.array(values, kind),
                "pin_id": pa.array([7] * n, pa.int64()),
                "event_type": pa.array(["SAVE"] * n, pa.string()),
                "__source_file": pa.array(["events.parquet"] * n, pa.string()),
                "__row_number": pa.array(range(n), pa.int64()),
            }
        ),
    )
    users = _table(con, "users", pa.table({"user_id": pa.array(used, pa.int64())}))
    pins = _table(con, "pins", pa.table({"pin_id": pa.array([7], pa.int64())}))
    keys = {"users": users.user_id, "pins": pins.pin_id}

    def rules(by_value: frozenset[str]) -> list[dict[str, object]]:
        checked = validate.check_table(raw, EVENTS, used_keys=keys, by_value=by_value)
        rows = checked.select(n=checked["__original:__row_number"], rule=checked[validate.RULE])
        return sorted(con.to_pyarrow(rows).to_pylist(), key=lambda row: str(row["n"]))

    by_value = rules(frozenset({"user_id"}))
    assert by_value == rules(frozenset())
    # and against an independent count: the rows whose present user id is not a used one
    known = set(used)
    expected = sum(1 for i in ids if i is not None and i not in known)
    assert sum(1 for row in by_value if row["rule"] == "unknown_reference") == expected
    assert sum(1 for row in by_value if row["rule"] == "bad_value") == 5
