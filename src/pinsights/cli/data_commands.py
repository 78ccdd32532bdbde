"""The commands that make and look after data: ``generate``, ``build``, ``quarantine``, ``store``.

Each parses its options and calls the module that does the work (the generator, the build, the
store); what a person sees at a terminal is in ``build_screens.py``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pinsights.cli.literal import json_text, literal
from pinsights.cli.options import STORE_OPTION, calendar_date

if TYPE_CHECKING:
    from pinsights.engine.settings import BuildSettings


def generate_command(
    out_dir: Path = typer.Argument(..., help="Directory to write the dataset into."),
    users: int = typer.Option(20_000, "--users", min=1, help="Number of users."),
    accounts: int = typer.Option(50, "--accounts", min=1, help="Number of ad accounts."),
    days: int = typer.Option(30, "--days", min=1, help="UTC days of events."),
    end_date: datetime.datetime | None = typer.Option(
        None, "--end-date", formats=["%Y-%m-%d"], help="Last day of events (default: yesterday)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same bytes."),
    events: int | None = typer.Option(
        None, "--events", min=1, help="Number of events (default: 50 per user)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Write into a non-empty OUT_DIR, replacing generated tables."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write a realistic synthetic platform (users, advertisers, pins, events) in the input
    contract, ready for `pinsights build --data OUT_DIR`."""
    from rich.console import Console

    from pinsights.cli.errors import CommandError, ExitStatus
    from pinsights.synthetic.generate import generate

    if out_dir.exists() and not out_dir.is_dir():
        raise CommandError(f"{out_dir} is a file, not a directory", ExitStatus.UNUSABLE_PATH)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise CommandError(
            f"{out_dir} is not empty; choose another directory, or pass --force to "
            "replace the generated tables in it (nothing else is deleted)",
            ExitStatus.USAGE,
        )
    summary = generate(
        out_dir,
        users=users,
        accounts=accounts,
        days=days,
        end_date=end_date.date() if end_date else None,
        seed=seed,
        events=events,
        progress=Console(stderr=True).is_terminal,
    )
    if as_json:
        typer.echo(json_text(summary.to_dict(), indent=2))
        return
    typer.echo(
        f"Wrote {summary.events:,} events from {summary.start_date} to {summary.end_date} "
        f"for {summary.users:,} users, {summary.pins:,} pins and {summary.accounts:,} ad accounts "
        f"to {summary.out_dir}"
    )
    typer.echo(f"Largest ad accounts: {', '.join(summary.ad_account_ids[:5])}")
    typer.echo(f"Next: pinsights build --data {summary.out_dir}")


def _data_path(text: str | Path) -> Path:
    """``--data`` as written: a URL stays a URL (a ``Path`` would fold its ``//``); typed as a
    path, which is what it is for every engine but Spark's."""
    from pinsights.data.sources import data_path

    return text if isinstance(text, Path) else data_path(text)  # type: ignore[return-value]


def _engine(name: str) -> str:
    from pinsights.engine.settings import ENGINES

    if name not in ENGINES:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(ENGINES)}")
    return name


def _memory_limit(text: str | None) -> str | None:
    from pinsights.engine.memory import MIN_MEMORY_LIMIT, TOO_SMALL, memory_bytes

    size = None if text is None else memory_bytes(text)
    if text is not None and size is None:
        raise typer.BadParameter(
            f"{text!r} is not a size: write e.g. 8GB, 7.5GiB, 512MB, 50% or a number of bytes"
        )
    if size is not None and size < MIN_MEMORY_LIMIT:
        raise typer.BadParameter(f"{text!r} {TOO_SMALL}")
    return text


def _spark_memory_limit(settings: BuildSettings) -> None:
    """--memory-limit with --engine spark: too small for Spark's driver is a bad command line
    (exit 2; in PINSIGHTS_MEMORY_LIMIT the build fails, exit 1); on a cluster it bounds only
    this machine's process, the driver, which is said (docs/spark.md)."""
    from pinsights.engine.spark.session import check_memory_limit

    spark, memory_limit = settings.spark, settings.memory_limit
    conf = dict(spark.conf)
    if memory_limit is not None and "spark.driver.memory" not in conf:
        try:
            check_memory_limit(memory_limit)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--memory-limit") from None
    given = settings.memory_limit_given
    if given and not spark.resolved_master().startswith("local"):
        typer.echo(
            f"pinsights: warning: the memory limit {given} bounds this machine's build process"
            " (the driver) only, not the executors: size them with --spark-conf"
            " spark.executor.memory=…",
            err=True,
        )


