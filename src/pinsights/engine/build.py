"""``pinsights build``: from a dataset to published snapshots, as the steps data flows through.

```
read ─► validate ─► quarantine ─┬─► (each date) facts ─► memberships ─► counts ─► documents ─► publish
 (steps/check.py)               │    (steps/counts.py ..................)  (steps/documents.py)
                                └─ dates to build (steps/dates.py)
```

The input is read and checked once, whatever the number of dates; each date is then built and
published before the next. Each step owns the intermediate tables it makes (a
:class:`~pinsights.engine.steps.scope.Scope`) and frees them once their last reader ran: the pins
after the check, a date's facts after its memberships, its memberships and demographic tables
after its counts, the checked events and users on the last date. The documents are written
partly while the engine still counts: :class:`~pinsights.engine.steps.counts.Counting` runs the
demographic counts on a second thread while the interest part of every document is written.

Nothing is published unless every step of a date succeeded; the quarantine and the build report
are written even for a build that fails on bad input, because that is when they are needed most.

Publishing is handed in as a :class:`~pinsights.engine.steps.publish.Publisher` (the store
implements it, :mod:`pinsights.store.publish`, which is also where ``pinsights build`` starts): the
store sits above the engine, so the engine never imports it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pinsights.data.sources import UrlPath
from pinsights.engine.backend import Backend, BackendError
from pinsights.engine.documents import P_KEY, DocumentAssembler
from pinsights.engine.dp import step as dp_step
from pinsights.engine.dp.budget import BudgetExceededError, check_budget
from pinsights.engine.dp.ledger import Ledger, LedgerError
from pinsights.engine.dp.release import noisy_counts
from pinsights.engine.duckdb.backend import DuckDBBackend
from pinsights.engine.refresh import delta, window
from pinsights.engine.refresh.check import Refresh
from pinsights.engine.semantics import window_bounds
from pinsights.engine.settings import BuildSettings
from pinsights.engine.steps import BuildError, check, counts, documents
from pinsights.engine.steps.check import Checked
from pinsights.engine.steps.dates import dates_to_build
from pinsights.engine.steps.publish import (
    Publisher,
    PublishError,
    SnapshotContents,
    report_name,
)
from pinsights.engine.steps.run import Run, new_build_id
from pinsights.engine.steps.scope import Scope

__all__ = ["BuildError", "build"]


def build(
    settings: BuildSettings,
    publisher: Publisher,
    *,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the snapshots ``settings`` ask for and publish them with ``publisher``; the report.

    With several dates the input is read and checked once, each date is published as soon as it
    is built, and the report is ``{"build_id", "published", "dates", "reports": [one per date]}``.

    Raises :class:`BuildError` (nothing published) for a missing table or column, too many bad
    rows, no valid event to date the snapshot by, a date the store would not retain, or a store
    held by another build. Its ``__cause__`` is the publisher's error when the publisher refused.
    """
    problem = settings.problem()
    if problem is not None:
        raise BuildError(problem)
    run = Run(settings=settings, build_id=new_build_id(), on_step=on_step)
    try:
        with publisher.lock() as cleaned:
            publisher.check_retention(settings.requested_dates(), settings.retain)  # before work
            if settings.privacy_mode == "dp":  # before any work too; again once accounts are known
                ledger = Ledger(publisher.state_directory())
                check_budget(ledger, settings.requested_dates(), settings.dp)
            try:
                reports = _build_locked(publisher, run, cleaned)
            except Exception as error:
                with contextlib.suppress(OSError):  # the report must not hide the error
                    _write_failure_report(publisher, run, str(error) or type(error).__name__)
                if run.published and isinstance(error, BuildError | PublishError | BackendError):
                    done = ", ".join(run.published)
                    raise BuildError(f"{error} (published before the failure: {done})") from error
                raise
    except (PublishError, BackendError, BudgetExceededError, LedgerError) as error:
        raise BuildError(str(error)) from error
    if len(reports) == 1:
        return reports[0]
    return {
        "build_id": run.build_id,
        "published": True,
        "dates": [report["date"] for report in reports],
        "reports": reports,
    }


