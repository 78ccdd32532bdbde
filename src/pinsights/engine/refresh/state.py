"""The refresh state's format: what a build keeps of the events for the next build to reuse.

A state is a directory the store publishes (``store/state.py``) and the engine reads and writes::

    state.json                the format version, the events' raw columns, one record per input
                              file, the segments with their digests, the next file serial
    segments/<name>-<k>.parquet  every event row of the files one build read, as that build's check
                              wrote it: (file, day, user_id, pin_id, account_key, interest_key,
                              engaged, __bad: a bad row's rule, line and original row in one
                              text, null for used rows; see BAD): one file on DuckDB, one
                              per task on Spark (k = 0, 1, …)

A segment is written by the one pass that checks the events (engine/refresh/segment.py: the
check query's rows in Ibis, through ``Backend.write_parquet``; one
file, not one per input file — a partitioned write cost three times the CPU and twice the
memory), and the build reads its used events back from it. For the next build a file's rows are
found in its segment by its serial (``file``): the events that passed the row rules
(rule null or ``unknown_reference``: judged again) and its bad rows, whole (``__bad`` not
null, holding the original). Serials are never reused (``next_serial``), so the rows of a file
that is gone or was read again, still in an older segment, are never taken for another's; a
segment whose live rows fall below half is rewritten with them only.

A file's record holds its fingerprint (path as the reader names it, size, modification time,
SHA-256 of its bytes), its rule counts (``read``, ``malformed``, ``bad_value``: rules of the row
alone, which never change while the file does not) and its segment; each segment's digest is
recorded, so a damaged state is found before it is used. Events are kept *before* the reference
check: whether a user or a pin exists is judged again by every build, against the dimension
tables of that build (docs/engine.md, "Incremental refresh", says why that is exact).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pinsights.data.tables import Rule

#: Bumped whenever the layout or the meaning of a state file changes: an older state is then
#: not used (the build is full, and says why) and the new build writes the new format.
#: 1 (never released): pairs grouped, with their number n; 2: one pairs and one quarantined file
#: per input file (a partitioned write: 3x the CPU of one file); 3: segments, no window part;
#: 4: the window part; 5: a bad row's provenance in one segment column (BAD); 6: fingerprints
#: with the file's status (a digest not taken again while it holds), the pins part; 7: a segment
#: is one or more files (Spark writes one per task: its check stays parallel); 8: SHA-256
#: digests instead of BLAKE2b (:func:`digest_file`); 9: the dimension tables' parts (TABLES_DIR);
#: 10: the users' part keeps a copy of the users' Parquet files (diffed by key: refresh/users.py),
#: and the window part no users' values (the users' part's used rows are the same users').
STATE_FORMAT = 10
META = "state.json"
SEGMENTS_DIR = "segments"
WINDOW_DIR = "window"
#: The pins' check (pins_part): the keyed used pins and the pins' quarantined rows.
PINS_DIR = "pins"
PINS_FILES = ("keyed", "quarantined")
#: The other dimension tables' checks (engine/refresh/dimensions.py): one part a table, each its
#: used rows and its quarantined rows (the interests also their hierarchy, ``levels``).
TABLES_DIR = "tables"
DIMENSION_TABLES = ("interests", "ad_accounts", "metros", "users")
TABLE_FILES = ("used", "quarantined")
LEVELS = "levels"
NO_WINDOW = "the state has no window part"
#: The window part's files (engine/refresh/window.py), in the order they are written. The users'
#: values counted are those of the users' part of the same state (``tables/users-used``).
WINDOW_FILES = ("facts", "interests", "sizes", "interest_counts", "demographic_counts")


class StateError(Exception):
    """The state cannot be used as it is (missing, damaged, another format): the build is full."""


#: A bad row's provenance in one column, null for used rows: ``rule \x1f line \x1f row`` (the
#: rule and the line number never hold the separator; the row, last, may hold anything); its
#: source file is its file's, found by the serial. Four columns (rule, source file, line, row),
#: null for 20M used rows, cost 1.25-1.3 CPU s of the 20M segment's 4.6-5.1 to write: DuckDB's
#: Parquet writer pays ~0.3 s per column of 20M nulls (BENCHMARKS.md, "Fifth round").
BAD = "__bad"


#: A segment's columns: the same whatever the files' format.
SEGMENT_COLUMNS = (
    ("file", "INTEGER"),
    ("day", "TIMESTAMP WITH TIME ZONE"),
    ("user_id", "BIGINT"),
    ("pin_id", "BIGINT"),
    ("account_key", "INTEGER"),
    ("interest_key", "INTEGER"),
    ("engaged", "BOOLEAN"),
    (BAD, "VARCHAR"),
)


#: How long before a file's digest was taken its last change (ctime) must lie for the digest to
#: be trusted again on an unchanged stat: a change within the file system's timestamp
#: granularity of the reading could keep the ctime it had (git's "racy" index entries).
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Fingerprint:
    """What identifies an input file's contents: a changed digest is a changed file.

    The digest is taken again only when the file's status changed: a file whose inode, size,
    modification and change times are those it had when its digest was taken, and whose last
    change (``ctime``, which no program can set back) lay :data:`RACY_NS` before that, has
    the same bytes (docs/engine.md, "What a build with a state does")."""

    path: str
    size: int
    mtime_ns: int
    digest: str
    device: int = 0
    inode: int = 0
    ctime_ns: int = 0
    #: When the digest was taken (before reading the file): 0, never trusted on its status.
    taken_ns: int = 0

    def still(self, status: os.stat_result) -> bool:
        """The file, with this ``status`` now, certainly holds the bytes the digest is of."""
        return (
            self.taken_ns > 0
            and self.ctime_ns + RACY_NS <= self.taken_ns
            and (self.device, self.inode, self.size, self.mtime_ns, self.ctime_ns)
            == (
                status.st_dev,
                status.st_ino,
                status.st_size,
                status.st_mtime_ns,
                status.st_ctime_ns,
            )
        )


def digest_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex: what tells an input file unchanged and a state file
    whole. A full build digests its input events and everything it writes to the state (about
    0.7 GB at 20M events); SHA-256, which this machine's CPUs compute in hardware (SHA-NI, as most
    x86-64 and ARMv8 CPUs of the last years do), took 0.17-0.18 CPU s for the 243 MB segment of
    20M events against 0.32-0.41 for BLAKE2b (BENCHMARKS.md, issue 22's seventh round)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, hashlib.sha256).hexdigest()


def fingerprint(path: Path, known: Fingerprint | None = None) -> Fingerprint:
    """``path``'s fingerprint; ``known``'s digest where the file's status says it still holds
    (:meth:`Fingerprint.still`), else a new digest of its bytes."""
    taken = time.time_ns()
    status = path.stat()
    if known is not None and known.path == str(path) and known.still(status):
        return known
    return Fingerprint(
        str(path),
        status.st_size,
        status.st_mtime_ns,
        digest_file(path),
        device=status.st_dev,
        inode=status.st_ino,
        ctime_ns=status.st_ctime_ns,
        taken_ns=taken,
    )


@dataclass(frozen=True)
class FileRecord:
    """One input event file in the state: its fingerprint, its row-rule counts, its state files."""

    fingerprint: Fingerprint
    #: Stable small id of the file in the state's tables (``file`` column).
    serial: int
    read: int
    malformed: int
    bad_value: int
    pairs: int  # its rows that passed the row rules (judged again by each build)
    quarantined: int  # its rows that broke a rule when it was read
    segment: str  # the segment holding its rows
    #: Its rows that were ``unknown_reference`` in the last build (users and pins unchanged
    #: since, they still are: the window's delta path takes the figure from here).
    unknown: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "fingerprint": asdict(self.fingerprint)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRecord:
        counts = ("serial", "read", "malformed", "bad_value", "pairs", "quarantined", "unknown")
        numbers = {name: _count(data[name]) for name in counts}
        printed = Fingerprint(**data["fingerprint"])
        for number in (printed.size, printed.mtime_ns, printed.inode, printed.ctime_ns):
            _count(number)
        _count(printed.device), _count(printed.taken_ns)
        return cls(**{**data, **numbers, "fingerprint": printed, "segment": _name(data["segment"])})


def segment_stem(root: Path, name: str) -> Path:
    """Where segment ``name``'s files are written: ``<stem>-<k>.parquet``."""
    return root / SEGMENTS_DIR / name


