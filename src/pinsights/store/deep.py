"""``pinsights store check --deep``: the newest build's snapshots against a full build of its inputs.

An incremental build publishes what a full build of the same inputs would (docs/engine.md,
"Incremental refresh", argues why); ``--deep`` checks it for a store, the way the property tests
check it for random ones. The newest build's options (window, thresholds, retention, the bad-row
bound) are read back from its report; a full build of the data directory with those options, the
refresh state ignored, is made in a temporary store inside this one (removed afterwards; a killed
check leaves a build temporary the next build or check removes); and every table of each of that
build's snapshots and the quarantine are compared, digest for digest (:mod:`.digest`).

A difference means something only if the inputs are the ones the snapshot was built from. The
refresh state records each event file's content digest: when the store's state belongs to the
newest build, the full build's own state says whether the event files are still those (same
contents, same number). The dimension tables are not fingerprinted by the state, so a change to
them since shows as a difference; the check says so. Snapshots of the DP mode are not recounted:
their noise is drawn once per release, and a recount would be a second release.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pinsights.data.sources import DataPath, InputError
from pinsights.engine.refresh.state import State, StateError, load_state
from pinsights.engine.settings import BuildSettings
from pinsights.engine.steps import BuildError
from pinsights.engine.steps.publish import report_name
from pinsights.store import BUILD_KIND, REPORT_DIR, SnapshotInfo, Store, StoreError, temporary_name
from pinsights.store.digest import VOLATILE, quarantine_digest, snapshot_digests
from pinsights.store.quarantine import QUARANTINE
from pinsights.store.snapshot import SnapshotFile
from pinsights.store.state import current_state

#: What differs between a store's build and its recount besides timings: the engine that ran it
#: (a Spark build recounted on DuckDB publishes the same documents), leftovers it cleaned.
DEEP_VOLATILE = VOLATILE | {"engine", "cleaned"}


@dataclass
class DeepResult:
    """What ``--deep`` compared and found; ``problems`` make the check fail."""

    build_id: str | None = None
    dates: list[str] = field(default_factory=list)
    #: ``same``: the event files are the newest build's (content digests); ``changed``; or
    #: ``unknown`` when the store keeps no refresh state of that build.
    inputs: str = "unknown"
    compared: int = 0  # digests compared
    differences: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "dates": self.dates,
            "inputs": self.inputs,
            "compared": self.compared,
            "differences": self.differences,
            "notes": self.notes,
        }


def deep_check(store: Store, data: DataPath) -> DeepResult:
    """Recount the newest build of ``store`` from ``data`` in full and compare (under the
    store's build lock: the caller holds it, so no build publishes meanwhile)."""
    result = DeepResult()
    entries = store.snapshots()
    if not entries:
        result.problems.append("--deep: no published snapshot to recount")
        return result
    build_id = max(info.build_id for info in entries)
    built = sorted((info for info in entries if info.build_id == build_id), key=lambda i: i.date)
    result.build_id, result.dates = build_id, [info.date.isoformat() for info in built]
    report = _report(store, build_id, built[0])
    if report is None:
        result.problems.append(
            f"--deep: the report of build {build_id} is missing: its options are not known"
        )
        return result
    if report.get("privacy", {}).get("mode", "exact") != "exact":
        result.notes.append("DP snapshots are not recounted: their noise is drawn once per release")
        return result
    work = store.root / temporary_name(BUILD_KIND, f"deep-{build_id}")
    try:
        recount = _full_build(report, built, data, work / "store", result)
        if recount is not None:
            _compare(store, recount, built, result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _report(store: Store, build_id: str, info: SnapshotInfo) -> dict[str, Any] | None:
    path = store.root / REPORT_DIR / f"{report_name(build_id, info.date)}.json"
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return report


def _full_build(
    report: dict[str, Any],
    built: list[SnapshotInfo],
    data: DataPath,
    target: Path,
    result: DeepResult,
) -> Store | None:
    from pinsights.store.publish import build  # the build entry point: it imports this layer

    options = report.get("options", {})
    try:
        settings = BuildSettings(
            data_dir=data,
            store_dir=target,
            dates=tuple(info.date for info in built),
            window_days=int(options["window_days"]),
            min_audience_size=int(options["min_audience_size"]),
            min_cell_size=int(options["min_cell_size"]),
            max_subcategories=int(options["max_subcategories"]),
            retain=int(options["retain"]),
            max_bad_fraction=float(options["max_bad_fraction"]),
            allow_empty=True,  # the store's build published these dates: so must the recount
            refresh="full",  # its state's fingerprints say whether the inputs are the same
        )
    except (KeyError, TypeError, ValueError) as error:
        result.problems.append(f"--deep: the report of build {result.build_id} is damaged: {error}")
        return None
    try:
        build(settings)
    except (BuildError, InputError, StoreError) as error:
        result.problems.append(f"--deep: the full build of {data} failed: {error}")
        return None
    return Store(target)


def _compare(store: Store, recount: Store, built: list[SnapshotInfo], result: DeepResult) -> None:
    result.inputs = _inputs(store, recount, result)
    recounted = {info.date: info for info in recount.snapshots()}
    for info in built:
        again = recounted.get(info.date)
        if again is None:
            result.differences.append(f"snapshot {info.date}: the full build published none")
            continue
        mine = snapshot_digests(store.root / info.file, DEEP_VOLATILE)
        theirs = snapshot_digests(recount.root / again.file, DEEP_VOLATILE)
        for table in sorted(mine.keys() | theirs.keys()):
            result.compared += 1
            if mine.get(table) != theirs.get(table):
                here, there = (_rows(d.get(table)) for d in (mine, theirs))
                which = (
                    _documents_differing(store.root / info.file, recount.root / again.file)
                    if table == "documents"
                    else ""
                )
                result.differences.append(
                    f"snapshot {info.date}, table {table}: differs from the full build"
                    f" ({here} rows here, {there} there){which}"
                )
    mine_q = quarantine_digest(store.root / QUARANTINE)
    theirs_q = quarantine_digest(recount.root / QUARANTINE)
    result.compared += 1
    if mine_q != theirs_q:
        result.differences.append(
            f"quarantine: differs from the full build's ({_rows(mine_q)} rows here,"
            f" {_rows(theirs_q)} there)"
        )
    if not result.differences:
        return
    if result.inputs == "changed":
        result.problems.append(
            "--deep: the event files changed since the snapshot was built (see the notes): the"
            " differences say nothing about the store; check against the inputs it was built from"
        )
    else:
        suffix = (
            " (the event files are the ones it was built from; a dimension table changed since"
            " would differ too)"
            if result.inputs == "same"
            else ""
        )
        result.problems += [f"--deep: {line}{suffix}" for line in result.differences]


def _inputs(store: Store, recount: Store, result: DeepResult) -> str:
    """``same``/``changed``/``unknown``: the event files now against the newest build's."""
    directory = current_state(store.root)
    if directory is None or directory.name != result.build_id:
        result.notes.append(
            "the store keeps no refresh state of its newest build: whether the event files"
            " changed since it is not known"
        )
        return "unknown"
    again = current_state(recount.root)
    try:
        kept = load_state(directory, verify=False)
        now = load_state(again, verify=False) if again is not None else None
    except StateError as error:
        result.notes.append(f"the refresh state cannot be read ({error}): inputs not compared")
        return "unknown"
    if now is None:
        return "unknown"
    before, after = _contents(kept), _contents(now)
    if before == after:
        return "same"
    gone, new = sum((before - after).values()), sum((after - before).values())
    result.notes.append(
        f"the event files changed since build {result.build_id}: {gone} of its files' contents"
        f" are no longer among them, {new} are new"
    )
    return "changed"


def _contents(state: State) -> Counter[tuple[int, str]]:
    """The event files as contents (size, digest): a file moved or renamed is the same file."""
    return Counter((r.fingerprint.size, r.fingerprint.digest) for r in state.files.values())


def _documents_differing(mine: Path, theirs: Path, shown: int = 5) -> str:
    """Which documents differ, the first few by (ad account, type): where to look first."""
    bodies = []
    for path in (mine, theirs):
        with contextlib.closing(SnapshotFile(path).connection()) as con:
            rows = con.execute("SELECT ad_account_id, insight_type, body FROM documents")
            bodies.append({(account, kind): body for account, kind, body in rows})
    keys = sorted(
        k for k in bodies[0].keys() | bodies[1].keys() if bodies[0].get(k) != bodies[1].get(k)
    )
    named = ", ".join(f"{account} {kind}" for account, kind in keys[:shown])
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"; the documents of {named}{more}"


def _rows(digest: tuple[str, int] | None) -> str:
    return "no" if digest is None else f"{digest[1]:,}"