def start_backend(settings: BuildSettings, temp_directory: Path) -> Backend:
    """The engine ``settings`` name, started; DuckDB spills into ``temp_directory``.

    Spark is an optional extra: its package is imported only when it is asked for.
    """
    if settings.engine == "duckdb":
        return DuckDBBackend(
            threads=settings.duckdb_threads,
            memory_limit=settings.memory_limit_in_effect,
            temp_directory=temp_directory,
        )
    if settings.engine == "spark":
        from pinsights.engine.spark.backend import SparkBackend

        return SparkBackend.start(
            settings.spark,
            memory_limit=settings.memory_limit_given,
            data_dir=settings.data_dir,
        )
    raise ValueError(f"unknown engine {settings.engine!r}: this build knows 'duckdb' and 'spark'")


def start_refresh(settings: BuildSettings, publisher: Publisher, build_id: str) -> Refresh:
    """The check step with the store's refresh state (docs/engine.md, "Incremental refresh"):
    kept with a local dataset, on either engine (the same files, written and read alike); Spark
    with a dataset it reaches by URL runs the plain check and leaves the state alone (still right for DuckDB's next build), but with ``--full``, which asks for
    the state to be rewritten: it cannot write one there, so it drops it."""
    if settings.refresh == "off":
        return Refresh(previous_root=None, staging=None, reason="--refresh off")
    spark = settings.engine != "duckdb"
    if spark and isinstance(settings.data_dir, UrlPath):
        why = "the Spark engine keeps no state of a dataset it reads by URL"
        if drops_state(settings):
            why += "; --full: the store's refresh state is dropped"
        return Refresh(previous_root=None, staging=None, reason=why)
    # Counts by deltas (and a window part kept) for the default date (the latest valid day) in
    # the exact mode: docs/engine.md, "Counting by deltas".
    unwindowed = ""  # why not: refresh.counts_reason
    if settings.privacy_mode != "exact":
        unwindowed = "--privacy dp: counts by deltas are for the exact mode"
    elif settings.requested_dates():
        unwindowed = "a requested --date/--dates: counts by deltas are for the default date"
    return Refresh(
        previous_root=publisher.refresh_state(),
        staging=publisher.refresh_staging(build_id),
        forced_full=settings.refresh == "full",
        window_days=None if unwindowed else settings.window_days,
        counts_reason=unwindowed,
    )


def drops_state(settings: BuildSettings) -> bool:
    """``--full`` asks for the state to be rewritten: a build that cannot write one (Spark on a
    dataset it reads by URL) forgets it once its build published, so no later build refreshes
    from it."""
    return (
        settings.engine != "duckdb"
        and settings.refresh == "full"
        and isinstance(settings.data_dir, UrlPath)
    )


def _write_failure_report(publisher: Publisher, run: Run, message: str) -> None:
    """Written under the build lock, so no other build can clean its temporary file away."""
    publisher.write_report(
        run.build_id,
        {
            "build_id": run.build_id,
            "published": False,
            "published_dates": run.published,
            "error": message,
            "engine": run.settings.engine,
            "tables": run.tables,
            "refresh": run.refresh,
            "timings": run.timings,
            **run.performance(),
        },
    )


