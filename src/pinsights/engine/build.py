"""``pinsights build``: from a dataset directory to a published snapshot (SPEC §2-§4).

The order of work is the order data flows: read → check each table (earlier tables first, because
later ones reference them) → quarantine → pick the date → facts → memberships → counts → documents →
write a snapshot file → publish atomically. Nothing is published unless every step succeeded; the
quarantine and the build report are written even for a build that fails on bad input, because that is
when they are needed most.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import resource
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa

from pinsights.data import validate
from pinsights.data.sources import DataPath, InputError
from pinsights.data.tables import TABLES, TABLES_BY_NAME, Rule, Table
from pinsights.engine import arrow_columns as columns
from pinsights.engine import semantics
from pinsights.engine.backend import Backend, BackendError
from pinsights.engine.documents import (
    ACCOUNT_INSIGHT_TYPES,
    P_KEY,
    SHARED_ACCOUNT,
    Catalogue,
    Counts,
    Document,
    DocumentAssembler,
)
from pinsights.engine.dp import bounding
from pinsights.engine.dp import step as dp_step
from pinsights.engine.dp.budget import BudgetExceededError, check_budget
from pinsights.engine.dp.ledger import Ledger, LedgerError
from pinsights.engine.dp.parameters import DpParameters
from pinsights.engine.dp.release import noisy_counts
from pinsights.engine.duckdb.backend import DuckDBBackend, out_of_memory
from pinsights.engine.memory import memory_limit_in_effect
from pinsights.engine.privacy import PrivacyRules
from pinsights.engine.spark.session import SparkSettings
from pinsights.store import (
    BUILD_KIND,
    Store,
    StoreError,
    temporary_name,
)
from pinsights.store.snapshot import (
    ACCOUNT_DETAILS,
    FORMAT,
    SUFFIXES,
    AccountRecord,
    write_snapshot_file,
)

STEPS = (
    "read",
    "validate",
    "quarantine",
    "facts",
    "memberships",
    "counts",
    "noise",  # the DP mode only
    "documents",
    "publish",
)


#: Engines this release can run the definition on.
ENGINES = ("duckdb", "spark")
#: ``--privacy``: exact counts (the default) or the differentially private mode.
PRIVACY_MODES = ("exact", "dp")


class BuildError(Exception):
    """The build stopped; nothing was published. The message says why, precisely."""


@dataclass(frozen=True)
class BuildOptions:
    data_dir: DataPath  # a local path, or with the Spark engine a URL (load.data_path)
    store_dir: Path = Path("pinsights-store")
    date: dt.date | None = None
    #: More generation dates, built in one run from one reading of the input (with ``date``).
    dates: tuple[dt.date, ...] = ()
    window_days: int = 30
    min_audience_size: int = 100
    min_cell_size: int = 10
    max_subcategories: int = 10
    retain: int = 30
    max_bad_fraction: float = 0.01
    engine: str = "duckdb"
    threads: int | None = None
    #: Memory limit of the build process (e.g. ``8GB``; DuckDB's buffers get most of it, see
    #: memory.buffer_pool_bytes); default: half the machine's memory.
    memory_limit: str | None = None
    #: Publish a requested date even when its window holds no valid event (an empty snapshot).
    allow_empty: bool = False
    spark: SparkSettings = field(default_factory=SparkSettings)  # where --engine spark runs
    #: ``exact`` (SPEC §3) or ``dp``: bounded, noised and accounted counts (docs/privacy.md).
    privacy_mode: str = "exact"
    dp: DpParameters = field(default_factory=DpParameters)

    def privacy(self) -> PrivacyRules:
        return PrivacyRules(
            min_audience_size=self.min_audience_size,
            min_cell_size=self.min_cell_size,
            max_subcategories=self.max_subcategories,
        )

    def requested_dates(self) -> list[dt.date]:
        """The dates asked for, oldest first; empty: the date of the latest valid event."""
        return sorted({*self.dates, *([self.date] if self.date else [])})

    def check(self) -> None:
        if self.window_days < 1:
            raise BuildError("--window-days must be at least 1")
        if self.retain < 1:
            raise BuildError("--retain must be at least 1")
        if self.engine not in ENGINES:
            raise BuildError(
                f"unknown engine {self.engine!r}: this build runs on {', '.join(ENGINES)}"
            )
        if self.privacy_mode not in PRIVACY_MODES:
            raise BuildError(
                f"unknown privacy mode {self.privacy_mode!r}: one of {', '.join(PRIVACY_MODES)}"
            )
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise BuildError("--max-bad-fraction must be between 0 and 1")
        try:
            self.privacy()
        except ValueError as error:
            raise BuildError(str(error)) from error


@dataclass
class _Run:
    """Mutable state of one build: timings and table statistics for the report."""

    options: BuildOptions
    build_id: str
    timings: dict[str, float] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    on_step: Callable[[str], None] | None = None
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.on_step is not None:
            self.on_step(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(
                self.timings.get(name, 0.0) + time.perf_counter() - started, 3
            )

    def count(self, step: str, rows_in: int, rows_out: int) -> None:
        """Rows a step read and wrote, for the report: where a slow build spends its rows."""
        self.rows[step] = {"rows_in": int(rows_in), "rows_out": int(rows_out)}

    def performance(self) -> dict[str, Any]:
        """The report's view of time and memory: per step, the whole build, the peak."""
        # Rate from the reported (rounded) seconds, so the report agrees with itself.
        seconds = round(time.perf_counter() - self.started, 3)
        events = self.tables.get("events", {}).get("read", 0)
        return {
            "seconds": seconds,
            "events_per_second": round(events / seconds) if seconds > 0 else 0,
            "peak_rss_bytes": peak_rss_bytes(),
            "steps": {
                name: {"seconds": seconds, **self.rows.get(name, {})}
                for name, seconds in self.timings.items()
            },
        }


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (DuckDB's buffers, Arrow and Python alike)."""
    # ru_maxrss is in KiB on Linux (bytes on macOS, where this project is not built for).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def new_build_id() -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{secrets.token_hex(3)}"


def build(options: BuildOptions, *, on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build and publish the snapshot for ``options``; return the build report.

    With several dates the input is read and checked once, each date is published as soon as it
    is built, and the report is ``{"build_id", "published", "dates", "reports": [one per date]}``.

    Raises :class:`BuildError` (nothing published) for a missing table or column, too many bad
    rows, no valid event to date the snapshot by, a date the store would not retain, or a store
    held by another build. Its ``__cause__`` is the store's error when the store refused.
    """
    options.check()
    store = Store(options.store_dir)
    run = _Run(options=options, build_id=new_build_id(), on_step=on_step)
    try:
        with store.build_lock() as cleaned:
            store.check_retention(options.requested_dates(), options.retain)  # before any work
            if options.privacy_mode == "dp":  # before any work too; again once accounts are known
                check_budget(Ledger(store.root), options.requested_dates(), options.dp)
            try:
                reports = _build_locked(store, run, cleaned)
            except Exception as error:
                with contextlib.suppress(OSError):  # the report must not hide the error
                    _write_failure_report(store, run, str(error) or type(error).__name__)
                if run.published and isinstance(error, BuildError | StoreError | BackendError):
                    done = ", ".join(run.published)
                    raise BuildError(f"{error} (published before the failure: {done})") from error
                raise
    except StoreError as error:
        raise BuildError(str(error)) from error
    except BackendError as error:
        raise BuildError(str(error)) from error
    except (BudgetExceededError, LedgerError) as error:
        raise BuildError(str(error)) from error
    if len(reports) == 1:
        return reports[0]
    return {
        "build_id": run.build_id,
        "published": True,
        "dates": [report["date"] for report in reports],
        "reports": reports,
    }


def _write_failure_report(store: Store, run: _Run, message: str) -> None:
    """Written under the build lock, so no other build can clean its temporary file away."""
    store.write_report(
        run.build_id,
        {
            "build_id": run.build_id,
            "published": False,
            "published_dates": run.published,
            "error": message,
            "engine": run.options.engine,
            "tables": run.tables,
            "timings": run.timings,
            **run.performance(),
        },
    )


def _build_locked(store: Store, run: _Run, cleaned: list[str]) -> list[dict[str, Any]]:
    """Read and check the input once, then build and publish each date (oldest first)."""
    options = run.options
    # DuckDB spills here beyond its memory limit: inside the store, named as a build temporary,
    # so the next build removes what a killed one left.
    spill = store.root / temporary_name(BUILD_KIND, f"spill-{run.build_id}")
    try:
        backend = make_backend(
            options.engine,
            threads=options.threads,
            memory_limit=options.memory_limit,
            temp_directory=spill,
            spark=options.spark,
        )
    except ValueError as error:
        raise BuildError(str(error)) from error
    try:
        with run.step("read"):
            try:
                sources = backend.discover(options.data_dir)
                raw = {name: backend.raw_table(source) for name, source in sources.items()}
            except InputError as error:
                raise BuildError(str(error)) from error
        try:
            with run.step("validate"):
                checked, keys = _check_tables(backend, raw)
            with run.step("quarantine"):
                _quarantine(backend, store, run, checked)
        except duckdb.Error as error:
            damaged = backend.damaged_file(list(sources.values()), error)
            if damaged is None:
                raise
            raise BuildError(str(damaged)) from error
        read = sum(stats["read"] for stats in run.tables.values())
        used_rows = sum(stats["used"] for stats in run.tables.values())
        run.count("validate", read, used_rows)
        run.count("quarantine", read, read - used_rows)
        # Pins served the events' check; what no later step reads is dropped as soon as its last
        # reader ran, so the memory it held serves the steps after it (see _build_date).
        backend.release("checked_pins", "keyed_pins")
        used = {name: validate.used_rows(table) for name, table in checked.items()}
        dates = _dates_to_build(backend, options, used["events"])
        store.check_retention(dates, options.retain)
        shared_timings = dict(run.timings)
        reports = []
        for number, date in enumerate(dates, start=1):
            run.timings = dict(shared_timings)
            last = number == len(dates)
            reports.append(_build_date(backend, store, run, used, keys, date, cleaned, last=last))
            run.published.append(date.isoformat())
        return reports
    except Exception as error:
        if not out_of_memory(error):
            raise
        limit = memory_limit_in_effect(options.memory_limit)
        raise BuildError(
            f"DuckDB ran out of memory under the memory limit {limit}: raise --memory-limit"
            " (or PINSIGHTS_MEMORY_LIMIT), or lower PINSIGHTS_THREADS (each thread needs its own"
            " buffers)"
        ) from error
    finally:
        backend.close()
        shutil.rmtree(spill, ignore_errors=True)


def make_backend(
    name: str,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: Path | None = None,
    spark: SparkSettings | None = None,
) -> Backend:
    """The named backend; ``PINSIGHTS_THREADS`` and ``PINSIGHTS_MEMORY_LIMIT`` tune DuckDB when
    no explicit value is given; ``spark`` says where Spark runs (see :mod:`pinsights.engine.spark.backend`,
    imported only for it), and a memory limit given either way sizes its driver's heap."""
    if name == "duckdb":
        env_threads = os.environ.get("PINSIGHTS_THREADS")
        return DuckDBBackend(
            threads=threads if threads is not None else (int(env_threads) if env_threads else None),
            memory_limit=memory_limit_in_effect(memory_limit),
            temp_directory=temp_directory,
        )
    if name == "spark":
        from pinsights.engine.spark.backend import SparkBackend

        given = memory_limit or os.environ.get("PINSIGHTS_MEMORY_LIMIT")
        return SparkBackend.start(spark or SparkSettings(), memory_limit=given)
    raise ValueError(f"unknown engine {name!r}: this build knows 'duckdb' and 'spark'")


def _count_rows(counts: Counts) -> int:
    """Rows of counts that reached Python: sizes, interest and demographic cells."""
    interests = sum(len(cells) for cells in counts.interests.values())
    demographics = sum(
        len(values) for dimensions in counts.demographics.values() for values in dimensions.values()
    )
    return len(counts.sizes) + interests + demographics


def _build_date(
    backend: Backend,
    store: Store,
    run: _Run,
    used: dict[str, ir.Table],
    keys: _Keys,
    date: dt.date,
    cleaned: list[str],
    *,
    last: bool = True,
) -> dict[str, Any]:
    """Compute and publish the snapshot of one date from the checked input; its report.

    Each intermediate result is released once its last reader ran, and on the ``last`` date the
    checked events and users too: the documents and the snapshot file are assembled in the
    memory the counts no longer need.
    """
    options = run.options
    dp = options.privacy_mode == "dp"
    start, end = semantics.window_bounds(date, options.window_days)
    with run.step("facts"):
        facts = backend.materialize("facts", semantics.engagement_facts(used["events"], start, end))
    facts_rows = backend.rows(facts)
    run.count("facts", run.tables["events"]["used"], facts_rows)
    with run.step("memberships"):
        interests = semantics.user_interests(
            semantics.events_in_window(used["events"], start, end), keys.levels
        )
        kept = backend.materialize_all(  # independent of each other
            {
                # Exact counts read T(a) with E(a) marked (one pass for both); the DP parts
                # are disjoint audiences, one membership row each.
                "memberships": bounding.part_memberships(facts)
                if dp
                else semantics.audience_members(facts),
                "user_interests": bounding.bounded_user_interests(
                    interests, keys.levels, options.dp.caps
                )
                if dp
                else interests,
            }
        )
        members, interests_of_users = kept["memberships"], kept["user_interests"]
        backend.release("facts", *(["checked_events"] if last else []))
    member_rows = backend.rows(members) + backend.rows(interests_of_users)
    run.count("memberships", facts_rows + run.tables["events"]["used"], member_rows)
    with run.step("counts"):
        catalogue = _catalogue(backend, used, keys.named_levels)
        account_records = _account_records(backend, used["ad_accounts"])
        accounts = [record.ad_account_id for record in account_records]
        audiences = [P_KEY, *((a, kind) for a in accounts for kind in ACCOUNT_INSIGHT_TYPES)]

        def write_interest_parts(partial: Counts) -> DocumentAssembler:
            assembler = DocumentAssembler(partial, catalogue, options.privacy(), date.isoformat())
            assembler.prepare_categories(audiences)
            return assembler

        privacy: dict[str, object] = {"mode": "exact"}
        if dp:
            release, release_key = dp_step.charge_release(
                store.root, date, run.build_id, accounts, options.dp
            )
            privacy = dp_step.privacy_summary(release, options.dp)
            domain = dp_step.domain_of(catalogue)
            parts = dp_step.engine_part_counts(
                backend,
                members,
                interests_of_users,
                used["users"],
                keys.accounts,
                keys.interests,
                domain,
                accounts,
            )
        else:
            counts, assembler = _counts(
                backend,
                options.privacy(),
                members,
                interests_of_users,
                used,
                keys,
                meanwhile=write_interest_parts,
            )
        backend.release(
            "memberships",
            "user_interests",
            "demographic_value_keys",
            "member_demographics",
            *(["checked_users"] if last else []),
        )
    if dp:
        with run.step("noise"):
            counts = noisy_counts(
                parts, domain, options.dp, options.privacy(), release_key, accounts
            )
            assembler = DocumentAssembler(counts, catalogue, options.privacy(), date.isoformat())
    count_rows = _count_rows(counts)
    run.count("counts", member_rows, count_rows)
    with run.step("documents"):
        documents = list(assembler.documents(accounts))
    run.count("documents", count_rows, len(documents))
    report = {
        "build_id": run.build_id,
        "published": True,
        "date": date.isoformat(),
        "window": {
            "start": start.date().isoformat(),
            "end": date.isoformat(),
            "days": options.window_days,
        },
        "engine": backend.name,
        "tables": run.tables,
        "audiences": {
            "accounts": len(accounts),
            "documents": len(documents),
            "reportable": sum(1 for d in documents if d.reportable),
            "pinterest_total_audience": counts.sizes.get(P_KEY, 0),
        },
        "options": {
            "window_days": options.window_days,
            "min_audience_size": options.min_audience_size,
            "min_cell_size": options.min_cell_size,
            "max_subcategories": options.max_subcategories,
            "retain": options.retain,
            "max_bad_fraction": options.max_bad_fraction,
        },
        "privacy": privacy,
        "cleaned": cleaned,
        "timings": run.timings,
    }
    with run.step("publish"):
        written = store.temporary_path(f"{run.build_id}--{date.isoformat()}{SUFFIXES[FORMAT]}")
        _write_snapshot(written, documents, account_records, catalogue, report)
        store.publish(written, date=date, build_id=run.build_id, retain=options.retain)
    run.count("publish", len(documents), len(documents))
    report["timings"] = run.timings
    report.update(run.performance())
    store.write_report(f"{run.build_id}--{date.isoformat()}", report)
    return report


def _check_tables(backend: Backend, raw: dict[str, ir.Table]) -> tuple[dict[str, ir.Table], _Keys]:
    """Judge every table, each after the tables it references; return the materialised checked
    tables (in contract order) and keys.

    Before the events are judged, accounts and interests get their dense keys, and pins are
    re-keyed, so the check of each event also looks up its pin's advertiser and interest. Tables
    that do not depend on each other are judged at the same time (see :func:`_check_waves`).
    """
    checked: dict[str, ir.Table] = {}
    used_keys: dict[str, ir.Column] = {}
    keys: _Keys | None = None
    result, levels = _check_interests(backend, raw["interests"], TABLES_BY_NAME["interests"])
    checked["interests"] = result
    used_keys["interests"] = validate.used_rows(result)["interest_id"]
    for wave in _check_waves([table for table in TABLES if table.name in raw]):
        exprs: dict[str, ir.Table] = {}
        for table in wave:
            lookups, keep = None, None
            if table.name == "events":
                used = {name: validate.used_rows(done) for name, done in checked.items()}
                keys = _keys(backend, used, levels)
                lookups, keep = {"pin_id": keys.pins}, semantics.event_columns
            expr = validate.check_table(
                raw[table.name], table, used_keys=used_keys, lookups=lookups
            )
            exprs[f"checked_{table.name}"] = validate.finish(expr, table, keep=keep)
        results = backend.materialize_all(exprs)
        for table in wave:
            checked[table.name] = results[f"checked_{table.name}"]
            if table.primary_key is not None:
                used_keys[table.name] = validate.used_rows(checked[table.name])[table.primary_key]
    assert keys is not None
    return {table.name: checked[table.name] for table in TABLES if table.name in checked}, keys


def _check_waves(tables: list[Table]) -> list[list[Table]]:
    """The tables after interests (checked first, on their own) in waves, each wave judged at once.

    A table is judged as late as the tables that reference it allow, not as early as it could
    be: so the users (which nothing but events reference) are judged beside the pins, the two
    large tables before the events, instead of beside the small accounts and metros.
    """
    names = {table.name for table in tables}

    def references(table: Table) -> set[str]:
        return {
            column.references
            for column in table.columns
            if column.references in names and column.references != table.name
        }

    earliest: dict[str, int] = {}
    for table in tables:  # contract order: a referenced table comes first
        earliest[table.name] = 1 + max((earliest[r] for r in references(table)), default=0)
    last = max(earliest.values())
    latest: dict[str, int] = {}
    for table in reversed(tables):
        readers = [other.name for other in tables if table.name in references(other)]
        latest[table.name] = min((latest[r] - 1 for r in readers), default=last)
    return [
        [table for table in tables if table.name != "interests" and latest[table.name] == wave]
        for wave in sorted(set(latest.values()))
        if any(t.name != "interests" and latest[t.name] == wave for t in tables)
    ]


#: Levels of the interest hierarchy walked by one query (categories, subcategories and a level
#: below them: the depth of the usual taxonomies, then one more to see that nothing is deeper).
WALK_LEVELS = 4


def _check_interests(backend: Backend, raw: ir.Table, table: Table) -> tuple[ir.Table, ir.Table]:
    """Interests reference each other: the hierarchy is judged by walking down from the categories.

    An interest is used when its chain of parents reaches a level-1 interest through used interests;
    one in a cycle or below a quarantined interest never does and is an ``unknown_reference``.
    """
    first = backend.materialize(
        "checked_interests_first",
        validate.check_table(raw, table, used_keys={}, skip_references=frozenset({"interests"})),
    )
    candidates = validate.used_rows(first)
    # WALK_LEVELS levels per query, kept with their deepest level: the walk goes on only while
    # that one is not empty (on Spark each query is a job with its fixed cost).
    level = semantics.interest_roots(candidates)
    reached: list[ir.Table] = []
    while True:
        batch = [level]
        for _ in range(WALK_LEVELS - 1):
            batch.append(semantics.interest_children(candidates, batch[-1]))
        walked, deepest = f"interest_levels_{len(reached)}", f"interest_frontier_{len(reached)}"
        kept = backend.materialize_all({walked: batch[0].union(*batch[1:]), deepest: batch[-1]})
        reached.append(kept[walked])
        if not backend.rows(kept[deepest]):
            break
        level = semantics.interest_children(candidates, kept[deepest])
    levels = (
        backend.materialize("interest_levels", reached[0].union(*reached[1:]))
        if len(reached) > 1
        else reached[0]
    )
    checked = validate.mark_unknown_references(first, ~first.interest_id.isin(levels.interest_id))
    result = backend.materialize("checked_interests", validate.finish(checked, table))
    return result, levels


def _quarantine(backend: Backend, store: Store, run: _Run, checked: dict[str, ir.Table]) -> None:
    """Count rules per table, write the quarantine, fail when a table has too many bad rows."""
    failures: list[str] = []
    # One query for every table's counts: one round trip (on Spark, one job's worth of overhead).
    per_table = [
        validate.rule_counts(table_checked).mutate(table=ibis.literal(name))
        for name, table_checked in checked.items()
    ]
    counted = backend.to_arrow(per_table[0].union(*per_table[1:], distinct=False)).to_pylist()
    for name in checked:
        rows = [row for row in counted if row["table"] == name]
        by_rule = {row[validate.RULE]: int(row["rows"]) for row in rows}
        read = sum(by_rule.values())
        used = by_rule.pop(None, 0)
        quarantined = {rule.value: by_rule[rule.value] for rule in Rule if by_rule.get(rule.value)}
        run.tables[name] = {"read": read, "used": used, "quarantined": quarantined}
        bad = read - used
        if read and bad / read > run.options.max_bad_fraction:
            summary = ", ".join(f"{rule}: {n}" for rule, n in quarantined.items())
            failures.append(
                f"{name}: {bad} of {read} rows quarantined ({bad / read:.2%}; {summary})"
            )
    parts = [validate.quarantine_rows(checked[name], TABLES_BY_NAME[name]) for name in checked]
    written = store.temporary_path(f"quarantine-{run.build_id}.duckdb")
    backend.export_quarantine(parts[0].union(*parts[1:], distinct=False), written)
    store.publish_quarantine(written)
    if failures:
        raise BuildError(
            f"too many bad rows (more than --max-bad-fraction={run.options.max_bad_fraction}):\n  "
            + "\n  ".join(failures)
            + "\nnothing was published; see `pinsights quarantine` for the rows"
        )


def _dates_to_build(backend: Backend, options: BuildOptions, events: ir.Table) -> list[dt.date]:
    """The requested dates, or the day of the latest valid event; refused (nothing built) when a
    date's window holds no valid event, unless ``allow_empty``: an empty snapshot published by a
    mistyped date would become the newest one, and be served."""
    requested = options.requested_dates()
    windows = [semantics.window_bounds(day, options.window_days) for day in requested]
    span = backend.to_arrow(semantics.event_span(events, windows)).to_pylist()[0]
    first, last = (_as_date(span["first"]), _as_date(span["last"]))
    if not requested:
        if last is None:
            raise BuildError(
                "no valid event in the events table: nothing to build"
                " (--date D --allow-empty publishes an empty snapshot anyway)"
            )
        return [last]
    empty = [
        (day, window[0].date())
        for i, (day, window) in enumerate(zip(requested, windows, strict=True))
        if not span[f"in_window_{i}"]
    ]
    if empty and not options.allow_empty:
        where = ", ".join(f"{day} ({first_day}..{day})" for day, first_day in empty[:3]) + (
            f" and {len(empty) - 3} more" if len(empty) > 3 else ""
        )
        held = (
            f"the data's valid events run from {first} to {last}"
            if first is not None and last is not None
            else "the data holds no valid event"
        )
        raise BuildError(
            f"no valid event in the window of {where}: {held}; nothing was published"
            " (--allow-empty publishes an empty snapshot anyway)"
        )
    return requested


def _as_date(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


@dataclass
class _Keys:
    """Dense integer keys of accounts and interests, and the tables re-keyed with them."""

    accounts: dict[int, str]
    interests: dict[int, str]
    pins: ir.Table
    levels: ir.Table
    named_levels: ir.Table  # the hierarchy with interest ids, for names


def _keys(backend: Backend, used: dict[str, ir.Table], levels: ir.Table) -> _Keys:
    dense = backend.materialize_all(
        {
            "account_keys": semantics.dense_keys(
                used["ad_accounts"], "ad_account_id", "account_key"
            ),
            "interest_keys": semantics.dense_keys(levels, "interest_id", "interest_key"),
        }
    )
    account_keys, interest_keys = dense["account_keys"], dense["interest_keys"]
    accounts = backend.to_arrow(account_keys).to_pydict()
    interests = backend.to_arrow(interest_keys).to_pydict()
    keyed = backend.materialize_all(
        {
            "keyed_pins": semantics.keyed_pins(used["pins"], account_keys, interest_keys),
            "keyed_levels": semantics.keyed_levels(levels, interest_keys),
        }
    )
    return _Keys(
        accounts=dict(zip(accounts["account_key"], accounts["ad_account_id"], strict=True)),
        interests=dict(zip(interests["interest_key"], interests["interest_id"], strict=True)),
        pins=keyed["keyed_pins"],
        levels=keyed["keyed_levels"],
        named_levels=levels,
    )


#: What the work done beside the demographic counts gives back (see _counts).
_Meanwhile = TypeVar("_Meanwhile")


def _counts(
    backend: Backend,
    rules: PrivacyRules,
    members: ir.Table,
    interests_of_users: ir.Table,
    used: dict[str, ir.Table],
    keys: _Keys,
    *,
    meanwhile: Callable[[Counts], _Meanwhile],
) -> tuple[Counts, _Meanwhile]:
    """Run the counts and map keys back to ids, as the document assembler expects them.

    Rows arrive ordered by audience, so each audience's dict is found once per run of rows, not
    once per row (half a million interest rows at 20M events).

    The demographic counts run in the engine on a second thread while ``meanwhile`` gets the
    counts without their demographics (filled in the same object afterwards): the build writes
    the interest part of every document then, in Python, while the engine joins members with
    their users' values, which does not keep both cores busy by itself. Returns the complete
    counts and what ``meanwhile`` returned (the build's document assembler).
    """

    def audience(account_key: int, code: int) -> tuple[str, str]:
        account = (
            SHARED_ACCOUNT
            if account_key == semantics.SHARED_ACCOUNT_KEY
            else keys.accounts[account_key]
        )
        return account, semantics.AUDIENCE_CODES[code]

    size_rows = backend.to_arrow(semantics.sizes_of_audiences(members)).to_pydict()
    sizes = {
        audience(account_key, code): int(size)
        for account_key, code, size in zip(
            size_rows["account_key"], size_rows["audience"], size_rows["size"], strict=True
        )
    }
    interest_counts = rules.suppress_small_cells(
        semantics.interest_counts_of_audiences(members, interests_of_users)
    )
    interest_rows = backend.to_arrow(
        interest_counts.order_by("account_key", "audience")
    ).to_pydict()
    interest_ids = keys.interests
    interests: dict[tuple[str, str], dict[str, int]] = {}
    current: dict[str, int] = {}
    previous: tuple[int, int] | None = None
    for account_key, code, interest_key, users in zip(
        interest_rows["account_key"],
        interest_rows["audience"],
        interest_rows["interest_key"],
        interest_rows["users"],
        strict=True,
    ):
        if (account_key, code) != previous:
            previous = (account_key, code)
            current = interests.setdefault(audience(account_key, code), {})
        current[interest_ids[interest_key]] = users

    def demographic_rows() -> pa.Table:
        value_keys = backend.materialize(
            "demographic_value_keys", semantics.demographic_value_keys(used["users"])
        )
        member_values = backend.materialize(
            "member_demographics",
            semantics.member_demographics(members, used["users"], value_keys),
        )
        return backend.to_arrow(
            rules.suppress_small_cells(
                semantics.demographic_counts_of_audiences(member_values, value_keys)
            ).order_by("account_key", "audience")
        )

    demographics: dict[tuple[str, str], dict[str, list[tuple[str, int]]]] = {}
    counts = Counts(sizes=sizes, interests=interests, demographics=demographics)
    with ThreadPoolExecutor(max_workers=1) as engine:
        pending = engine.submit(demographic_rows)
        prepared = meanwhile(counts)
        demo_rows = pending.result().to_pydict()
    per_dimension: dict[str, list[tuple[str, int]]] = {}
    previous = None
    for account_key, code, dimension, key, users in zip(
        demo_rows["account_key"],
        demo_rows["audience"],
        demo_rows["dimension"],
        demo_rows["key"],
        demo_rows["users"],
        strict=True,
    ):
        if (account_key, code) != previous:
            previous = (account_key, code)
            per_dimension = demographics.setdefault(audience(account_key, code), {})
        # int(): an engine may hand a count back as a decimal (a sum does, on DuckDB).
        per_dimension.setdefault(dimension, []).append((key, int(users)))
    return counts, prepared


def _catalogue(backend: Backend, used: dict[str, ir.Table], levels: ir.Table) -> Catalogue:
    interests = used["interests"]
    joined = interests.join(levels, interests.interest_id == levels.interest_id)
    named = backend.to_arrow(
        joined.filter(joined.level <= 2).select(
            interests.interest_id, interests.name, interests.parent_id, levels.level
        )
    ).to_pylist()
    catalogue = Catalogue(
        interest_names={row["interest_id"]: row["name"] for row in named},
        categories={row["interest_id"] for row in named if row["level"] == 1},
        parent_of_subcategory={
            row["interest_id"]: row["parent_id"] for row in named if row["level"] == 2
        },
    )
    if "metros" in used:
        for row in backend.to_arrow(used["metros"]).to_pylist():
            catalogue.metro_names[row["metro"]] = row["name"]
    return catalogue


def _account_records(backend: Backend, used: ir.Table) -> list[AccountRecord]:
    """Every used ad account, sorted by id (each gets its documents), with what the input says
    of it: its name, and country and currency where the table has such columns."""
    details = [name for name in ACCOUNT_DETAILS if name in used.columns]
    rows = backend.to_arrow(used.select("ad_account_id", *details)).to_pylist()
    records = [
        AccountRecord(str(row["ad_account_id"]), **{name: row[name] for name in details})
        for row in rows
    ]
    return sorted(records, key=lambda record: record.ad_account_id)


def _write_snapshot(
    path: Path,
    documents: list[Document],
    accounts: list[AccountRecord],
    catalogue: Catalogue,
    report: dict[str, Any],
) -> None:
    """Write a complete snapshot file; it becomes visible only when the store publishes it."""
    document_rows = sorted(documents, key=lambda d: (d.ad_account_id, d.insight_type))
    tables = {
        # each account with what the input says of it, so what the ad accounts' operations list
        # agrees with these documents (a snapshot without these columns is served with ids alone)
        "accounts": columns.table(
            {
                "ad_account_id": columns.string_column([a.ad_account_id for a in accounts]),
                **{
                    detail: pa.array([getattr(a, detail) for a in accounts], pa.string())
                    for detail in ACCOUNT_DETAILS
                },
            }
        ),
        "level1_interests": columns.table(
            {"interest_id": columns.string_column(sorted(catalogue.categories))}
        ),
        "audiences": columns.table(
            {
                "ad_account_id": columns.string_column([d.ad_account_id for d in document_rows]),
                "insight_type": columns.string_column([d.insight_type for d in document_rows]),
                "size": columns.int64_column([d.size for d in document_rows]),
                "qualifies": columns.bool_column([d.reportable for d in document_rows]),
            }
        ),
        "documents": columns.table(
            {
                "ad_account_id": columns.string_column([d.ad_account_id for d in document_rows]),
                "insight_type": columns.string_column([d.insight_type for d in document_rows]),
                "body": columns.binary_column([d.body for d in document_rows]),
            }
        ),
        "category_items": _category_items_table(document_rows),
        "meta": columns.table(
            {
                "key": columns.string_column(["date", "build_id", "report"]),
                "value": columns.string_column(
                    [report["date"], report["build_id"], json.dumps(report, sort_keys=True)]
                ),
            }
        ),
    }
    write_snapshot_file(path, tables)


def _category_items_table(documents: list[Document]) -> pa.Table:
    accounts, kinds, categories, bodies = [], [], [], []
    for document in documents:
        for category_id, body in sorted(document.category_items.items()):
            accounts.append(document.ad_account_id)
            kinds.append(document.insight_type)
            categories.append(category_id)
            bodies.append(body)
    return columns.table(
        {
            "ad_account_id": columns.string_column(accounts),
            "insight_type": columns.string_column(kinds),
            "category_id": columns.string_column(categories),
            "body": columns.binary_column(bodies),
        }
    )
