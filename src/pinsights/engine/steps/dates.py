"""Which dates a build publishes: the requested ones, or the day of the latest valid event."""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir

from pinsights.engine import semantics
from pinsights.engine.backend import Backend
from pinsights.engine.settings import BuildSettings
from pinsights.engine.steps import BuildError


def dates_to_build(backend: Backend, settings: BuildSettings, events: ir.Table) -> list[dt.date]:
    """The requested dates, or the day of the latest valid event; refused (nothing built) when a
    date's window holds no valid event, unless ``allow_empty``: an empty snapshot published by a
    mistyped date would become the newest one, and be served."""
    requested = settings.requested_dates()
    windows = [semantics.window_bounds(day, settings.window_days) for day in requested]
    span = backend.to_arrow(semantics.event_span(events, windows)).to_pylist()[0]
    first, last = (as_date(span["first"]), as_date(span["last"]))
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
    if empty and not settings.allow_empty:
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


def as_date(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