def _build_locked(publisher: Publisher, run: Run, cleaned: list[str]) -> list[dict[str, Any]]:
    """Read and check the input once, then build and publish each date (oldest first)."""
    settings = run.settings
    # The engine spills here beyond its memory limit: the publisher's disk, which the next
    # build cleans up if this one is killed.
    spill = publisher.spill_directory(run.build_id)
    refresh: Refresh | None = None
    try:
        backend = start_backend(settings, spill)
    except ValueError as error:
        raise BuildError(str(error)) from error
    try:
        refresh = start_refresh(settings, publisher, run.build_id)
        with run.step("read"):
            raw = refresh.read(backend, settings.data_dir)
        with run.step("validate"):
            checked = refresh.validate(backend, raw)
        run.refresh = refresh.summary()
        with run.step("quarantine"):
            run.tables, rows, failures = refresh.quarantine(
                backend, checked, settings.max_bad_fraction
            )
            publisher.publish_quarantine(run.build_id, rows)
            if failures:
                raise check.too_many_bad(failures, settings.max_bad_fraction)
        read = sum(stats["read"] for stats in run.tables.values())
        used_rows = sum(stats["used"] for stats in run.tables.values())
        run.count("validate", read, used_rows)
        run.count("quarantine", read, read - used_rows)
        checked.free_pins()
        dates = (
            [refresh.delta_date(backend, checked.used["events"])]
            if refresh.delta
            else dates_to_build(backend, settings, checked.used["events"])
        )
        publisher.check_retention(dates, settings.retain)
        shared_timings = dict(run.timings)
        reports = []
        for number, date in enumerate(dates, start=1):
            run.timings = dict(shared_timings)
            last = number == len(dates)
            reports.append(
                _build_date(backend, publisher, run, checked, date, cleaned, refresh, last=last)
            )
            run.published.append(date.isoformat())
        checked.scope.close()
        if refresh.new_state is not None:
            publisher.publish_refresh_state(refresh.new_state.root)
        elif drops_state(settings):
            publisher.drop_refresh_state()
        return reports
    finally:
        backend.close()
        if refresh is not None:
            refresh.discard()
        shutil.rmtree(spill, ignore_errors=True)


