"""The demographics part of the documents (SPEC §3), written for many audiences at once from columns.

The engine hands the demographic counts back as Arrow columns (~100,000 cells at 20M events); as
the interest counts (:mod:`pinsights.engine.categories`), they stay columns
(:class:`DemographicCells`: each (dimension, value) a small integer code, each audience's rows a
slice), and the order, the caps on countries and metros and the exact quotients are numpy work over
every audience at once. Python only joins text pieces: each value's escaped head once, each
distinct quotient's text once.

The bytes are those of a plain per-document writer in the SPEC's order (ages in their natural
order, ``unknown`` last; the other dimensions by ratio descending, then key as text; at most so
many countries and metros), each ratio :func:`~pinsights.engine.categories.rounded_quotient` of
the value's people over the audience's; a property test holds them equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pinsights.engine import arrow_columns
from pinsights.engine.categories import (
    I64,
    AudienceKey,
    QuotientTexts,
    audience_runs,
    encoded_runs,
    rounded_quotients,
    rows_of,
)


@dataclass(frozen=True)
class DemographicCells:
    """Demographic counts of audiences as columns: the rows of an audience are
    ``values[start:stop]`` (codes of (dimension, key) pairs, named by ``named``) and
    ``users[start:stop]``."""

    named: list[tuple[str, str]]
    values: I64
    users: I64
    rows: dict[AudienceKey, tuple[int, int]]

    @classmethod
    def from_mapping(
        cls, demographics: Mapping[AudienceKey, Mapping[str, Sequence[tuple[str, int]]]]
    ) -> DemographicCells:
        """The same counts from per-audience dicts (dimension → [(key, users)]): the DP release's."""
        named, values, users, rows = encoded_runs(
            {
                audience: [
                    ((d, key), count) for d, cells in dimensions.items() for key, count in cells
                ]
                for audience, dimensions in demographics.items()
            }
        )
        return cls(named=named, values=values, users=users, rows=rows)

    @classmethod
    def from_arrow(
        cls, table: pa.Table, audience: Callable[[int, int], AudienceKey]
    ) -> DemographicCells:
        """The engine's rows (``account_key``, ``audience`` code, ``dimension``, ``key``,
        ``users``), ordered by account and audience; ``audience`` names an (account key, code).
        The two text columns are dictionary-encoded by Arrow: a few hundred distinct values."""
        dimensions, keys = (
            table.column(name).combine_chunks().dictionary_encode() for name in ("dimension", "key")
        )
        dimension_codes, key_codes = (
            arrow_columns.int64_values(pa.chunked_array([encoded.indices]))
            for encoded in (dimensions, keys)
        )
        width = len(keys.dictionary)
        pairs = dimension_codes * width + key_codes
        present = np.zeros(len(dimensions.dictionary) * width, dtype=bool)
        present[pairs] = True
        codes = np.flatnonzero(present)
        code_of = np.zeros(len(present), dtype=np.int64)
        code_of[codes] = np.arange(len(codes), dtype=np.int64)
        dimension_names, key_names = dimensions.dictionary.to_pylist(), keys.dictionary.to_pylist()
        return cls(
            named=[(dimension_names[c // width], key_names[c % width]) for c in codes.tolist()],
            values=code_of[pairs],
            users=arrow_columns.int64_values(table.column("users")),
            rows=audience_runs(table, audience),
        )

    def __len__(self) -> int:
        return len(self.values)


class DemographicWriter:
    """Writes the ``demographics`` object of audiences.

    ``dimensions`` are the document's lists in order; ``age_rank`` orders the values of the first
    (a value it does not know after the known ones); the others are ordered by people descending,
    then key; ``limits`` caps a dimension's list; ``head`` gives a value's escaped
    ``"key":…,"name":…``.
    """

    def __init__(
        self,
        cells: DemographicCells,
        head: Callable[[str, str], str],
        dimensions: Sequence[str],
        age_rank: Mapping[str, int],
        limits: Mapping[str, int],
        texts: QuotientTexts,
    ) -> None:
        self.cells = cells
        self.dimensions = list(dimensions)
        self.texts = texts
        position = {dimension: p for p, dimension in enumerate(self.dimensions)}
        named = cells.named
        unlisted = len(self.dimensions)
        #: each value's dimension by its position in the document (unlisted: not written)
        self.dimension = np.array(
            [position.get(dimension, unlisted) for dimension, _ in named], dtype=np.int64
        ).reshape(-1)
        #: the ages' natural order (the first dimension's), else 0
        self.age_order = np.array(
            [
                age_rank.get(key, len(age_rank)) if position.get(dimension) == 0 else 0
                for dimension, key in named
            ],
            dtype=np.int64,
        ).reshape(-1)
        #: each value's position among all values' keys as text (ties broken by key)
        self.key_rank = np.zeros(len(named), dtype=np.int64)
        self.key_rank[sorted(range(len(named)), key=lambda code: named[code][1])] = np.arange(
            len(named), dtype=np.int64
        )
        self.heads = np.array(
            [
                "{" + head(dimension, key) + ',"ratio":' if dimension in position else ""
                for dimension, key in named
            ],
            dtype=object,
        ).reshape(-1)
        big = np.iinfo(np.int64).max
        self.limit = np.array(
            [limits.get(dimension, big) for dimension in self.dimensions] + [0], dtype=np.int64
        )

    def write(self, audiences: list[AudienceKey], sizes: list[int]) -> list[str]:
        """The ``demographics`` object text of each audience, of these sizes (not 0)."""
        listed = len(self.dimensions)
        audience, row = rows_of(self.cells.rows, audiences)
        values, users = self.cells.values[row], self.cells.users[row]
        dimension = self.dimension[values]
        # By audience, then dimension, then (ages) natural order or people descending, then key.
        primary = np.where(dimension == 0, self.age_order[values], -users)
        order = np.lexsort((self.key_rank[values], primary, dimension, audience))
        audience, values, users, dimension = (
            audience[order],
            values[order],
            users[order],
            dimension[order],
        )
        group = audience * (listed + 1) + dimension
        starts = np.flatnonzero(np.diff(group, prepend=-1))
        place = np.arange(len(group)) - np.repeat(starts, np.diff(np.append(starts, len(group))))
        shown = place < self.limit[dimension]
        audience, values, users, group = (
            audience[shown],
            values[shown],
            users[shown],
            group[shown],
        )
        size = np.array(sizes, dtype=np.int64).reshape(-1)[audience]
        ratios = self.texts.of(rounded_quotients(users, size))
        entries = [
            f"{head}{ratio}}}"
            for head, ratio in zip(self.heads[values].tolist(), ratios, strict=True)
        ]
        stops = np.cumsum(np.bincount(group, minlength=len(audiences) * (listed + 1))).tolist()
        written: list[str] = []
        first = 0
        for position in range(len(audiences)):
            parts = []
            for dimension_position, name in enumerate(self.dimensions):
                stop = stops[position * (listed + 1) + dimension_position]
                parts.append(f'"{name}":[{",".join(entries[first:stop])}]')
                first = stop  # an unlisted dimension's group is empty: nothing shown
            written.append("{" + ",".join(parts) + "}")
        return written
