"""Fuzzing the reader: generated exports with bytes and lines corrupted at random.

Each kind of damage has one exact expectation:

- bytes replaced, lines deleted, repeated, cut or garbled in a plain-text file (CSV, JSON Lines):
  the build succeeds, accounts for every line (`read == used + Σ quarantined`) and equals the
  independent reference, which reads the same damaged files itself (a damaged line is quarantined
  as malformed or its row judged by the rules) — unless the reference finds no valid event left in
  the window, and then the build fails saying so;
- a compressed or Parquet file cut short: the build fails with a BuildError naming that file.

Never a traceback, never a line lost. The seed and the number of cases are fixed, so every run
checks the same cases (PINSIGHTS_FUZZ_SEED and PINSIGHTS_FUZZ_CASES run others, and more).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

from tests.datasets import (
    SUFFIXES,
    Written,
    assert_engine_matches,
    run_engine,
    suffix_of,
    write_dataset,
)
from tests.reference import TABLE_ORDER, read_dataset, reference_build
from tests.test_input_contract import SMALL, bad_platform

#: The cases every run checks; PINSIGHTS_FUZZ_SEED / PINSIGHTS_FUZZ_CASES for others and more.
SEED = 1919
CASES = 16
#: A replacement byte never opens or closes a quote or a line, nor is a space or tab: CSV quoting
#: spans lines and DuckDB trims blanks around a quoted field, which Python's csv module does not;
#: both are documented behaviours, not damage a line-by-line reference can judge.
EXCLUDED = frozenset(b'"\n\r \t')
REPLACEMENTS = [b for b in range(256) if b not in EXCLUDED]


def _plain_text(data: bytes, rng: random.Random, csv_header: bool) -> bytes:
    """Damage a plain text file: replace bytes, or delete, repeat, cut or garble whole lines.

    A CSV header is left alone (a renamed column is a missing one: the table cannot be read, which
    test_input_contract tests on its own); every data line may be damaged.

    A quote is never left open (a cut goes back before an odd quote): a later quote may close it
    into a well-formed record that spans lines, which a line-by-line reference cannot judge. A
    quote left open is drawn by the property tests' malformed lines and tested on its own.
    """
    lines = data.split(b"\n")
    kind = rng.randrange(5)
    if kind == 0:  # replace a few bytes that are not quotes or line ends, nor in a CSV header
        damaged = bytearray(data)
        first_row = data.index(b"\n") + 1 if csv_header and b"\n" in data else 0
        positions = [i for i, b in enumerate(damaged) if b not in EXCLUDED and i >= first_row]
        for i in rng.sample(positions, k=min(len(positions), rng.randint(1, 4))):
            damaged[i] = rng.choice(REPLACEMENTS)
        return bytes(damaged)
    index = rng.randrange(1, max(len(lines) - 1, 2))
    if kind == 1:
        del lines[index]
    elif kind == 2:
        lines.insert(index, lines[index])
    elif kind == 3:
        cut = lines[index][: rng.randrange(len(lines[index]) + 1)]
        if cut.count(b'"') % 2:
            cut = cut[: cut.rindex(b'"')]
        lines[index] = cut
    else:
        lines[index] = bytes(rng.choice(REPLACEMENTS) for _ in range(rng.randint(1, 30)))
    return b"\n".join(lines)


def _binary(data: bytes, rng: random.Random) -> bytes:
    """Cut a compressed or Parquet file short: it cannot be read at all."""
    return data[: rng.randrange(1, len(data) - 1)]


def _damage(written: Written, rng: random.Random) -> tuple[list[str], list[Path]]:
    """Damage 1-3 files; the damage done, and the files cut short (unreadable)."""
    files = [path for paths in written.files.values() for path in paths]
    done, cut = [], []
    for path in rng.sample(files, k=min(len(files), rng.randint(1, 3))):
        suffix = suffix_of(path)
        if suffix in ("csv", "jsonl"):
            path.write_bytes(_plain_text(path.read_bytes(), rng, csv_header=suffix == "csv"))
            done.append(f"lines/bytes of {path.name}")
        elif rng.randrange(4) == 0:  # most damage goes to text; now and then a file is cut
            path.write_bytes(_binary(path.read_bytes(), rng))
            done.append(f"cut {path.name}")
            cut.append(path)
    return done, cut


def _one_case(seed: int, scratch: Path) -> str:
    """Run one case; what kind of outcome it was (for the run's tally)."""
    rng = random.Random(seed)
    formats = {table: rng.choice(SUFFIXES) for table in TABLE_ORDER}
    tables = bad_platform()
    data_dir = scratch / "data"
    written = write_dataset(tables, data_dir, formats)
    damage, cut = _damage(written, rng)
    context = f"seed={seed} formats={formats} damage={damage}"
    outcome = run_engine(
        data_dir, scratch / "store", accounts=["100", "200"], categories=["1", "2"], **SMALL
    )
    if cut:
        assert outcome.error is not None, f"{context}: a file cut short was read"
        message = str(outcome.error)
        assert any(str(path) in message for path in cut), f"{context}: {message}"
        assert outcome.date is None, f"{context}: a failed build published"
        return "cut: failed naming the file"
    reference = _reference(data_dir)
    if reference.failed:
        assert outcome.error is not None, f"{context}: no valid event left, yet it built"
        assert "no valid event" in str(outcome.error), f"{context}: {outcome.error}"
        return "text: no valid event left"
    assert outcome.error is None, f"{context}: plain-text damage must build: {outcome.error}"
    assert outcome.report is not None
    for table, entry in outcome.report["tables"].items():
        assert entry["read"] == entry["used"] + sum(entry["quarantined"].values()), (
            f"{context}: {table} {entry}"
        )
    try:
        assert_engine_matches(reference, outcome)
    except AssertionError as error:
        raise AssertionError(f"{context}\n{error}") from error
    return "text: built" if damage else "undamaged: built"


def _reference(data_dir: Path) -> Any:
    data = read_dataset(data_dir)
    return reference_build(data.tables, malformed=data.malformed, window_days=30, **SMALL)


def test_corrupted_exports_build_with_every_line_accounted_for_or_fail_naming_a_file() -> None:
    """A failure names its seed; PINSIGHTS_FUZZ_SEED=<seed> replays that case first."""
    base = int(os.environ.get("PINSIGHTS_FUZZ_SEED") or SEED)
    cases = int(os.environ.get("PINSIGHTS_FUZZ_CASES") or CASES)
    tally: dict[str, int] = {}
    for case in range(cases):
        with tempfile.TemporaryDirectory() as scratch:
            kind = _one_case(base + case, Path(scratch))
        tally[kind] = tally.get(kind, 0) + 1
    print(f"fuzz: {cases} corrupted exports from seed {base}: {tally}")
    if base == SEED and cases == CASES:  # the default cases damage text and cut files both
        assert tally.get("text: built", 0) >= 4 and tally.get("cut: failed naming the file"), tally
