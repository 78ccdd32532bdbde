"""Command-line options that no other test passes on the command line: the privacy thresholds
(`--min-cell-size`, `--max-subcategories`), `quarantine --sample`, and `pinsights demo` reusing its
build unless `--fresh` is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pinsights.engine.settings import BuildSettings
from pinsights.store import Store
from pinsights.store.publish import build
from tests.datasets import snapshot_tables
from tests.processes import pinsights


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pinsights.synthetic.generate import generate

    data = tmp_path_factory.mktemp("cli-options") / "data"
    generate(data, users=800, accounts=3, days=5, seed=19)
    return data


def _documents(store: Path) -> list[dict]:
    snapshot = Store(store).latest()
    assert snapshot is not None
    return [json.loads(body) for body in snapshot_tables(snapshot.path)["documents"].values()]


def test_thresholds_on_the_command_line_are_the_builds_options(
    dataset: Path, tmp_path: Path
) -> None:
    """The command line gives the very snapshot the same options give the engine; and they bite:
    --max-subcategories 0 lists categories without any subcategory."""
    options = {"min_audience_size": 20, "min_cell_size": 3, "max_subcategories": 0}
    built = pinsights(
        "build", "--data", str(dataset), "--store", str(tmp_path / "cli"),
        "--min-audience-size", "20", "--min-cell-size", "3", "--max-subcategories", "0",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    build(BuildSettings(data_dir=dataset, store_dir=tmp_path / "api", **options))
    cli_snapshot, api_snapshot = Store(tmp_path / "cli").latest(), Store(tmp_path / "api").latest()
    assert cli_snapshot is not None and api_snapshot is not None
    assert snapshot_tables(cli_snapshot.path) == snapshot_tables(api_snapshot.path)
    categories = [c for d in _documents(tmp_path / "cli") for c in d["categories"]]
    assert categories and all(c["subcategories"] == [] for c in categories)

    build(BuildSettings(data_dir=dataset, store_dir=tmp_path / "cells", min_audience_size=20))
    cells = [c for d in _documents(tmp_path / "cells") for c in d["categories"]]
    assert any(c["subcategories"] for c in cells), "the default cap shows subcategories"
    smallest = min(
        ratio
        for document in _documents(tmp_path / "cli")
        if not document["size_is_upper_bound"]
        for ratio in [m["ratio"] * document["size"] for m in document["demographics"]["metros"]]
    )
    assert smallest >= 3 - 0.5, "no cell below --min-cell-size 3"


def _sample_rows(stderr: str, rule: str) -> int:
    """Lines of the human quarantine output naming ``rule``: one in the summary, one per example."""
    return sum(1 for line in stderr.splitlines() if rule in line)


def test_quarantine_sample_bounds_the_examples_per_table_and_rule(tmp_path: Path) -> None:
    from tests.datasets import account, event, interest, pin, platform, user, write_dataset

    tables = platform(
        interests=[interest("10", "Food")],
        ad_accounts=[account("1")],
        users=[user(1), *[user(100 + i, "17") for i in range(4)]],  # four bad age buckets
        pins=[pin(5, "1", "10")],
        events=[event(1, 5)],
    )
    write_dataset(tables, tmp_path / "data", "csv")
    store = str(tmp_path / "store")
    built = pinsights(
        "build", "--data", str(tmp_path / "data"), "--store", store, "--max-bad-fraction", "1"
    )
    assert built.returncode == 0, built.stderr
    wide = {"COLUMNS": "240"}
    shown = {
        sample: pinsights(
            "quarantine", "--store", store, *(["--sample", sample] if sample else []), **wide
        )
        for sample in ("", "0", "2", "10")
    }
    assert all(result.returncode == 0 for result in shown.values())
    assert {sample: _sample_rows(r.stderr, "bad_value") for sample, r in shown.items()} == {
        "": 1 + 4,  # the default (5) shows all four
        "0": 1,
        "2": 1 + 2,
        "10": 1 + 4,
    }
    assert "up to 2 per table and rule" in shown["2"].stderr


def test_demo_reuses_its_build_and_fresh_rebuilds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pinsights.cli import demo

    monkeypatch.setattr(demo, "DEMO_USERS", 600)  # the demo's platform, smaller
    monkeypatch.setattr(demo, "DEMO_ACCOUNTS", 3)
    first = demo.prepare(tmp_path)
    assert first.built and len(first.ad_account_ids) == 3
    snapshot = Store(first.store_dir).latest()
    assert snapshot is not None
    build_id = snapshot.info.build_id
    again = demo.prepare(tmp_path)
    assert not again.built and again.ad_account_ids == first.ad_account_ids
    assert [s.build_id for s in Store(again.store_dir).snapshots()] == [build_id]
    fresh = demo.prepare(tmp_path, fresh=True)
    assert fresh.built and fresh.ad_account_ids == first.ad_account_ids  # the same seed
    assert [s.build_id for s in Store(fresh.store_dir).snapshots()] != [build_id]
    assert len(Store(fresh.store_dir).snapshots()) == 1