def _build_date(
    backend: Backend,
    publisher: Publisher,
    run: Run,
    checked: Checked,
    date: dt.date,
    cleaned: list[str],
    refresh: Refresh,
    *,
    last: bool = True,
) -> dict[str, Any]:
    """Compute and publish the snapshot of one date from the checked input; its report.

    On the ``last`` date the checked events and users are freed as soon as their last reader ran
    too: the documents and the snapshot file are assembled in the memory the counts no longer
    need.
    """
    settings = run.settings
    dp = settings.privacy_mode == "dp"
    start, end = window_bounds(date, settings.window_days)
    events_used = run.tables["events"]["used"]
    windowed = refresh.window_days is not None and refresh.staging is not None
    with Scope(backend) as made:
        window_facts = window_interests = None
        digests: dict[str, str] = {}
        carried: delta.Delta | None = None
        with run.step("facts"):
            if refresh.delta:  # the state's window part and the new files' events
                assert refresh.opened is not None
                carried = delta.carry(
                    backend, refresh.opened, checked.used["events"], checked.keys.levels, start, end
                )
            elif windowed:  # kept for the next build: each fact's latest day
                window_facts = made.materialize(
                    "window_facts", window.window_facts(checked.used["events"], start, end)
                )
                # Read once (the memberships), from the kept window facts: not materialised.
                facts = window.facts_of(window_facts)
            else:
                facts = counts.facts(made, checked, start, end)
        facts_rows = (
            carried.rows["facts"]
            if carried is not None
            else backend.rows(facts if window_facts is None else window_facts)  # row for row
        )
        run.count("facts", events_used, facts_rows)
        with run.step("memberships"):
            if carried is None:
                if windowed:
                    window_interests = made.materialize(
                        "window_interests",
                        window.window_interests(
                            checked.used["events"], checked.keys.levels, start, end
                        ),
                    )
                members, interests_of_users = counts.memberships(
                    made,
                    checked,
                    facts,
                    start,
                    end,
                    caps=settings.dp.caps if dp else None,
                    interests=(
                        None if window_interests is None else window.interests_of(window_interests)
                    ),
                )
                if window_facts is None:
                    made.free(facts)
                if window_facts is not None and window_interests is not None:
                    assert refresh.staging is not None
                    digests = window.save_reduced(
                        backend,
                        refresh.staging,
                        facts=window_facts,
                        interests=window_interests,
                    )
                    made.free(window_facts, window_interests)
            if last:
                checked.free_events()
        member_rows = (
            carried.rows["members"]
            if carried is not None
            else backend.rows(members) + backend.rows(interests_of_users)
        )
        run.count("memberships", facts_rows + events_used, member_rows)
        with run.step("counts"):
            names = documents.catalogue(backend, checked)
            account_records = documents.accounts(backend, checked)
            accounts = [str(record["ad_account_id"]) for record in account_records]
            rules = settings.privacy()
            privacy: dict[str, object] = {"mode": "exact"}
            if dp:
                release, release_key = dp_step.charge_release(
                    publisher.state_directory(), date, run.build_id, accounts, settings.dp
                )
                privacy = dp_step.privacy_summary(release, settings.dp)
                domain = dp_step.domain_of(names)
                parts = dp_step.engine_part_counts(
                    made,
                    members,
                    interests_of_users,
                    checked.used["users"],
                    checked.keys.accounts,
                    checked.keys.interests,
                    domain,
                    accounts,
                )
            elif carried is not None:
                with counts.Counting(
                    made, rules, None, None, checked, counted=carried.counted
                ) as counting:
                    assembler = documents.prepare(counting.counts, names, rules, date, accounts)
                    complete = counting.finish()
                assert refresh.staging is not None
                digests = delta.save_carried(backend, refresh.staging, start, carried)
                refresh.keep_window(backend, date, start, digests)
            else:
                with counts.Counting(made, rules, members, interests_of_users, checked) as counting:
                    # The interest part of every document is written while the engine counts.
                    assembler = documents.prepare(counting.counts, names, rules, date, accounts)
                    complete = counting.finish()
                if window_facts is not None and window_interests is not None:
                    assert counting.demographic_counted is not None and refresh.staging
                    digests |= window.save_counted(
                        backend,
                        refresh.staging,
                        members=members,
                        interest_counted=counting.interest_counted,
                        demographic_counted=counting.demographic_counted,
                    )
                    refresh.keep_window(backend, date, start, digests)
            made.close()
            if last:
                checked.free_users()
    if dp:
        with run.step("noise"):
            complete = noisy_counts(parts, domain, settings.dp, rules, release_key, accounts)
            assembler = DocumentAssembler(complete, names, rules, date.isoformat())
    count_rows = counts.count_rows(complete)
    run.count("counts", member_rows, count_rows)
    with run.step("documents"):
        written = documents.write(assembler, accounts)
    run.count("documents", count_rows, len(written))
    report = {
        "build_id": run.build_id,
        "published": True,
        "date": date.isoformat(),
        "window": {
            "start": start.date().isoformat(),
            "end": date.isoformat(),
            "days": settings.window_days,
        },
        "engine": backend.name,
        "tables": run.tables,
        "audiences": {
            "accounts": len(accounts),
            "documents": len(written),
            "reportable": sum(1 for d in written if d.reportable),
            "pinterest_total_audience": complete.sizes.get(P_KEY, 0),
        },
        "options": {
            "window_days": settings.window_days,
            "min_audience_size": settings.min_audience_size,
            "min_cell_size": settings.min_cell_size,
            "max_subcategories": settings.max_subcategories,
            "retain": settings.retain,
            "max_bad_fraction": settings.max_bad_fraction,
        },
        "privacy": privacy,
        "refresh": run.refresh,
        "cleaned": cleaned,
        "timings": run.timings,
    }
    with run.step("publish"):
        contents = SnapshotContents(date, written, account_records, names.categories, report)
        publisher.publish_snapshot(contents, build_id=run.build_id, retain=settings.retain)
    run.count("publish", len(written), len(written))
    report["timings"] = run.timings
    report.update(run.performance())
    publisher.write_report(report_name(run.build_id, date), report)
    return report
