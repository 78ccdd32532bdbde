"""Rich tables for the ``pinsights insights`` and ``pinsights definitions`` commands.

A person reading insights in a terminal wants three things at a glance: how big the audience is,
which interests over-index (the affinity bar: longer and green above the platform average of 1.0,
red below it), and who the people are (one table per demographic). Everything else — the exact
numbers, the ids — is there too, but secondary.

Every string from the server (names, keys, dates, scopes) is shown literally (``cli/literal.py``):
never read as Rich markup, control characters escaped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from pinsights.cli.literal import cell, literal
from pinsights.contract import (
    AdAccount,
    AudienceDefinitionResponse,
    AudienceDemographicValue,
    AudienceInsightsResponse,
    insight_type_of_definition,
)

BAR_WIDTH = 20
#: With ``--limit``, how many subcategories of each shown category the subcategories table lists.
SUBCATEGORIES_WHEN_LIMITED = 3
T = TypeVar("T")
#: wire name -> (table title, column heading)
DEMOGRAPHIC_TITLES = {
    "ages": ("Ages", "Age"),
    "genders": ("Genders", "Gender"),
    "countries": ("Countries", "Country"),
    "metros": ("Metros", "Metro"),
    "devices": ("Devices", "Device"),
}


def _title(kind: object) -> str:
    return str(getattr(kind, "value", kind) or "audience").replace("_", " ").capitalize()


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1%}"


def _bar(value: float | None, scale: float, style: str) -> Text:
    if value is None or scale <= 0:
        return Text("")
    filled = max(1, round(min(value, scale) / scale * BAR_WIDTH)) if value > 0 else 0
    return Text("█" * filled, style=style)


def _affinity(index: float | None, scale: float) -> Text:
    """``1.52x ██████████████████`` on a scale where ``┆``/the colour change marks 1.0 (average).

    Up to the average the bar is plain; the part above it is green. An index below 1.0 is a red
    bar followed by dots up to where the average would be, so the shortfall is visible even
    without colour.
    """
    if index is None:
        return Text("-")
    text = Text(f"{index:5.2f}x ", style="bold" if index >= 1.2 else "")
    if scale <= 0:
        return text
    filled = round(min(index, scale) / scale * BAR_WIDTH)
    average = max(1, round(1.0 / scale * BAR_WIDTH))
    if index >= 1.0:
        text.append("█" * min(filled, average))
        text.append("█" * max(0, filled - average), style="green")
    else:
        text.append("█" * filled, style="red")
        text.append("·" * max(0, average - filled - 1), style="dim")
        text.append("┆", style="dim")
    return text


def _summary(account: str, response: AudienceInsightsResponse) -> Text:
    line = Text()
    line.append(literal(_title(response.type)), style="bold")
    line.append(f" of ad account {literal(account)}")
    if response.date:
        line.append(f" · snapshot {literal(response.date)}")
    line.append("\nSize: ")
    if response.size_is_upper_bound:
        line.append(f"at most {response.size:,}" if response.size is not None else "small")
        line.append(
            " — below the privacy threshold, so no categories or demographics are published",
            style="yellow",
        )
    elif response.size is not None:
        line.append(f"{response.size:,} people", style="bold")
    if response.categories:
        line.append(
            "\nShare: part of the audience (of a subcategory: part of its category's people). "
            "Affinity: the share relative to the whole platform's, 1.00x = average.",
            style="dim",
        )
    return line


def _head(items: Sequence[T], limit: int | None) -> tuple[Sequence[T], int]:
    """The first ``limit`` items (all for ``None``), and how many were left out."""
    if limit is None or len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


def _left_out(table: Table, hidden: int, what: str) -> Table:
    if hidden:
        table.caption = f"{hidden} more {what}; --limit 0 shows all"
        table.caption_justify = "left"
        table.caption_style = "dim"
    return table


def _categories_table(response: AudienceInsightsResponse, limit: int | None) -> Table | None:
    categories, hidden = _head(response.categories or [], limit)
    if not categories:
        return None
    scale = max([c.index or 0.0 for c in categories] + [1.0])
    table = Table(title="Categories", title_justify="left", highlight=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("Category")
    table.add_column("Share", justify="right")
    table.add_column("Affinity", no_wrap=True)
    for rank, category in enumerate(categories, start=1):
        table.add_row(
            str(rank), cell(category.name or category.key or "?"), _percent(category.ratio),
            _affinity(category.index, scale),
        )  # fmt: skip
    return _left_out(table, hidden, "categories")


def _subcategories_table(response: AudienceInsightsResponse, limit: int | None) -> Table | None:
    shown, _ = _head(response.categories or [], limit)
    per_category = None if limit is None else min(limit, SUBCATEGORIES_WHEN_LIMITED)
    groups = [(c, *_head(c.subcategories or [], per_category)) for c in shown if c.subcategories]
    if not groups:
        return None
    scale = max([s.index or 0.0 for _, subs, _ in groups for s in subs] + [1.0])
    table = Table(title="Subcategories", title_justify="left", highlight=False)
    table.add_column("Category / subcategory")
    table.add_column("Share", justify="right")
    table.add_column("Affinity", no_wrap=True)
    for position, (category, subcategories, _) in enumerate(groups):
        if position:
            table.add_section()
        table.add_row(cell(category.name or category.key or "?", style="bold"), "", "")
        for sub in subcategories:
            name = sub.name or sub.key or "?"
            table.add_row(cell(f"  {name}"), _percent(sub.ratio), _affinity(sub.index, scale))
    return _left_out(table, sum(hidden for _, _, hidden in groups), "subcategories of these")


def _demographic_table(
    title: str, heading: str, values: Sequence[AudienceDemographicValue], limit: int | None
) -> Table:
    values, hidden = _head(values, limit)
    scale = max([v.ratio or 0.0 for v in values] + [0.0])
    show_key = any(v.key and v.name and v.key.lower() != v.name.lower() for v in values)
    table = Table(title=title, title_justify="left", highlight=False)
    table.add_column(heading)
    if show_key:
        table.add_column("Key", style="dim")
    table.add_column("Share", justify="right")
    table.add_column("", no_wrap=True)
    for value in values:
        cells: list[RenderableType] = [cell(value.name or value.key or "?")]
        if show_key:
            cells.append(cell(value.key or ""))
        cells += [_percent(value.ratio), _bar(value.ratio, scale, "cyan")]
        table.add_row(*cells)
    return _left_out(table, hidden, title.lower())


def insights_renderable(
    account: str, response: AudienceInsightsResponse, limit: int | None = None
) -> Group:
    """Everything ``pinsights insights`` prints, as one Rich renderable.

    ``limit`` caps the rows of each table (``None``: everything); the subcategories table then shows
    at most :data:`SUBCATEGORIES_WHEN_LIMITED` subcategories of each category shown.
    """
    parts: list[RenderableType] = [_summary(account, response)]
    tables = (_categories_table(response, limit), _subcategories_table(response, limit))
    parts += [table for table in tables if table]
    demographics = response.demographics
    demographic_tables = [
        _demographic_table(title, heading, values, limit)
        for key, (title, heading) in DEMOGRAPHIC_TITLES.items()
        if (values := getattr(demographics, key, None) if demographics else None)
    ]
    if demographic_tables:
        parts.append(Columns(demographic_tables, padding=(1, 2)))
    if len(parts) == 1 and not response.size_is_upper_bound:
        parts.append(Text("No categories or demographics in this document.", style="dim"))
    spaced: list[RenderableType] = []
    for part in parts:
        spaced += [part, Text("")]
    return Group(*spaced[:-1])


def definitions_renderable(account: str, response: AudienceDefinitionResponse) -> RenderableType:
    """The audiences of an account with insights, and the ``--type`` that reads each."""
    items = response.items or []
    if not items:
        return Text(
            f"Ad account {literal(account)} has no audience large enough for insights yet.",
            style="yellow",
        )
    table = Table(
        title=cell(f"Audiences of ad account {account}", style="table.title"),
        title_justify="left",
        highlight=False,
        show_edge=False,
    )
    for column in ("Date", "Scope", "Type", "Read with --type"):
        table.add_column(column, no_wrap=True)
    for item in items:
        kind = insight_type_of_definition(item.scope, item.type)
        table.add_row(
            cell(item.date or ""),
            cell(item.scope or ""),
            cell(item.type or ""),
            kind.value if kind else "",
        )
    return table


def accounts_renderable(accounts: Sequence[AdAccount]) -> RenderableType:
    """The ad accounts a token can read, one row each, in the order the API lists them."""
    if not accounts:
        return Text("The token can read no ad account (of the newest snapshot).", style="yellow")
    table = Table(
        title=f"Ad accounts ({len(accounts):,})",
        title_justify="left",
        highlight=False,
        show_edge=False,
    )
    table.add_column("ID", no_wrap=True)
    table.add_column("Name")
    table.add_column("Country", no_wrap=True)
    table.add_column("Currency", no_wrap=True)
    for account in accounts:
        # names come from the platform's data: shown literally, never as console markup
        table.add_row(
            cell(account.id),
            cell(account.name or ""),
            cell(account.country or ""),
            cell(account.currency or ""),
        )
    return table


@contextlib.contextmanager
def progress_on_stderr(what: str) -> Iterator[Callable[[int], None]]:
    """A spinner with a running count on stderr while something is fetched page by page (only
    on a terminal; stdout stays the result's alone)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda count: None
        return
    with console.status(f"{what}…") as status:
        yield lambda count: status.update(f"{what}… {count:,}")


def print_accounts(accounts: Sequence[AdAccount], console: Console | None = None) -> None:
    (console or Console()).print(accounts_renderable(accounts))


def print_insights(
    account: str,
    response: AudienceInsightsResponse,
    *,
    limit: int | None = None,
    console: Console | None = None,
) -> None:
    (console or Console()).print(insights_renderable(account, response, limit))


def print_definitions(
    account: str, response: AudienceDefinitionResponse, console: Console | None = None
) -> None:
    (console or Console()).print(definitions_renderable(account, response))
