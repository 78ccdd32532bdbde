"""The store tells the truth and survives what users do to it (SPEC §4, §5): backfills, retention
refusals, builds killed at every step of publishing, two builds at once, a client registered
during a build, and `pinsights store check` finding and repairing damage.

Builds run as real `pinsights build` processes; a kill lands at an exact step through the build's
test hook (tests/processes.py), never after a sleep.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pinsights.engine.build import BuildError
from pinsights.engine.settings import BuildSettings
from pinsights.server.clients import ClientRegistry
from pinsights.store import EVERY_STEP, PUBLISH_STEPS, NotRetainedError, Store, StoreLockedError
from pinsights.store.publish import build
from pinsights.store.snapshot import WRITE_STEPS
from pinsights.synthetic.generate import generate
from tests.conftest import RunningServer, let_servers_notice, mint
from tests.processes import paused_build, pinsights

END = dt.date(2026, 10, 31)
TYPES = ("YOUR_TOTAL_AUDIENCE", "YOUR_ENGAGED_AUDIENCE", "PINTEREST_TOTAL_AUDIENCE")


def day(offset: int) -> dt.date:
    return END - dt.timedelta(days=offset)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hygiene") / "data"
    generate(out, users=1_500, accounts=4, days=8, end_date=END, seed=21, events=20_000)
    return out


def served(store_dir: Path) -> dict[tuple[str, str, str], bytes]:
    """Every document of every retained date, as a fresh reader (a new server) would serve it."""
    store = Store(store_dir)
    documents = {}
    for snapshot in store.all_snapshots():
        accounts = [r[0] for r in snapshot._cursor().execute("SELECT * FROM accounts").fetchall()]
        for account in accounts:
            for kind in TYPES:
                body = snapshot.document(account, kind)
                assert body is not None
                documents[(snapshot.date.isoformat(), account, kind)] = body
    return documents


def dates_of(store_dir: Path) -> list[dt.date]:
    return [info.date for info in Store(store_dir).snapshots()]


def check(store_dir: Path, *extra: str) -> tuple[int, dict]:
    result = pinsights("store", "check", "--store", str(store_dir), "--json", *extra)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


# --- backfill and retention ------------------------------------------------------------------


def test_backfill_newest_first_and_oldest_first_give_the_same_store(
    data: Path, tmp_path: Path
) -> None:
    newest_first, oldest_first, one_run = tmp_path / "newest", tmp_path / "oldest", tmp_path / "run"
    for offset in (0, 1, 2):
        build(BuildSettings(data_dir=data, store_dir=newest_first, date=day(offset), retain=3))
    with pytest.raises(BuildError, match="would not be kept") as refused:
        build(BuildSettings(data_dir=data, store_dir=newest_first, date=day(3), retain=3))
    assert isinstance(refused.value.__cause__, NotRetainedError)
    assert "--retain 4" in str(refused.value)
    for offset in (3, 2, 1, 0):
        build(BuildSettings(data_dir=data, store_dir=oldest_first, date=day(offset), retain=3))
    report = build(
        BuildSettings(data_dir=data, store_dir=one_run, dates=(day(2), day(0), day(1)), retain=3)
    )
    assert report["dates"] == [day(2).isoformat(), day(1).isoformat(), day(0).isoformat()]
    assert all(
        r["published"] and r["date"] == d
        for r, d in zip(report["reports"], report["dates"], strict=True)
    )

    expected = [day(0), day(1), day(2)]
    assert dates_of(newest_first) == dates_of(oldest_first) == dates_of(one_run) == expected
    assert served(newest_first) == served(oldest_first) == served(one_run)
    assert len(served(one_run)) == 3 * (4 * 3), "every account's three documents, three dates"
    for store in (newest_first, oldest_first, one_run):
        files = sorted(p.name for p in (store / "snapshots").iterdir())
        assert len(files) == 3, files  # what retention dropped is gone, nothing else is left


def test_a_date_outside_retention_is_refused_before_any_work_and_says_how_to_keep_it(
    data: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    built = pinsights(
        "build", "--data", str(data), "--store", str(store), "--dates",
        f"{day(1)}..{day(0)}", "--retain", "2", "--json",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["dates"] == [day(1).isoformat(), day(0).isoformat()]
    manifest = (store / "manifest.json").read_bytes()
    reports = sorted((store / "reports").iterdir())

    refused = pinsights(
        "build", "--data", str(data), "--store", str(store), "--date", str(day(2)),
        "--retain", "2", "--json",
    )  # fmt: skip
    assert refused.returncode == 5
    assert refused.stdout == "", "no report, so nothing can claim `published`"
    assert f"{day(2)} would not be kept" in refused.stderr
    assert "pass --retain 3" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (store / "manifest.json").read_bytes() == manifest
    assert sorted((store / "reports").iterdir()) == reports, "refused before any work"

    # A data directory that does not exist is not even looked at: the refusal comes first.
    missing = pinsights(
        "build", "--data", str(tmp_path / "nowhere"), "--store", str(store),
        "--date", str(day(5)), "--retain", "2",
    )  # fmt: skip
    assert missing.returncode == 5, missing.stderr

    kept = pinsights(
        "build", "--data", str(data), "--store", str(store), "--date", str(day(2)),
        "--retain", "3", "--json",
    )  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["published"] is True
    assert dates_of(store) == [day(0), day(1), day(2)]


def test_the_default_date_is_checked_against_retention_too(data: Path, tmp_path: Path) -> None:
    """Without --date the date is known only once the events are read; still nothing published."""
    store = tmp_path / "store"
    build(BuildSettings(data_dir=data, store_dir=store, dates=(day(-2), day(-1)), retain=2))
    with pytest.raises(BuildError, match=f"{END} would not be kept"):
        build(BuildSettings(data_dir=data, store_dir=store, retain=2))
    assert dates_of(store) == [day(-2), day(-1)]
    failed = [r for r in Store(store).reports() if not r["published"]]
    assert failed and "would not be kept" in failed[-1]["error"]


# --- killed builds ---------------------------------------------------------------------------


@pytest.mark.parametrize("step", [*WRITE_STEPS, *PUBLISH_STEPS])
def test_a_build_killed_at_each_step_of_publishing_leaves_a_store_the_next_build_cleans(
    data: Path, tmp_path: Path, step: str
) -> None:
    """SIGKILL while the snapshot file is written (the database half written, complete, the
    bodies half appended after it) and at each step of publishing it."""
    store = tmp_path / "store"
    build(BuildSettings(data_dir=data, store_dir=store, date=day(1)))
    before = served(store)

    # Rebuild the same date, so that each step leaves a different leftover behind: the temporary
    # file, the new snapshot file no manifest names yet, the old one the manifest no longer names.
    with paused_build(step, "--data", str(data), "--store", str(store), "--date", str(day(1))) as b:
        b.kill()

    assert served(store) == before, "same input, same documents, whichever file is served"
    status, findings = check(store, "--no-repair")
    # The refresh state it was writing (published after the snapshots) is a leftover too.
    state = [p for p in findings["problems"] if "-state-" in p]
    assert len(state) == 1 and "leftover of a killed build" in state[0], findings
    problems = [p for p in findings["problems"] if p not in state]
    assert status == 6 and len(problems) == 1, findings
    assert "leftover of a killed build" in problems[0]

    after = pinsights("build", "--data", str(data), "--store", str(store), "--json")
    assert after.returncode == 0, after.stderr
    cleaned = [c for c in json.loads(after.stdout)["cleaned"] if "-state-" not in c]
    assert len(cleaned) == 1 and cleaned[0].startswith("snapshots/"), cleaned
    status, findings = check(store)
    assert status == 0, findings
    assert findings["ok"] and findings["repaired"] == [] and findings["problems"] == []
    assert dates_of(store) == [day(0), day(1)]
    assert {k: v for k, v in served(store).items() if k[0] == str(day(1))} == before
    assert len(list((store / "snapshots").iterdir())) == 2


def test_a_build_takes_its_steps_in_order_and_a_live_server_serves_the_previous_snapshot_until_the_manifest_names_the_new(
    data: Path, tmp_path: Path, server_factory: Callable[..., RunningServer]
) -> None:
    """One build stopped at every step of writing and publishing its snapshot, in turn: the steps
    come in their order (the file whole before it is renamed, renamed before the manifest names
    it), and until the manifest names it a running server (no LRU: every answer read from the
    store) and a fresh reader serve the previous snapshot byte for byte, the manifest unchanged
    and the file being written a build temporary nobody reads."""
    store = tmp_path / "store"
    build(BuildSettings(data_dir=data, store_dir=store, date=day(1)))
    previous = {(account, kind): body for (_, account, kind), body in served(store).items()}
    manifest = (store / "manifest.json").read_bytes()
    server = server_factory(store, env={"PINSIGHTS_DOCUMENT_CACHE_SIZE": "0"})
    token = mint()

    def live() -> dict[tuple[str, str], bytes]:
        answers = {}
        for account, kind in previous:
            answer = server.get(
                f"/v5/ad_accounts/{account}/audience_insights",
                token,
                params={"audience_insight_type": kind},
            )
            assert answer.status_code == 200, answer.text
            answers[(account, kind)] = answer.content
        return answers

    assert live() == previous
    steps = []
    args = ("--data", str(data), "--store", str(store), "--date", str(day(0)))
    with paused_build(EVERY_STEP, *args) as running:
        step: str | None = running.announced_step
        while step is not None:
            steps.append(step)
            if PUBLISH_STEPS[-1] not in steps:  # before the manifest names the new file
                assert live() == previous, f"at {step}"
                assert (store / "manifest.json").read_bytes() == manifest, f"at {step}"
                assert dates_of(store) == [day(1)]
            if step in WRITE_STEPS:
                written = [p.name for p in (store / "snapshots").iterdir()]
                assert len(written) == 2, written
                assert sum(name.startswith(".tmp-build-") for name in written) == 1, written
            step = running.next_step()
        assert running.process.wait() == 0
    ours = [step for step in steps if step in (*WRITE_STEPS, *PUBLISH_STEPS)]
    assert ours == [*WRITE_STEPS, *PUBLISH_STEPS], steps
    assert dates_of(store) == [day(0), day(1)]
    newest = {(a, k): body for (date, a, k), body in served(store).items() if date == str(day(0))}
    let_servers_notice()  # its last stat of the manifest may be younger than the new manifest
    assert live() == newest != previous


def test_a_failure_midway_through_several_dates_says_what_was_published(
    data: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    dates = f"{day(1)}..{day(0)}"
    with paused_build(
        "after-manifest", "--data", str(data), "--store", str(store), "--dates", dates
    ) as b:
        (store / "manifest.json").write_text("{ torn")  # damage the store between the two dates
        status, stdout, stderr = b.resume()
    assert status == 3 and stdout == "", stderr
    assert f"published before the failure: {day(1)}" in stderr and "store check" in stderr
    status, findings = check(store)
    assert status == 0 and dates_of(store) == [day(1)], findings
    failed = [r for r in Store(store).reports() if not r["published"]]
    assert failed[-1]["published_dates"] == [str(day(1))]


# --- builds and other writers at the same time -----------------------------------------------


def test_two_build_processes_on_one_store_one_fails_clearly_and_the_store_stays_valid(
    data: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    args = ("--data", str(data), "--store", str(store))
    with paused_build("before-rename", *args, "--date", str(day(0))) as first:
        second = pinsights("build", *args, "--date", str(day(1)))
        assert second.returncode == 4, second.stderr
        assert "another build is running on the store" in second.stderr
        assert "Traceback" not in second.stderr
        status, _, stderr = first.resume()
    assert status == 0, stderr
    assert dates_of(store) == [day(0)]
    assert check(store)[1]["ok"]
    with Store(store).build_lock(), pytest.raises(BuildError) as raised:  # in-process too
        build(BuildSettings(data_dir=data, store_dir=store))
    assert isinstance(raised.value.__cause__, StoreLockedError)


def test_clients_add_during_a_build_is_kept(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ("--data", str(data), "--store", str(store))
    # The client registry writes a temporary file next to the manifest; one being written by a
    # live `clients add` must survive a build that starts meanwhile.
    store.mkdir()
    in_flight = store / f".tmp-clients.json.{os.getpid()}"
    in_flight.write_text("{}")
    with paused_build("after-rename", *args) as running:
        added = pinsights(
            "clients", "add", "--name", "during", "--ad-accounts", "*",
            "--store", str(store), "--json",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        status, _, stderr = running.resume()
    assert status == 0, stderr
    build(BuildSettings(data_dir=data, store_dir=store, date=day(1)))
    assert in_flight.exists(), "a build removed another writer's temporary file"
    client_id = json.loads(added.stdout)["client_id"]
    assert [c.client_id for c in ClientRegistry(store).clients()] == [client_id]
    _, findings = check(store)
    assert findings["ok"] and findings["other_temporaries"] == [in_flight.name]


# --- store check -----------------------------------------------------------------------------


def test_store_check_repairs_damage_and_says_what_it_repaired(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    build(BuildSettings(data_dir=data, store_dir=store, dates=(day(2), day(1), day(0))))
    infos = Store(store).snapshots()
    newest, middle = (store / infos[0].file), (store / infos[1].file)
    middle.write_bytes(b"not a database")
    (store / "quarantine.duckdb").write_bytes(b"garbage")

    status, findings = check(store, "--no-repair")
    assert status == 6
    assert any(f"snapshot {day(1)}" in p for p in findings["problems"])
    assert any("quarantine unreadable" in p for p in findings["problems"])
    assert middle.exists(), "--no-repair changes nothing"

    status, findings = check(store)
    assert status == 0, findings
    repaired = "\n".join(findings["repaired"])
    assert f"dropped snapshot {day(1)}" in repaired and "quarantine unreadable" in repaired
    assert dates_of(store) == [day(0), day(2)]
    assert (store / "damaged" / middle.name).read_bytes() == b"not a database"

    # An unreadable manifest is rebuilt from the snapshot files themselves.
    before = served(store)
    (store / "manifest.json").write_text("{ torn")
    broken = pinsights("build", "--data", str(data), "--store", str(store), "--date", str(day(0)))
    assert broken.returncode == 3 and "store check" in broken.stderr, broken.stderr
    status, findings = check(store)
    assert status == 0 and any("rebuilt the unreadable manifest" in r for r in findings["repaired"])
    assert served(store) == before
    assert newest.exists()
    status, findings = check(store)
    assert findings["repaired"] == [] and findings["problems"] == []


def test_store_check_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for target, message in (
        ("file", "is a file"),
        ("missing", "no store at"),
        (".", "not a pinsights store"),
    ):
        result = pinsights("store", "check", "--store", str(tmp_path / target))
        assert result.returncode == 3, (target, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
