"""The order in which the check step judges tables: a small scheduler over the contract's references.

A table's rows are judged against the *used* rows of the tables it references (SPEC §2), so a
referenced table is judged first. Tables that do not depend on each other are judged at the same
time, in one wave (the engine runs a wave's queries side by side: see Backend.materialize_all).
"""

from __future__ import annotations

from pinsights.data.tables import Table


def check_waves(tables: list[Table]) -> list[list[Table]]:
    """The tables after interests (checked first, on their own) in waves, each wave judged at once.

    A table is judged as late as the tables that reference it allow, not as early as it could
    be: so the users (which nothing but events reference) are judged beside the pins, the two
    large tables before the events, instead of beside the small accounts and metros.
    """
    names = {table.name for table in tables}
    if not names:  # every table's check is the refresh state's
        return []

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