def segment_paths(root: Path, name: str, segment: Segment) -> list[Path]:
    """The files of segment ``name`` in the state at ``root``, in order."""
    return [root / SEGMENTS_DIR / f"{name}-{k}.parquet" for k in range(len(segment.digests))]


def _dimension(value: object) -> str:
    """A dimension table's name as the state records it (a damaged state.json)."""
    if value not in DIMENSION_TABLES:
        raise ValueError(f"{value!r} is not a dimension table")
    return str(value)


def _name(value: object) -> str:
    """A segment's name as the state records it: a plain file name (a damaged state.json)."""
    if not isinstance(value, str) or not value.isalnum():
        raise ValueError(f"{value!r} is not a segment name")
    return value


def window_path(root: Path, name: str) -> Path:
    return root / WINDOW_DIR / f"{name}.parquet"


@dataclass(frozen=True)
class Window:
    """What ``state.json`` records of the window part (engine/refresh/window.py): the window
    its counts are of, and what they were made under (compared by the next build)."""

    window_days: int
    date: str  # the build's date: the latest valid day of every file the state holds
    start: str
    #: Dense keys and the hierarchy as that build numbered them, and the pins files'
    #: fingerprints (path, SHA-256): the same, the same keyed pins.
    dimensions: dict[str, Any]
    digests: dict[str, str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        window = cls(**data)
        if set(window.digests) != set(WINDOW_FILES) or _count(window.window_days) < 1:
            raise ValueError("the window part's files are not the state's")
        return window


def pins_path(root: Path, name: str) -> Path:
    return root / PINS_DIR / f"{name}.parquet"


def table_path(root: Path, table: str, name: str) -> Path:
    """A dimension table's part file: ``tables/<table>-<name>.parquet``."""
    return root / TABLES_DIR / f"{table}-{name}.parquet"


def table_files(table: str, inputs: list[list[str]] | None = None) -> tuple[str, ...]:
    """The files of ``table``'s part (the users': with copies of its ``inputs``, if Parquet)."""
    if table == "users":
        return (*TABLE_FILES, *raw_names(inputs or []))
    return (*TABLE_FILES, LEVELS) if table == "interests" else TABLE_FILES


def raw_names(inputs: list[list[str]]) -> list[str]:
    """The users' part's copies of its files (``inputs``: path, SHA-256), when all are Parquet
    (engine/refresh/users.py): ``raw-<k>`` in the inputs' order."""
    parquet = all(path.lower().endswith(".parquet") for path, *_ in inputs)
    return [f"raw-{k}" for k in range(len(inputs))] if parquet else []


@dataclass(frozen=True)
class CheckPart:
    """A dimension table's check as the last build made it, reused while what it depends on is
    the same bytes (``inputs``), with the table's report ``figures`` and the ``digests`` of its
    part's files.

    The pins' part: ``inputs`` are the pins, ad accounts and interests files (table, path,
    SHA-256). Their checks are each a function of their own files' bytes (pins' references are to
    the used ad accounts and interests; the dense keys are numbered from those), so the keyed used
    pins (``keyed``: pin_id, account_key, interest_key) and the pins' quarantined rows
    (``quarantined``) are those a check of the same files makes. The other tables' parts
    (engine/refresh/dimensions.py): ``inputs`` are the table's own files (path, SHA-256)."""

    inputs: list[list[str]]
    figures: dict[str, Any]
    digests: dict[str, str]

    @classmethod
    def from_json(
        cls, data: dict[str, Any], files: tuple[str, ...] = PINS_FILES, width: int = 3
    ) -> CheckPart:
        part = cls(**data)
        if set(part.digests) != set(files) or not all(
            isinstance(entry, list) and len(entry) == width for entry in part.inputs
        ):
            raise ValueError("a check part's files are not the state's")
        return part


@dataclass(frozen=True)
class Segment:
    """One segment: its rows and the digest of each of its files' bytes (one file, or one per
    task of the engine that wrote it)."""

    rows: int
    digests: list[str]


def _count(value: object) -> int:
    """A count as the state records it: an int, never a bool or text (a damaged state.json)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


@dataclass
class State:
    """A state as read (or about to be written): the events' raw columns and the files."""

    root: Path
    #: The raw events table's columns (name, type) the files were read as: a file read alone
    #: judges its rows exactly as a full read only when the full read has the same columns.
    columns: list[tuple[str, str]]
    files: dict[str, FileRecord] = field(default_factory=dict)  # by path
    segments: dict[str, Segment] = field(default_factory=dict)  # by name
    #: The serial the next file read gets: never one an older segment may still hold.
    next_serial: int = 1
    #: The window part, or None (none written, or unusable: ``window_problem`` says why).
    window: Window | None = None
    window_problem: str = ""
    #: The pins' check of the last build (None: none kept).
    pins: CheckPart | None = None
    #: The other dimension tables' checks of the last build, by table (inputs: path, SHA-256).
    tables: dict[str, CheckPart] = field(default_factory=dict)

    def size_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())


