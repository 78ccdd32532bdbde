"""How the suite runs on several processes (pytest-xdist): what runs together, what first.

``make test`` (``TEST_WORKERS=3``) runs ``pytest -n 3 --dist loadscope``, with the scheduler
below: each worker takes the next unit of work as soon as it is nearly done with its own. Each worker has its
own session fixtures (a SparkSession, the generated platform, servers on ports the system gives).
A unit is a whole test module, so its module fixtures (a built store, a browser, a server) are
made once, as in a single-process run; except the modules in ``SPLIT``, whose tests share nothing
costlier than a session fixture and are a unit each: test_spark.py alone is a third of the
suite's time, test_refresh.py's tests take 20-75 s each.

Units are handed out costliest first (``COSTS``, measured): a long test that started while the
other worker was about to finish would leave that worker idle for its whole length. A run on one
process (``pytest tests/test_x.py``) keeps pytest's own order: this changes nothing there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Modules whose tests are each a unit of their own.
SPLIT = frozenset({"test_spark.py", "test_refresh.py"})

#: Seconds a unit takes, about (the 2026-12-07 fresh-clone run's --durations, CI17): a module
#: by its file name (its tests together), a test of a SPLIT module by ``file::function`` (each
#: parameter alike). Only the costly ones: the rest go after them in their usual order. A stale
#: figure costs time, never a result.
COSTS: dict[str, float] = {
    "test_spark.py::test_a_local_build_records_its_class_archive_once_and_later_builds_start_from_it": 171,
    "test_spark.py::test_a_damaged_class_archive_is_ignored_and_the_build_loads_classes_as_usual": 54,
    "test_spark.py::test_spark_publishes_the_same_bytes_as_duckdb_on_random_platforms": 208,
    "test_spark.py::test_build_on_a_standalone_cluster_publishes_the_same_documents": 96,
    "test_engine_reference.py": 130,
    "test_portability.py": 80,
    "test_refresh.py::test_duckdb_and_spark_builds_alternating_day_by_day_publish_what_a_full_build_publishes": 174,
    "test_refresh.py::test_incremental_builds_publish_what_full_builds_publish": 67,
    # Added 2026-12-07 (session 10): three Spark builds on the session's JVM, ~50 s at load 8.
    "test_refresh.py::test_incremental_spark_builds_publish_what_full_builds_publish": 90,
    "test_refresh.py::test_counts_carried_by_deltas_are_a_full_builds_and_say_when_they_are_not": 40,
    "test_refresh.py::test_the_pins_check_is_kept_while_pins_accounts_and_interests_are_the_same_bytes": 30,
    "test_refresh.py::test_an_incremental_build_killed_while_publishing_leaves_a_usable_store": 20,
    "test_dp_build.py": 80,
    "test_store_hygiene.py": 120,
    "test_dashboard.py": 70,
    "test_cli_build.py": 60,
    "test_server_pinterest_client.py": 45,
    "test_spark.py::test_a_dataset_behind_a_url_builds_as_from_its_local_path": 73,
    "test_spark.py::test_a_viewfs_url_on_the_command_line_is_listed_and_read_through_hadoop": 50,
    "test_spark.py::test_a_jvm_out_of_memory_says_what_to_raise": 31,
    "test_input_fuzz.py": 20,
    # Not in CI17's list, but each a minute or more of CPU in a whole run (2026-12-07, per-test
    # CPU of the worker and its subprocesses): CLI subprocesses, each ~2.5 CPU s for a tiny build.
    "test_cli_errors.py": 110,
    "test_input_formats.py": 68,
    "test_input_contract.py": 58,
    "test_engine_edge_cases.py": 47,
    "test_store_deep.py": 30,
    "test_server_contract.py": 20,
    "test_spark.py::test_spark_equals_duckdb_on_a_messy_export": 56,
    "test_spark.py::test_spark_publishes_the_same_bytes_on_generated_data": 49,
    "test_spark.py::test_spark_reads_csv_quoting_and_keeps_quarantined_times_as_duckdb": 44,
    "test_spark.py::test_spark_reads_account_details_as_duckdb_does": 38,
    "test_spark.py::test_a_date_whose_window_holds_no_event_is_refused_on_spark_too": 30,
}

#: A unit not in COSTS: about this much a test.
SECONDS_A_TEST = 0.5


def distributed(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker (the controller collects nothing)."""
    return hasattr(config, "workerinput")


def shared_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary directory of this run that every worker sees (xdist's documented pattern:
    the parent of a worker's base temporary directory); on one process, its own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def unit_of(nodeid: str) -> str:
    """The unit a test belongs to: its module, or itself in a SPLIT module."""
    module = nodeid.split("::", 1)[0]
    return nodeid if Path(module).name in SPLIT else module


def cost_of(unit: str, items: list[pytest.Item]) -> float:
    module = Path(unit.split("::", 1)[0]).name
    if module in SPLIT:
        function = getattr(items[0], "originalname", items[0].name)
        return COSTS.get(f"{module}::{function}", SECONDS_A_TEST)
    return COSTS.get(module, SECONDS_A_TEST * len(items))


def order_costliest_first(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker: the costliest units first, each unit's tests together and in pytest's order.

    Every worker collects the same tests and orders them alike (xdist checks that), and the
    scheduler queues units in that order.
    """
    if not distributed(config):
        return
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(unit_of(item.nodeid), []).append(item)
    ordered = sorted(units.items(), key=lambda entry: -cost_of(*entry))  # stable: ties keep order
    items[:] = [item for _, members in ordered for item in members]


def module_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's scope scheduling with our units: a module, or a test of a SPLIT module."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    config.option.loadscopereorder = False  # keep the workers' order (costliest first)
    return ModuleScheduling(config, log)  # type: ignore[arg-type]
