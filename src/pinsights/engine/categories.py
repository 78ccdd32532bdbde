"""The categories part of the documents (SPEC §3), written for many audiences at once from columns.

The engine hands the interest counts back as Arrow columns (~400,000 cells at 20M events); they stay
columns (:class:`InterestCells`: each audience's rows a slice), and the ordering and the exact
quotients are numpy work on integers over every audience at once. Python then only joins text
pieces: each interest's escaped head and each distinct quotient's text made once. Turning every cell
into Python values and formatting it alone was ~1 CPU s of a 20M build (BENCHMARKS.md).

The bytes are those of :func:`ratio_text` of :func:`rounded_quotient` on each quotient, in the
SPEC's order (ratio descending, then id ascending as text); a property test holds them equal to a
plain per-document writer.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pinsights.engine import arrow_columns

I64 = npt.NDArray[np.int64]
#: int64, or Python ints (object) where int64 could overflow.
Exact = npt.NDArray[Any]
AudienceKey = tuple[str, str]  # (ad_account_id, insight_type); P is ("", P)
N = TypeVar("N", bound=Hashable)  # a cell's name: an interest id, a (dimension, key)

#: Scale of the rounded quotients: 4 decimal places.
SCALE = 10_000
#: int64 arithmetic is exact while numerator × SCALE and twice a denominator stay below this.
_INT64_SAFE = 2**62
#: Cells written in one batch of audiences (numpy work per batch, texts held per batch).
BATCH_ROWS = 32_768
#: Quotients below this have their texts in a table (an index of 100 is 1,000,000); the rare
#: larger ones are written one by one.
TEXT_TABLE = 1 << 21


def rounded_quotient(numerator: int, denominator: int) -> int:
    """``round(numerator / denominator × 10,000)`` on the exact rational, half to even."""
    quotient, remainder = divmod(numerator * SCALE, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def ratio_text(quotient: int) -> str:
    """The JSON text of a rounded quotient: the nearest double of quotient / 10,000 (``1.0``)."""
    return repr(quotient / SCALE)


def rounded_quotients(numerators: Exact, denominators: Exact) -> Exact:
    """:func:`rounded_quotient` of every pair: in int64 where that is exact, else on Python ints."""
    if len(numerators) and (
        float(numerators.max()) * SCALE >= _INT64_SAFE
        or float(denominators.max()) * 2 >= _INT64_SAFE
    ):
        numerators, denominators = numerators.astype(object), denominators.astype(object)
    scaled = numerators * SCALE
    quotient, remainder = scaled // denominators, scaled % denominators
    twice = 2 * remainder
    up = (twice > denominators) | ((twice == denominators) & (quotient % 2 == 1))
    result: Exact = quotient + up
    return result


def _products(left: Exact, right: Exact) -> Exact:
    """left × right, exact: on Python ints where int64 could overflow."""
    if len(left) and float(left.max()) * float(right.max()) >= _INT64_SAFE:
        return left.astype(object) * right.astype(object)
    return left * right


def encoded_runs(
    cells: Mapping[AudienceKey, Iterable[tuple[N, int]]],
) -> tuple[list[N], I64, I64, dict[AudienceKey, tuple[int, int]]]:
    """Per-audience (name, users) cells as columns: each distinct name a code (in the order
    first seen; ``names[code]``), the codes and users of an audience a run (start, stop) — the
    columns the engine's rows give, made from the DP release's dicts."""
    code_of: dict[N, int] = {}
    codes: list[int] = []
    users: list[int] = []
    rows: dict[AudienceKey, tuple[int, int]] = {}
    for audience, pairs in cells.items():
        start = len(codes)
        for name, count in pairs:
            codes.append(code_of.setdefault(name, len(code_of)))
            users.append(count)
        rows[audience] = (start, len(codes))
    return list(code_of), np.array(codes, dtype=np.int64), np.array(users, dtype=np.int64), rows


def audience_runs(
    table: pa.Table, audience: Callable[[int, int], AudienceKey]
) -> dict[AudienceKey, tuple[int, int]]:
    """Each audience's rows (start, stop) in the engine's rows, ordered by ``account_key`` and
    ``audience`` code; ``audience`` names an (account key, code)."""
    account, code = (
        arrow_columns.int64_values(table.column(name)) for name in ("account_key", "audience")
    )
    run = account * 4 + code  # audience codes are 0-2
    starts = np.flatnonzero(np.diff(run, prepend=-1))
    bounds = [*starts.tolist(), len(run)]
    return {
        audience(account_key, code_): (start, stop)
        for account_key, code_, start, stop in zip(
            account[starts].tolist(), code[starts].tolist(), bounds[:-1], bounds[1:], strict=True
        )
    }


def rows_of(
    rows: Mapping[AudienceKey, tuple[int, int]], audiences: list[AudienceKey]
) -> tuple[I64, I64]:
    """(position in ``audiences``, row) of every row of these audiences, audience by audience."""
    spans = np.array([rows.get(a, (0, 0)) for a in audiences], dtype=np.int64).reshape(-1, 2)
    lengths = spans[:, 1] - spans[:, 0]
    audience = np.repeat(np.arange(len(audiences), dtype=np.int64), lengths)
    row = np.arange(len(audience), dtype=np.int64) + np.repeat(
        spans[:, 0] - (np.cumsum(lengths) - lengths), lengths
    )
    return audience, row


class QuotientTexts:
    """The JSON text of rounded quotients (:func:`ratio_text`), each distinct one made once: the
    texts of quotients below :data:`TEXT_TABLE` are kept in a table as they are first made."""

    def __init__(self) -> None:
        self._texts = np.empty(0, dtype=object)
        self._made = np.zeros(0, dtype=bool)

    def of(self, quotients: Exact) -> list[str]:
        """The text of each quotient, in order."""
        if not len(quotients):
            return []
        if quotients.dtype == object or quotients.max() >= TEXT_TABLE:
            return [ratio_text(int(q)) for q in quotients.tolist()]
        top = int(quotients.max())
        if top >= len(self._texts):
            length = min(TEXT_TABLE, max(2 * len(self._texts), top + 1))
            table, made = np.empty(length, dtype=object), np.zeros(length, dtype=bool)
            table[: len(self._texts)], made[: len(self._made)] = self._texts, self._made
            self._texts, self._made = table, made
        # The quotients not made yet, each once (a mask, not np.unique: that imports numpy.ma).
        wanted = np.zeros(top + 1, dtype=bool)
        wanted[quotients[~self._made[quotients]]] = True
        new = np.flatnonzero(wanted)
        if len(new):
            self._texts[new] = np.array([ratio_text(q) for q in new.tolist()], dtype=object)
            self._made[new] = True
        texts: list[str] = self._texts[quotients].tolist()
        return texts


@dataclass(frozen=True)
class InterestCells:
    """Interest counts of audiences as columns: the rows of an audience are
    ``keys[start:stop]`` (interest keys, named by ``ids``) and ``users[start:stop]``."""

    ids: Mapping[int, str]
    keys: I64
    users: I64
    rows: dict[AudienceKey, tuple[int, int]]

    @classmethod
    def from_mapping(cls, interests: Mapping[AudienceKey, Mapping[str, int]]) -> InterestCells:
        """The same counts from per-audience dicts (interest id → users)."""
        ids, keys, users, rows = encoded_runs({a: cells.items() for a, cells in interests.items()})
        return cls(ids=dict(enumerate(ids)), keys=keys, users=users, rows=rows)

    @classmethod
    def from_arrow(
        cls,
        table: pa.Table,
        ids: Mapping[int, str],
        audience: Callable[[int, int], AudienceKey],
    ) -> InterestCells:
        """The engine's rows (``account_key``, ``audience`` code, ``interest_key``, ``users``),
        ordered by account and audience; ``audience`` names an (account key, code)."""
        keys, users = (
            arrow_columns.int64_values(table.column(name)) for name in ("interest_key", "users")
        )
        return cls(ids=ids, keys=keys, users=users, rows=audience_runs(table, audience))

    def __len__(self) -> int:
        return len(self.keys)


class CategoryWriter:
    """Writes the ``categories`` text and the category operation's bodies of audiences.

    ``head`` gives an interest's escaped ``"id":…,"key":…,"name":…``; ``categories`` and
    ``parent_of_subcategory`` are the catalogue's levels (ids); ``platform`` is P's audience;
    ``texts`` the quotients' texts made so far (shared with the demographics' writer).
    """

    def __init__(
        self,
        cells: InterestCells,
        head: Callable[[str], str],
        categories: set[str],
        parent_of_subcategory: Mapping[str, str],
        platform: AudienceKey,
        platform_size: int,
        max_subcategories: int,
        texts: QuotientTexts | None = None,
    ) -> None:
        self.cells = cells
        self.max_subcategories = max_subcategories
        self.platform_size = platform_size
        ids = cells.ids
        width = max(ids, default=-1) + 1
        key_of = {interest_id: key for key, interest_id in ids.items()}
        #: 1 for a category, 2 for a subcategory (of a category with a key), else 0.
        self.kind = np.zeros(width, dtype=np.int8)
        self.parent = np.zeros(width, dtype=np.int64)
        #: position of each key's id in text order (ties in users are broken by id as text).
        self.rank = np.zeros(width, dtype=np.int64)
        self.rank[sorted(ids, key=ids.__getitem__)] = np.arange(len(ids), dtype=np.int64)
        self.ids = np.empty(width, dtype=object)
        self.heads = np.empty(width, dtype=object)
        self.sub_heads = np.empty(width, dtype=object)
        for key, interest_id in ids.items():
            self.ids[key] = interest_id
            if interest_id in categories:
                self.kind[key] = 1
                self.heads[key] = "{" + head(interest_id)
            elif parent_of_subcategory.get(interest_id) in key_of:
                self.kind[key] = 2
                self.parent[key] = key_of[parent_of_subcategory[interest_id]]
                self.sub_heads[key] = "{" + head(interest_id) + ',"ratio":'
        self.p_users = np.zeros(width, dtype=cells.users.dtype)
        start, stop = cells.rows.get(platform, (0, 0))
        self.p_users[cells.keys[start:stop]] = cells.users[start:stop]
        self.texts = QuotientTexts() if texts is None else texts

    def write(
        self, audiences: list[AudienceKey], sizes: list[int]
    ) -> list[tuple[str, dict[str, bytes]]]:
        """(categories text, category bodies by id) of each audience, of these sizes: in
        batches of about :data:`BATCH_ROWS` cells (and audiences × interest keys), so that the
        transient arrays and texts stay small beside the documents' own."""
        written: list[tuple[str, dict[str, bytes]]] = []
        rows, width = self.cells.rows, len(self.kind)
        first = cells = 0
        for last, audience in enumerate(audiences, 1):
            start, stop = rows.get(audience, (0, 0))
            cells += stop - start
            full = cells >= BATCH_ROWS or (last - first) * width >= 32 * BATCH_ROWS
            if full or last == len(audiences):
                written += self._batch(audiences[first:last], sizes[first:last])
                first, cells = last, 0
        return written

    def _batch(
        self, audiences: list[AudienceKey], sizes: list[int]
    ) -> list[tuple[str, dict[str, bytes]]]:
        cells, width = self.cells, len(self.kind)
        audience, row = rows_of(cells.rows, audiences)
        keys, users = cells.keys[row], cells.users[row]
        kind = self.kind[keys]

        # Categories: by audience, then users descending, then id as text.
        chosen = np.flatnonzero(kind == 1)
        c_audience, c_key, c_users = audience[chosen], keys[chosen], users[chosen]
        order = np.lexsort((self.rank[c_key], -c_users, c_audience))
        c_audience, c_key, c_users = c_audience[order], c_key[order], c_users[order]

        # Subcategories whose category the audience lists: under it, in the same order.
        listed = np.full((len(audiences), width), -1, dtype=np.int32)
        listed[c_audience, c_key] = np.arange(len(c_key), dtype=np.int32)
        chosen = np.flatnonzero(kind == 2)
        s_category = listed[audience[chosen], self.parent[keys[chosen]]]
        present = s_category >= 0
        chosen, s_category = chosen[present], s_category[present]
        s_key, s_users = keys[chosen], users[chosen]
        order = np.lexsort((self.rank[s_key], -s_users, s_category))
        s_key, s_users, s_category = s_key[order], s_users[order], s_category[order]

        # The four quotients of SPEC §3 (an index from unrounded ratios), each text made once.
        size = np.array(sizes, dtype=np.int64)[c_audience]
        p_category = self.p_users[c_key]
        if not (p_category > 0).all() or not (self.p_users[s_key] > 0).all():
            raise ValueError("an interest counted in an audience is not counted in P's")
        n_category = c_users[s_category]
        p_parent = p_category[s_category]
        quotients = [
            rounded_quotients(c_users, size),
            rounded_quotients(
                _products(c_users, np.full(len(c_users), self.platform_size, dtype=np.int64)),
                _products(size, p_category),
            ),
            rounded_quotients(s_users, n_category),
            rounded_quotients(
                _products(s_users, p_parent), _products(n_category, self.p_users[s_key])
            ),
        ]
        c_ratio, c_index, s_ratio, s_index = (self.texts.of(q) for q in quotients)

        entries = [
            f'{head}{ratio},"index":{index}}}'
            for head, ratio, index in zip(
                self.sub_heads[s_key].tolist(), s_ratio, s_index, strict=True
            )
        ]
        sub_stops = np.cumsum(np.bincount(s_category, minlength=len(c_key))).tolist()
        category_stops = np.cumsum(np.bincount(c_audience, minlength=len(audiences))).tolist()
        c_heads = self.heads[c_key].tolist()
        c_ids = self.ids[c_key].tolist()
        shown_at_most = self.max_subcategories
        written: list[tuple[str, dict[str, bytes]]] = []
        category = first_sub = 0
        for category_stop in category_stops:
            parts: list[str] = []
            items: dict[str, bytes] = {}
            while category < category_stop:
                sub_stop = sub_stops[category]
                every = ",".join(entries[first_sub:sub_stop])
                shown = (
                    every
                    if sub_stop - first_sub <= shown_at_most
                    else ",".join(entries[first_sub : first_sub + shown_at_most])
                )
                items[c_ids[category]] = f'{{"items":[{every}]}}'.encode()
                parts.append(
                    f'{c_heads[category]},"ratio":{c_ratio[category]},'
                    f'"index":{c_index[category]},"subcategories":[{shown}]}}'
                )
                category, first_sub = category + 1, sub_stop
            written.append((",".join(parts), items))
        return written