def load_state(root: Path, *, verify: bool = True) -> State:
    """The state at ``root``, every file present and (``verify``) its digest as recorded."""
    try:
        data = json.loads((root / META).read_text())
    except FileNotFoundError as error:
        raise StateError(f"no {META} in the state directory") from error
    except (OSError, ValueError) as error:
        raise StateError(f"unreadable {META}: {error}") from error
    try:
        if data.get("format") != STATE_FORMAT:
            raise StateError(
                f"the state has format {data.get('format')}, this build writes format"
                f" {STATE_FORMAT}"
            )
        columns = [(str(name), str(kind)) for name, kind in data["columns"]]
        records = [FileRecord.from_json(entry) for entry in data["files"]]
        segments = {
            _name(name): Segment(
                rows=_count(entry["rows"]), digests=[str(d) for d in entry["digests"]]
            )
            for name, entry in data["segments"].items()
        }
        next_serial = _count(data["next_serial"])
        if any(not segment.digests for segment in segments.values()):
            raise ValueError("a segment of no file")
        if any(r.segment not in segments or r.serial >= next_serial for r in records):
            raise ValueError("a file's segment or serial is not the state's")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise StateError(f"{META} is damaged ({type(error).__name__}: {error})") from error
    state = State(
        root,
        columns,
        {record.fingerprint.path: record for record in records},
        segments,
        next_serial,
    )
    for name, segment in segments.items():
        for path, digest in zip(segment_paths(root, name, segment), segment.digests, strict=True):
            _verified(root, path, digest, verify=verify)
    if data.get("pins") is not None:
        try:
            state.pins = CheckPart.from_json(data["pins"])
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"{META} is damaged ({type(error).__name__}: {error})") from error
        for name, digest in state.pins.digests.items():
            _verified(root, pins_path(root, name), digest, verify=verify)
    try:
        state.tables = {
            _dimension(table): CheckPart.from_json(
                part, table_files(table, part.get("inputs")), width=2
            )
            for table, part in (data.get("tables") or {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise StateError(f"{META} is damaged ({type(error).__name__}: {error})") from error
    for table, part in state.tables.items():
        for name, digest in part.digests.items():
            _verified(root, table_path(root, table, name), digest, verify=verify)
    _load_window(state, data.get("window"), verify=verify)
    return state


def _verified(root: Path, path: Path, digest: str, *, verify: bool) -> None:
    if not path.is_file():
        raise StateError(f"state file {path.relative_to(root)} is missing")
    if verify and digest_file(path) != digest:
        raise StateError(f"state file {path.relative_to(root)} is damaged (digest)")


def _load_window(state: State, data: Any, *, verify: bool) -> None:
    """The window part, if there is one and it is whole: a damaged window part leaves the events'
    part usable (the build recounts from the kept events and writes a new window part)."""
    if data is None:
        state.window_problem = NO_WINDOW
        return
    try:
        window = Window.from_json(data)
    except (KeyError, TypeError, ValueError) as error:
        state.window_problem = f"the window part is damaged ({type(error).__name__}: {error})"
        return
    if "users" not in state.tables:
        state.window_problem = "the state has no users' part"
        return
    for name in WINDOW_FILES:
        path = window_path(state.root, name)
        if not path.is_file():
            state.window_problem = f"window file {name} is missing"
            return
        if verify and digest_file(path) != window.digests[name]:
            state.window_problem = f"window file {name} is damaged (digest)"
            return
    state.window = window


def write_meta(state: State) -> None:
    """Write ``state.json`` (the state's other files are written by the build before it)."""
    data = {
        "format": STATE_FORMAT,
        "columns": [list(column) for column in state.columns],
        "next_serial": state.next_serial,
        "segments": {name: asdict(segment) for name, segment in sorted(state.segments.items())},
        "window": None if state.window is None else asdict(state.window),
        "pins": None if state.pins is None else asdict(state.pins),
        "tables": {table: asdict(part) for table, part in sorted(state.tables.items())},
        "files": [
            record.to_json()
            for record in sorted(state.files.values(), key=lambda record: record.serial)
        ],
    }
    (state.root / META).write_text(json.dumps(data, indent=1) + "\n")


def link_or_copy(source: Path, target: Path) -> None:
    """A kept file's state file into the new state: a hard link (no bytes copied) where it can."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        target.write_bytes(source.read_bytes())


def file_record(
    printed: Fingerprint, serial: int, segment: str, figures: dict[str, int]
) -> FileRecord:
    """A file's record from its per-rule ``figures`` as its check counted them."""
    bad = sum(count for rule, count in figures.items() if rule != "read")
    return FileRecord(
        unknown=figures.get(Rule.UNKNOWN_REFERENCE.value, 0),
        fingerprint=printed,
        serial=serial,
        read=figures["read"],
        malformed=figures.get(Rule.MALFORMED.value, 0),
        bad_value=figures.get(Rule.BAD_VALUE.value, 0),
        pairs=figures["read"] - bad + figures.get(Rule.UNKNOWN_REFERENCE.value, 0),
        quarantined=bad,
        segment=segment,
    )


def events_figures(per_file: dict[int, dict[str, int]]) -> dict[str, Any]:
    """The events' report figures from the files' (by serial) per-rule figures."""
    read = sum(figures["read"] for figures in per_file.values())
    quarantined = {
        rule.value: total
        for rule in Rule
        if (total := sum(figures.get(rule.value, 0) for figures in per_file.values()))
    }
    return {"read": read, "used": read - sum(quarantined.values()), "quarantined": quarantined}
