"""The refresh state's pins part: the pins' check reused while its inputs are the same bytes.

Checking the pins is most of the dimension tables' cost (2M pins at 20M events, 10M at 100M:
read, every rule, the references to ad accounts and interests, the dense keys), and a daily
build's pins rarely change. The pins' check is a function of the pins files' bytes, the used ad
accounts and the used interests (its references), and the dense keys numbered from those two;
the checks of ``ad_accounts`` and ``interests`` are each a function of their own files' bytes
(each table is read from its own files alone, so typed alike). So while the pins, ad accounts
and interests files are the same bytes (path and SHA-256, :class:`CheckPart`'s ``inputs``), the
keyed used pins, the pins' report figures and their quarantined rows are the last check's: the
state keeps them (``pins/keyed.parquet``, ``pins/quarantined.parquet``) and the build reads them
instead of checking the pins. Any other change (a late or re-pointed pin, a pin gone, an account
or interest edited) checks the pins in full, as without a state.
"""

from __future__ import annotations

from pathlib import Path

import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data.sources import TableSource
from pinsights.data.tables import PINS
from pinsights.engine.backend import Backend
from pinsights.engine.refresh.dimensions import read_rows, save_rows
from pinsights.engine.refresh.state import (
    PINS_FILES,
    CheckPart,
    State,
    digest_file,
    link_or_copy,
    pins_path,
)

#: The tables the pins' check depends on (its own and its references').
INPUTS = ("interests", "ad_accounts", "pins")


def inputs(sources: dict[str, TableSource]) -> list[list[str]]:
    """(table, path, SHA-256) of every file of the tables the pins' check depends on."""
    return sorted(
        [name, str(f.path), digest_file(Path(str(f.path)))]
        for name in INPUTS
        if name in sources
        for f in sources[name].files
    )


def reusable(previous: State | None, printed: list[list[str]]) -> CheckPart | None:
    """The state's pins part, if it was made from these very inputs."""
    if previous is None or previous.pins is None or previous.pins.inputs != printed:
        return None
    return previous.pins


def open_keyed(backend: Backend, root: Path) -> ir.Table:
    """The kept keyed pins (pin_id, account_key, interest_key), to be materialised by the check."""
    return backend.read_parquet("refresh_keyed_pins", [pins_path(root, "keyed")])


def link(previous: Path, staging: Path) -> None:
    """The kept pins part into the new state (hard links)."""
    for name in PINS_FILES:
        link_or_copy(pins_path(previous, name), pins_path(staging, name))


def save(backend: Backend, staging: Path, keyed: ir.Table) -> dict[str, str]:
    """The keyed used pins of this build's check, written by the engine; digests."""
    path = pins_path(staging, "keyed")
    path.parent.mkdir(parents=True, exist_ok=True)
    backend.write_parquet(keyed, path)
    return {"keyed": digest_file(path)}


def save_quarantined(staging: Path, rows: pa.Table) -> str:
    """The pins' quarantined rows, taken from the quarantine's ``rows`` of the dimension tables
    (one Spark job less than a query); their digest."""
    return save_rows(pins_path(staging, "quarantined"), rows, PINS.name)


def quarantined(root: Path, schema: pa.Schema) -> pa.Table:
    """The kept pins' quarantined rows, in the quarantine's shape (verified with the state)."""
    return read_rows(pins_path(root, "quarantined"), schema)