def _date_range(text: str | None) -> list[datetime.date]:
    """``D1..D2`` (both included) as a list of dates."""
    if text is None:
        return []
    first, separator, last = text.partition("..")
    try:
        start, end = datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
        if not separator:
            raise ValueError(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a range YYYY-MM-DD..YYYY-MM-DD") from None
    if start > end:
        raise typer.BadParameter(f"{text!r} ends before it starts")
    return [start + datetime.timedelta(days=n) for n in range((end - start).days + 1)]


def _privacy_mode(value: str) -> str:
    if value not in ("exact", "dp"):
        raise typer.BadParameter(f"{value!r} is not one of exact, dp")
    return value


def build(
    data: Path = typer.Option(
        ...,
        "--data",
        parser=_data_path,
        help="Dataset directory (SPEC §2); with --engine spark also a URL of any file system"
        " Spark reads (hdfs://…, s3a://…, file:///…).",
        metavar="DIR|URL",
    ),
    store: Path = STORE_OPTION,
    date: list[datetime.date] | None = typer.Option(
        None,
        "--date",
        parser=calendar_date,
        metavar="YYYY-MM-DD",
        help="Generation date D (default: last event day); repeat it to build several.",
    ),
    dates: str | None = typer.Option(
        None,
        "--dates",
        metavar="D1..D2",
        help="Build every date of D1..D2 (both included), reading the data once.",
    ),
    window_days: int = typer.Option(30, "--window-days", min=1, help="Days in the window."),
    engine: str = typer.Option(
        "duckdb", "--engine", metavar="[duckdb|spark]", callback=_engine, help="Engine to run on."
    ),
    spark_master: str | None = typer.Option(
        None,
        "--spark-master",
        envvar="PINSIGHTS_SPARK_MASTER",
        help="Spark master URL: local[*] (default) or spark://HOST:7077 (standalone cluster).",
    ),
    spark_conf: list[str] = typer.Option(
        [], "--spark-conf", help="Spark setting KEY=VALUE (repeatable).", metavar="KEY=VALUE"
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Show Spark's own logs on stderr."),
    retain: int = typer.Option(30, "--retain", min=1, help="Snapshot dates kept."),
    max_bad_fraction: float = typer.Option(
        0.01, "--max-bad-fraction", min=0.0, max=1.0, help="Fail above this share of bad rows."
    ),
    min_audience_size: int = typer.Option(100, "--min-audience-size", min=1),
    min_cell_size: int = typer.Option(10, "--min-cell-size", min=1),
    max_subcategories: int = typer.Option(10, "--max-subcategories", min=0),
    memory_limit: str | None = typer.Option(
        None,
        "--memory-limit",
        metavar="SIZE",
        callback=_memory_limit,
        help="Memory limit of the whole build process, e.g. 8GB (DuckDB's buffers get it less a"
        " tenth, 256 MiB-1 GiB, for the rest; Spark's driver heap about four fifths of it);"
        " beyond it the build spills to the store's disk"
        " [default: half the machine's memory, or PINSIGHTS_MEMORY_LIMIT].",
    ),
    allow_empty: bool = typer.Option(
        False,
        "--allow-empty",
        help="Publish a requested date even if its window holds no valid event (an empty"
        " snapshot); without it such a date is refused.",
    ),
    privacy: str = typer.Option(
        "exact",
        "--privacy",
        metavar="[exact|dp]",
        callback=_privacy_mode,
        help="exact counts (SPEC §3), or dp: bounded, noised, accounted per ad account"
        " (docs/privacy.md).",
    ),
    full: bool = typer.Option(
        False,
        "--full",
        help="Read and check every input file even when the store's refresh state would let"
        " the build read only new or changed event files; the state is rewritten.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Compute every insight document for a date (or several) and publish each atomically."""
    from pinsights.cli.build_screens import build_progress, print_build_summary, stderr
    from pinsights.engine.settings import BuildSettings
    from pinsights.engine.spark.session import SparkSettings, parse_conf
    from pinsights.store.publish import build as run_build

    try:
        spark = SparkSettings(spark_master, parse_conf(spark_conf), verbose)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--spark-conf") from None
    settings = BuildSettings(
        data_dir=data,
        store_dir=store,
        dates=tuple(date or []) + tuple(_date_range(dates)),
        window_days=window_days,
        engine=engine,
        spark=spark,
        retain=retain,
        max_bad_fraction=max_bad_fraction,
        min_audience_size=min_audience_size,
        min_cell_size=min_cell_size,
        max_subcategories=max_subcategories,
        memory_limit=memory_limit,
        allow_empty=allow_empty,
        privacy_mode=privacy,
        refresh="full" if full else "auto",
    )
    if engine == "spark":
        _spark_memory_limit(settings)
    with build_progress(stderr.is_terminal) as on_step:
        report = run_build(settings, on_step=on_step)
    if as_json:
        typer.echo(json_text(report, indent=2))
    else:
        for one in report.get("reports", [report]):
            print_build_summary(one)


def quarantine(
    store: Path = STORE_OPTION,
    sample: int = typer.Option(5, "--sample", min=0, help="Example rows per table and rule."),
    as_json: bool = typer.Option(False, "--json", help="Print summary and rows as JSON."),
) -> None:
    """Show the rows the last build quarantined: a summary per table and rule, and examples."""
    from pinsights.cli.build_screens import print_quarantine, quarantine_summary
    from pinsights.store import Store, StoreError
    from pinsights.store.quarantine import QUARANTINE

    if not store.is_dir():
        raise StoreError(f"no store at {store}: build one with `pinsights build --store {store}`")
    if not (store / QUARANTINE).exists():  # not "empty": no build has read any data into it yet
        raise StoreError(
            f"no build yet in {store}, so no quarantine to show: "
            f"build one with `pinsights build --data DIR --store {store}`"
        )
    rows = Store(store).quarantine_rows()
    if as_json:
        payload = {
            "summary": quarantine_summary(rows),
            "rows": [
                {
                    "table": r.table,
                    "source_file": r.source_file,
                    "line": r.line,
                    "rule": r.rule,
                    "row": r.row,
                    "text": r.text,
                }
                for r in rows
            ],
        }
        typer.echo(json_text(payload, indent=2, default=str))
    else:
        print_quarantine(rows, sample)


def store_check(
    store: Path = STORE_OPTION,
    repair: bool = typer.Option(
        True, "--repair/--no-repair", help="Repair what is safe to repair."
    ),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="Also recount the newest build from --data in full and compare every snapshot table"
        " and the quarantine with it (takes as long as a full build).",
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        parser=_data_path,
        help="With --deep: the dataset directory the newest build was built from.",
        metavar="DIR",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Verify the manifest, every snapshot file, the quarantine and the refresh state; say what
    was repaired. With --deep, recount the newest build in full and compare.

    Exit status 0 when the store is sound (after repairs), 6 when damage remains.
    """
    from pinsights.cli.errors import ExitStatus
    from pinsights.store.check import check_store

    if isinstance(data, Path):  # refused as `build` refuses it (exit status 3)
        from pinsights.data.sources import LocalTree, require_directory

        require_directory(data, LocalTree())
    if deep and data is None:
        raise typer.BadParameter(
            "--deep recounts from the input: give the dataset directory with --data DIR",
            param_hint="--deep",
        )
    if data is not None and not deep:
        raise typer.BadParameter("--data is only read with --deep", param_hint="--data")
    if deep:
        typer.echo(f"recounting the newest build of {store} from {data} in full…", err=True)
    result = check_store(store, repair=repair, deep_data=data)
    if as_json:
        typer.echo(json_text(result.to_json(), indent=2))
    else:
        for line in result.lines():
            typer.echo(literal(line))
    if result.problems:
        raise typer.Exit(int(ExitStatus.STORE_DAMAGED))


def store_drop(
    date: datetime.date = typer.Argument(
        ..., parser=calendar_date, metavar="YYYY-MM-DD", help="The snapshot date to remove."
    ),
    store: Path = STORE_OPTION,
) -> None:
    """Remove a published snapshot date: servers stop serving it at once (atomic, under the
    store's build lock, so not while a build runs: exit status 4)."""
    from pinsights.store import MANIFEST, Store, StoreError

    target = Store(store)
    if not (target.root / MANIFEST).is_file():
        raise StoreError(f"{store} holds no published snapshot: nothing to drop")
    info = target.drop(date)
    if info is None:
        held = ", ".join(i.date.isoformat() for i in target.snapshots()) or "none"
        raise typer.BadParameter(
            f"the store {store} has no snapshot for {date} (its dates: {held})",
            param_hint="DATE",
        )
    newest = target.snapshots()
    now = f"now serving {newest[0].date}" if newest else "no snapshot is left to serve"
    typer.echo(f"dropped the snapshot of {info.date} (build {info.build_id}); {now}", err=True)
