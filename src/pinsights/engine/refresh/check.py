"""The check step with a refresh state: read only the event files that are new or changed.

:class:`Refresh` stands in for the check step's three parts (read, validate, quarantine; see
:mod:`pinsights.engine.steps.check`) and gives the build the same checked input, figures and
quarantined rows a full check gives:

- a dimension table is checked only when its check's input files changed: else the state's
  check of it stands (engine/refresh/dimensions.py; the pins: engine/refresh/pins.py);
- an event file whose fingerprint (path and SHA-256 of its bytes) is in the state is not read:
  its row-rule counts and bad rows come from the state, and its events that passed the row rules
  (reduced to (day, user, pin, engaged), one row per event) are judged again against this
  build's users and pins — so a late user or pin makes them valid, as a full read would;
- a new or changed file is read and checked as in a full build, in one pass that writes every
  row to the state's new segment (``COPY``; no checked-events table is held in memory): the
  build reads its used events, rule counts and bad rows back from it, and the next build its
  part of the state; a file that is gone leaves the state;
- a kept file in which a row that was valid now names a user or pin that no longer exists is
  read again (its quarantined row must be written whole, and only the file has it).

What the state cannot answer exactly makes the build full, with the reason in the report: no
state, ``--full``, a state of another format or damaged, event files whose columns or types
differ from the state's (a file read alone would be typed otherwise than in a full read; see
:mod:`pinsights.engine.duckdb.raw_columns`), or Spark on a dataset it reads by URL (see
``build.start_refresh``). A full build with a place to keep state writes it; docs/engine.md,
"Incremental refresh", gives the exactness argument.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data import validate
from pinsights.data.sources import InputError, InputFile, TableSource
from pinsights.data.tables import EVENTS, LINE, SOURCE_FILE, Rule
from pinsights.data.validate import ROW, RULE
from pinsights.engine import semantics
from pinsights.engine.backend import Backend
from pinsights.engine.duckdb.raw_columns import raw_columns_anywhere, read_alike
from pinsights.engine.refresh import pins as pins_part
from pinsights.engine.refresh import segment, window
from pinsights.engine.refresh.delta import Opened, decide
from pinsights.engine.refresh.dimensions import Parts
from pinsights.engine.refresh.state import (
    BAD,
    CheckPart,
    FileRecord,
    Fingerprint,
    Segment,
    State,
    StateError,
    Window,
    digest_file,
    events_figures,
    file_record,
    fingerprint,
    link_or_copy,
    load_state,
    segment_paths,
    segment_stem,
    write_meta,
)
from pinsights.engine.refresh.window import judged_pairs, used_events
from pinsights.engine.steps import BuildError, check
from pinsights.engine.steps.check import Checked

ROW_RULES = (Rule.MALFORMED.value, Rule.BAD_VALUE.value)
UNKNOWN = Rule.UNKNOWN_REFERENCE.value


@dataclass
class Refresh:
    """One build's check, incremental where the state allows; :meth:`summary` says which."""

    #: The published state, or None; where to write the new one, or None (no state is kept).
    previous_root: Path | None
    staging: Path | None
    forced_full: bool = False
    #: The build may count by deltas and keep a window part: exact mode, the default date
    #: (the latest valid day), and this window length (engine/refresh/window.py).
    window_days: int | None = None
    #: Counts carried by deltas from the state's window part, or (why not) recounted.
    delta: bool = False
    counts_reason: str = ""
    dimensions: dict[str, Any] | None = None
    pins: list[list[str]] = field(default_factory=list)
    #: The files the pins' check depends on (table, path, SHA-256); the state's check of them
    #: when it was made from the same (engine/refresh/pins.py), else None; this build's files.
    pin_inputs: list[list[str]] = field(default_factory=list)
    _pins_kept: CheckPart | None = None
    #: The other dimension tables' parts (engine/refresh/dimensions.py).
    parts: Parts = field(default_factory=Parts)
    _pins_digests: dict[str, str] = field(default_factory=dict)
    mode: str = "full"
    reason: str = ""
    previous: State | None = None
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    columns: list[tuple[str, str]] = field(default_factory=list)
    kept: dict[str, FileRecord] = field(default_factory=dict)
    to_read: list[InputFile] = field(default_factory=list)
    events_read: int = 0
    state_rows_read: int = 0
    dropped: int = 0
    new_state: State | None = None
    _figures: dict[str, Any] = field(default_factory=dict)
    _rows: list[ir.Table] = field(default_factory=list)
    _segment: tuple[str, Segment] | None = None
    _all_files: list[InputFile] = field(default_factory=list)
    _typed_by: tuple[InputFile, ...] = ()  # every file, when the files to read are typed by all
    _came: int = 0
    #: The state's window part opened for the deltas (delta.decide), or None.
    opened: Opened | None = None
    _kept_rows: Any = None  # the kept files' decoded segment rows (_open_kept)
    _kept_raw: Any = None  # ... and the segments as read (a named view, released with them)

    @property
    def keeps_state(self) -> bool:
        return self.staging is not None

    # --- read ------------------------------------------------------------------------------------

    def read(self, backend: Backend, data_dir: Any) -> dict[str, ir.Table]:
        """Every table's raw view but the events', which :meth:`validate` opens for the files it
        reads; without a state to keep, every table's (the plain check)."""
        try:
            sources = backend.discover(data_dir)
            events = sources.pop("events")
            if not self.keeps_state:
                sources["events"] = events
                return {name: backend.raw_table(source) for name, source in sources.items()}
            self.pin_inputs = pins_part.inputs(sources)
            self.pins = [[path, digest] for name, path, digest in self.pin_inputs if name == "pins"]
            self._plan(backend, events)
            self._pins_kept = pins_part.reusable(self.previous, self.pin_inputs)
            self.parts.plan(self.previous, sources)
            # The tables whose check is the state's are not read.
            skipped = {*self.parts.kept, *(["pins"] if self._pins_kept is not None else [])}
            raw = {n: backend.raw_table(s) for n, s in sources.items() if n not in skipped}
        except InputError as error:
            raise BuildError(str(error)) from error
        return raw

    def _plan(self, backend: Backend, events: TableSource) -> None:
        self.to_read = list(events.files)
        self._all_files = list(events.files)
        previous: State | None = None
        if self.forced_full:
            self.reason = "--full"  # every input file's digest taken again
        elif self.previous_root is None:
            self.reason = "no refresh state in the store yet"
        else:
            try:
                previous = load_state(self.previous_root)
            except StateError as error:
                self.reason = f"the refresh state is unusable: {error}"
        known = previous.files if previous is not None else {}
        self.fingerprints = {
            path: fingerprint(Path(path), known[path].fingerprint if path in known else None)
            for path in (str(f.path) for f in events.files)
        }
        self.columns = raw_columns_anywhere(getattr(backend, "con", None), events)
        if previous is None:
            return
        if previous.columns != self.columns:
            self.reason = "the event files' columns or types differ from the state's"
            return
        kept = {
            path: replace(record, fingerprint=self.fingerprints[path])
            for path, record in previous.files.items()
            if path in self.fingerprints
            and self.fingerprints[path].digest == record.fingerprint.digest
        }
        to_read = [f for f in events.files if str(f.path) not in kept]
        if to_read and not self._read_alike(backend, to_read):
            self.reason = "the new event files' columns or types differ from the other files'"
            return
        self.previous, self.kept, self.to_read = previous, kept, to_read
        self.dropped = len(set(previous.files) - set(self.fingerprints))
        self.mode = "incremental"
        self.reason = (
            f"{len(to_read)} of {len(events.files)} event file(s) new or changed,"
            f" {self.dropped} gone"
        )

    def validate(self, backend: Backend, raw: dict[str, ir.Table]) -> Checked:
        """The checked input, as :func:`pinsights.engine.steps.check.check_tables` makes it."""
        if not self.keeps_state:
            return check.check_tables(backend, raw)
        kept_pins = self._pins_kept
        keyed = None
        if kept_pins is not None:
            assert self.previous is not None
            keyed = pins_part.open_keyed(backend, self.previous.root)
        # Every table but the events (and those whose check the state holds).
        root = self.previous.root if self.previous is not None else None
        reused, levels = self.parts.opened(backend, root, raw)
        checked = check.check_tables(backend, raw, keyed_pins=keyed, reused=reused, levels=levels)
        if self.staging is not None:
            self.parts.keep(backend, root, self.staging, checked)
        if self.staging is not None and kept_pins is not None:
            assert self.previous is not None
            pins_part.link(self.previous.root, self.staging)
        elif self.staging is not None:
            self._pins_digests = pins_part.save(backend, self.staging, checked.keys.pins)
        users = checked.used["users"].select("user_id")
        pins = checked.keys.pins
        scope = checked.scope
        figures: dict[int, dict[str, int]] = {}
        used_parts: list[ir.Table] = []
        judged: ir.Table | None = None
        if self.window_days is not None:
            self.dimensions = window.dimensions(backend, checked.keys, self.pins)
            self._decide_delta(backend, checked)
        if self.kept and self.delta:
            # Users and pins as in the last build: each kept file's rule counts are its
            # record's, its quarantined rows its bad rows still unknown; no kept event is read.
            _, kept_quarantined = self._open_kept(backend)
            for record in self.kept.values():
                figures[record.serial] = {
                    "read": record.read,
                    Rule.MALFORMED.value: record.malformed,
                    Rule.BAD_VALUE.value: record.bad_value,
                    UNKNOWN: record.unknown,
                }
            if self._came:  # late users and pins: their kept unknown events may be valid now
                used_parts.append(self._resolve_late_users(backend, scope, users, pins, figures))
            serials = [record.serial for record in self.kept.values()]
            self._rows.append(segment.kept_quarantine_rows(kept_quarantined, serials, users, pins))
        elif self.kept:
            kept_pairs, kept_quarantined = self._open_kept(backend)
            # One pass over the kept pairs: each judged against today's users and pins.
            judged = scope.materialize("refresh_kept_events", judged_pairs(kept_pairs, users, pins))
            unresolved, still = self._unresolved(backend, judged, kept_quarantined, users, pins)
            flipped = [
                path
                for path, record in self.kept.items()
                if unresolved.get(record.serial, 0) != still.get(record.serial, 0)
            ]
            for path in flipped:  # a row once valid names a user or pin that is gone: re-read
                del self.kept[path]
                self.to_read.append(next(f for f in self._all_files if str(f.path) == path))
                self.reason += f"; {path} read again (a user or pin it names is gone)"
            if flipped and not self._read_alike(backend, self.to_read):  # else read all
                self.kept, self.to_read, self.mode = {}, list(self._all_files), "full"
                self.reason = "a file to read again is typed otherwise alone than with the others"
            serials = [record.serial for record in self.kept.values()]
            for path, record in self.kept.items():
                figures[record.serial] = {
                    "read": record.read,
                    Rule.MALFORMED.value: record.malformed,
                    Rule.BAD_VALUE.value: record.bad_value,
                    UNKNOWN: unresolved.get(record.serial, 0),
                }
                self.kept[path] = replace(record, unknown=unresolved.get(record.serial, 0))
            self.state_rows_read = sum(record.pairs for record in self.kept.values())
            if self.kept:
                known = judged.filter(judged.known)
                if flipped:
                    known = known.filter(known.file.isin(serials))
                used_parts.append(used_events(known))
                self._rows.append(
                    segment.kept_quarantine_rows(kept_quarantined, serials, users, pins)
                )
        new_records: list[FileRecord] = []
        held = judged
        if self.to_read:
            new_records, new, new_used = self._check_files(backend, checked, users, pins, figures)
            held = held if held is not None else new
            used_parts.append(new_used)
        # Neither part is copied: the kept part is materialised, the read part is the new
        # segment on disk (its used rows), and the union is read where it is used.
        if held is None:  # the counts carried, no file read: the kept rows' view stands in
            held = self._kept_raw
        if not used_parts:  # ... and no used event to add
            used_parts.append(used_events(held.filter(ibis.literal(False))))
        used = check.union_all(used_parts)
        checked.tables["events"] = held  # freed with the events (Checked.free_events)
        checked.used["events"] = used
        self._figures = events_figures(figures)
        if self.staging is not None:
            self.new_state = self._stage(backend, new_records)
        return checked

    def _read_alike(self, backend: Backend, files: list[InputFile]) -> bool:
        """``files`` read alone are judged as in a read of every file (engine/duckdb/raw_columns.py);
        how to read them (alone, or typed by every file) is kept for :meth:`_check_files`."""
        part = TableSource(EVENTS, tuple(files), tuple(self._all_files))
        how = read_alike(getattr(backend, "con", None), part, self.columns)  # con: DuckDB's
        self._typed_by = how or ()
        return how is not None

    def _decide_delta(self, backend: Backend, checked: Checked) -> None:
        """Whether the state's window part answers this build's counts by deltas, else why not
        (then the counts are recounted from the kept events, and a new window part written)."""
        self.counts_reason, self._came, self.opened = decide(
            backend,
            self.previous,
            kept=len(self.kept),
            window_days=self.window_days,
            dimensions=self.dimensions,
            users=(checked.used["users"], self.parts.changed_users),
            pins=checked.keys.pins,
        )
        self.delta = self.opened is not None
        self.counts_reason = self.counts_reason or self.reason

    def _resolve_late_users(
        self,
        backend: Backend,
        scope: Any,
        users: ir.Table,
        pins: ir.Table,
        figures: dict[int, dict[str, int]],
    ) -> ir.Table:
        """The kept unknown events of users and pins that came since the last build, judged
        again (no pin moved, no user or pin went: only these rows can change): the used ones, as
        new events of the window; each file's unknown references less them."""
        rows = self._kept_rows
        assert self.opened is not None
        came, came_pins = self.opened.came_users, self.opened.came_pins
        rows = rows.filter(
            (rows[RULE] == UNKNOWN)
            & (rows.user_id.isin(came.user_id) | rows.pin_id.isin(came_pins.pin_id))
        )
        pairs = rows.select("file", "day", "user_id", "pin_id", "engaged")
        judged = judged_pairs(pairs, users, pins)
        known = scope.materialize("refresh_late_events", judged.filter(judged.known))
        counted = backend.to_arrow(known.group_by("file").aggregate(rows=known.count()))
        by_path = {record.serial: path for path, record in self.kept.items()}
        for row in counted.to_pylist():
            serial, resolved = int(row["file"]), int(row["rows"])
            figures[serial][UNKNOWN] -= resolved
            record = self.kept[by_path[serial]]
            self.kept[by_path[serial]] = replace(record, unknown=record.unknown - resolved)
        return used_events(known)

    def delta_date(self, backend: Backend, events: ir.Table) -> dt.date:
        """The date of a delta build: the latest valid day, of the state's files or the new."""
        assert self.previous is not None and self.previous.window is not None
        return window.latest_day(backend, events, self.previous.window)

    def keep_window(
        self, backend: Backend, date: dt.date, start: dt.datetime, digests: dict[str, str]
    ) -> None:
        """The window part written (its files' ``digests``): recorded in the new state."""
        assert self.new_state is not None and self.dimensions is not None
        assert self.window_days is not None
        self.new_state.window = Window(
            window_days=self.window_days,
            date=date.isoformat(),
            start=start.date().isoformat(),
            dimensions=self.dimensions,
            digests=digests,
        )
        write_meta(self.new_state)

    def _open_kept(self, backend: Backend) -> tuple[ir.Table, ir.Table | None]:
        """The kept files' rows, from the segments that hold them: their events that passed the
        row rules (to be judged again) and their bad rows."""
        assert self.previous is not None
        root = self.previous.root
        names = sorted({record.segment for record in self.kept.values()})
        paths = {record.serial: path for path, record in self.kept.items()}
        segments = self.previous.segments
        self._kept_raw = backend.read_parquet(
            "refresh_segments",
            [path for name in names for path in segment_paths(root, name, segments[name])],
        )
        decoded = segment.decoded(self._kept_raw, paths)
        rows = decoded.filter(decoded.file.isin(list(paths)))
        self._kept_rows = rows
        rule = rows[RULE]
        pairs = rows.filter(rule.isnull() | (rule == UNKNOWN))
        bad = rows.filter(rule.notnull())
        quarantined = bad.select(
            "file",
            source_file=bad[SOURCE_FILE],
            line=bad[LINE],
            rule=bad[RULE],
            row=bad[ROW],
            user_id=bad.user_id,
            pin_id=bad.pin_id,
        )
        return pairs.select("file", "day", "user_id", "pin_id", "engaged"), quarantined

    @staticmethod
    def _unresolved(
        backend: Backend,
        judged: ir.Table,
        quarantined: ir.Table | None,
        users: ir.Table,
        pins: ir.Table,
    ) -> tuple[dict[int, int], dict[int, int]]:
        """Per kept file: rows (from its judged pairs) whose user or pin is unknown now, and how
        many of its kept ``unknown_reference`` rows are still unknown. Equal: no valid row turned
        unknown, so its kept rows are exactly its quarantined ones."""
        counted = judged.group_by("file").aggregate(unknown=judged.count(where=~judged.known))
        unresolved = {
            int(row["file"]): int(row["unknown"] or 0)
            for row in backend.to_arrow(counted).to_pylist()
        }
        still: dict[int, int] = {}
        if quarantined is not None:
            q = quarantined.filter(quarantined.rule == UNKNOWN)
            gone = ~(q.user_id.isin(users.user_id) & q.pin_id.isin(pins.pin_id))
            rows = backend.to_arrow(q.group_by("file").aggregate(still=q.count(where=gone)))
            still = {int(row["file"]): int(row["still"]) for row in rows.to_pylist()}
        return unresolved, still

    def _check_files(
        self,
        backend: Backend,
        checked: Checked,
        users: ir.Table,
        pins: ir.Table,
        figures: dict[int, dict[str, int]],
    ) -> tuple[list[FileRecord], ir.Table, ir.Table]:
        """Read and check the files to read, as a full check does, in one pass that writes them
        to a new segment of the state; their state records, their checked rows (read back from
        the segment) and their used events."""
        assert self.staging is not None
        first = self.previous.next_serial if self.previous is not None else 1
        serial_of = {str(f.path): first + n for n, f in enumerate(self.to_read)}
        try:
            raw = backend.raw_table(TableSource(EVENTS, tuple(self.to_read), self._typed_by))
        except InputError as error:  # a missing column, an unreadable file: a build error
            raise BuildError(str(error)) from error
        expr = validate.check_table(
            raw,
            EVENTS,
            used_keys={"users": users.user_id},
            lookups={"pin_id": pins},
            hashed_sets=backend.hashes_value_lists,
            by_value=check.events_by_value(backend),
        )
        listed = self.staging / "serials.parquet"
        serials = segment.serials(backend, listed, serial_of)
        # A left join: a row whose file the reader named otherwise than discovery did would
        # have no serial, and is refused below rather than lost.
        expr = expr.left_join(serials, expr[SOURCE_FILE] == serials["__refresh_path"])

        def keep(table: ir.Table) -> dict[str, ir.Value]:
            columns = semantics.event_columns(table)
            return {
                "file": table["__refresh_file"],
                # A day stands for its instants (later steps read events by whole days): the
                # instant here, its UTC day in the segment (segment.utc_day).
                "day": columns.pop("event_time"),
                "pin_id": table.pin_id,
                **columns,
            }

        # The one pass over the files: every row checked and written, not materialised in
        # memory; bad rows carry their provenance (validate.finish), used rows nulls there.
        name = secrets.token_hex(8)
        stem = segment_stem(self.staging, name)
        stem.parent.mkdir(parents=True, exist_ok=True)
        rows = validate.finish(expr, EVENTS, keep=keep)
        files = backend.write_parquet_parts(segment.encoded(rows, backend.name), stem)
        backend.release("refresh_files")
        listed.unlink()
        paths = {serial: file for file, serial in serial_of.items()}
        stored = backend.read_parquet("refresh_segment", files)
        new = segment.decoded(stored, paths)
        rule = new[validate.RULE]
        counted = backend.to_arrow(new.group_by("file", rule).aggregate(rows=new.count()))
        written = 0
        for row in counted.to_pylist():
            if row["file"] is None:
                raise BuildError(f"internal error: {row['rows']} event rows of no known file")
            mine = figures.setdefault(int(row["file"]), {"read": 0})
            mine["read"] += int(row["rows"])
            written += int(row["rows"])
            if row[validate.RULE] is not None:
                mine[row[validate.RULE]] = mine.get(row[validate.RULE], 0) + int(row["rows"])
        self.events_read = written
        self._rows.append(validate.quarantine_rows(new, EVENTS))
        self._segment = (name, Segment(rows=written, digests=[digest_file(f) for f in files]))
        records = [
            file_record(self.fingerprints[file], serial, name, figures.get(serial, {"read": 0}))
            for file, serial in serial_of.items()
        ]
        # Filtered on the stored column: a filter DuckDB pushes into the segment's scan.
        return records, stored, used_events(new.filter(new[BAD].isnull()))

    def _stage(self, backend: Backend, new_records: list[FileRecord]) -> State:
        """The new state in the staging directory: the segments holding kept files linked from
        the previous state (rewritten with their live rows only once those are fewer than half),
        the segment of the files read, and the meta file."""
        assert self.staging is not None
        first = self.previous.next_serial if self.previous is not None else 1
        state = State(self.staging, self.columns, next_serial=first + len(self.to_read))
        carried: dict[str, list[FileRecord]] = {}
        for record in self.kept.values():
            carried.setdefault(record.segment, []).append(record)
        for name, records in carried.items():
            assert self.previous is not None
            old, live = self.previous.segments[name], sum(record.read for record in records)
            sources = segment_paths(self.previous.root, name, old)
            if live * 2 >= old.rows:
                for source, target in zip(
                    sources, segment_paths(self.staging, name, old), strict=True
                ):
                    link_or_copy(source, target)
                state.segments[name] = old
            else:  # mostly rows of files gone or read again: keep the live ones only
                name = secrets.token_hex(8)
                target = segment_stem(self.staging, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                rows = backend.read_parquet("refresh_rewritten", sources)
                live_rows = rows.filter(rows.file.isin([r.serial for r in records]))
                files = backend.write_parquet_parts(live_rows, target)
                backend.release("refresh_rewritten")
                digests = [digest_file(path) for path in files]
                state.segments[name] = Segment(rows=live, digests=digests)
                records = [replace(record, segment=name) for record in records]
            for record in records:
                state.files[record.fingerprint.path] = record
        if new_records:
            assert self._segment is not None
            state.segments[self._segment[0]] = self._segment[1]
        for record in new_records:
            state.files[record.fingerprint.path] = record
        state.pins = self._pins_kept  # this build's own, once counted (quarantine)
        write_meta(state)
        return state

    # --- quarantine ------------------------------------------------------------------------------

    def quarantine(
        self, backend: Backend, checked: Checked, max_bad_fraction: float
    ) -> tuple[dict[str, dict[str, Any]], pa.Table, list[str]]:
        """Each table's figures, the quarantined rows, the failures: as check.quarantine."""
        if not self.keeps_state:
            return check.quarantine(backend, checked, max_bad_fraction)
        dimensions = Checked(
            scope=checked.scope,
            tables={name: t for name, t in checked.tables.items() if name != "events"},
            keys=checked.keys,
        )
        tables, rows, failures = check.quarantine(backend, dimensions, max_bad_fraction)
        root = self.previous.root if self.previous is not None else None
        parts, rows = self.parts.quarantine(backend, root, self.staging, tables, rows)
        for name in self.parts.reused:
            if (failure := check.too_many(name, tables[name], max_bad_fraction)) is not None:
                failures.append(failure)
        if self._pins_kept is not None:  # the state's check of the same pins: its figures, rows
            assert self.previous is not None
            tables["pins"] = dict(self._pins_kept.figures)
            if (failure := check.too_many("pins", tables["pins"], max_bad_fraction)) is not None:
                failures.append(failure)
            rows = pa.concat_tables([rows, pins_part.quarantined(self.previous.root, rows.schema)])
        elif self.new_state is not None and self.staging is not None:
            self._pins_digests["quarantined"] = pins_part.save_quarantined(self.staging, rows)
            self.new_state.pins = CheckPart(self.pin_inputs, tables["pins"], self._pins_digests)
        if self.new_state is not None:
            self.new_state.tables = parts
            write_meta(self.new_state)
        tables["events"] = self._figures
        if (failure := check.too_many("events", self._figures, max_bad_fraction)) is not None:
            failures.append(failure)
        if self._rows:
            events = backend.to_arrow(check.union_all(self._rows))
            rows = pa.concat_tables([rows, events.cast(rows.schema)])
        return tables, rows, failures

    def summary(self) -> dict[str, Any]:
        """What the report says of the refresh: which build it was, why, what it read."""
        return {
            "mode": self.mode,
            "reason": self.reason,
            "event_files": {
                "read": len(self.to_read),
                "kept": len(self.kept),
                "gone": self.dropped,
            },
            "events_read": self.events_read if self.keeps_state else None,
            "state_rows_read": self.state_rows_read,
            "state_kept": self.keeps_state,
            "pins": "kept" if self._pins_kept is not None else "checked",
            "tables": self.parts.summary(),
            "users_check": self.parts.users_reason,
            "counts": "delta" if self.delta else "recounted",
            "counts_reason": self.counts_reason,
        }

    def discard(self) -> None:
        """The build failed: the staged state is not published."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
