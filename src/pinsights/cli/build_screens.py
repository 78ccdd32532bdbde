"""What `pinsights build` and `pinsights quarantine` show a person at a terminal (stderr).

Kept apart from the build so that the build stays a function returning a report, and the CLI a few
lines: progress bars, summaries and tables live here. What comes from the input data (a quarantined
line, its file's name) is shown literally (``cli/literal.py``): never as Rich markup, control
characters escaped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pinsights.cli.literal import cell
from pinsights.engine.steps import STEPS
from pinsights.store.quarantine import QuarantinedRow

stderr = Console(stderr=True)


@contextmanager
def build_progress(enabled: bool) -> Iterator[Any]:
    """A step-by-step progress bar on stderr; yields the build's ``on_step`` callback."""
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("[bold]build[/] {task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
    )
    with progress:
        task = progress.add_task("start", total=len(STEPS))
        seen: list[str] = []

        def on_step(name: str) -> None:
            if seen:
                progress.advance(task)
            seen.append(name)
            progress.update(task, description=name)

        yield on_step
        progress.update(task, completed=len(STEPS), description="done")


def print_build_summary(report: dict[str, Any]) -> None:
    table = Table(title=f"snapshot {report['date']} published", title_justify="left")
    for column in ("table", "read", "used", "quarantined"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, stats in report["tables"].items():
        rules = ", ".join(f"{rule} {n:,}" for rule, n in stats["quarantined"].items()) or "0"
        table.add_row(name, f"{stats['read']:,}", f"{stats['used']:,}", rules)
    stderr.print(table)
    audiences = report["audiences"]
    window = report["window"]
    stderr.print(
        f"window {window['start']} … {window['end']} · {audiences['accounts']:,} ad accounts · "
        f"{audiences['documents']:,} documents ({audiences['reportable']:,} above the privacy "
        f"threshold) · Pinterest total audience {audiences['pinterest_total_audience']:,}"
    )
    events = report["tables"].get("events", {}).get("read", 0)
    stderr.print(
        f"built in {report['seconds']:.1f} s · {events:,} events · "
        f"{report['events_per_second']:,} events/s · peak memory "
        f"{report['peak_rss_bytes'] / 2**30:.2f} GiB"
    )


def quarantine_summary(rows: list[QuarantinedRow]) -> dict[str, dict[str, int]]:
    counts: Counter[tuple[str, str]] = Counter((row.table, row.rule) for row in rows)
    summary: dict[str, dict[str, int]] = {}
    for (table, rule), n in sorted(counts.items()):
        summary.setdefault(table, {})[rule] = n
    return summary


def print_quarantine(rows: list[QuarantinedRow], sample: int) -> None:
    if not rows:
        stderr.print("the quarantine is empty: the last build used every row")
        return
    summary = Table(title="quarantined rows (last build)", title_justify="left")
    for column in ("table", "rule", "rows"):
        summary.add_column(column, justify="right" if column == "rows" else "left")
    for table, rules in quarantine_summary(rows).items():
        for rule, n in rules.items():
            summary.add_row(cell(table), cell(rule), f"{n:,}")
    stderr.print(summary)
    examples = Table(title=f"sample (up to {sample} per table and rule)", title_justify="left")
    for column in ("table", "rule", "source file", "line", "row"):
        examples.add_column(column, overflow="fold")
    shown: Counter[tuple[str, str]] = Counter()
    for row in rows:
        if shown[(row.table, row.rule)] >= sample:
            continue
        shown[(row.table, row.rule)] += 1
        line = "" if row.line is None else str(row.line)
        examples.add_row(
            cell(row.table), cell(row.rule), cell(row.source_file), line, cell(row.text)
        )
    stderr.print(examples)
