"""The rules of the input contract (SPEC §2) as portable Ibis expressions.

Given a raw table (whatever types its files had), :func:`check_table` returns the same rows with
every contract column typed and a ``__rule`` column: null for a row that is used, else the first rule
the row breaks (``malformed`` → ``bad_value`` → ``duplicate_key`` → ``unknown_reference``). Rows
that break a rule also carry ``__source_file`` and ``__row`` for the quarantine — always text: the
raw line of a malformed line or of a JSON line, else the whole original row as a JSON object — and
``__line`` for a malformed line; for used rows those are null, so the one pass that checks 20M
events does not serialise 20M rows.

The reader marks malformed lines (see :mod:`pinsights.data.sources`: ``__malformed``, ``__text``,
``__line``); a table read only from Parquet has none of those columns and pays nothing for them.

The expressions compile for DuckDB and for Spark SQL alike (a test compiles them for both): the
backend only decides how files become the raw table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from pinsights.data.tables import (
    LINE,
    MALFORMED,
    READER_COLUMNS,
    SOURCE_FILE,
    TEXT,
    Case,
    Column,
    Kind,
    Rule,
    Table,
)

RULE = "__rule"
ROW = "__row"

DIGITS_PATTERN = r"^[0-9]+$"
INTEGER_PATTERN = r"^-?[0-9]+$"
#: ISO 8601 as the contract accepts it in text: a date, optionally a time (`T` or a space; hours
#: 00-23, seconds and any fraction optional) and an offset (`Z`, `±hh`, `±hhmm`, `±hh:mm`).
#: DuckDB's cast alone is more lenient (` 2026-…`, `24:00:00`) than the contract says.
ISO_8601_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)
TIMESTAMP_UTC = dt.Timestamp(timezone="UTC")


@ibis.udf.scalar.builtin(name="to_json")
def _to_json(value) -> dt.JSON:  # type: ignore[no-untyped-def]
    """DuckDB's and Spark's ``to_json``: serialises a struct as a JSON object (any struct type).

    Typed JSON so that the cast to text is written out: DuckDB's ``to_json`` returns its JSON
    type, and a JSON value beside text (a raw line) would make DuckDB parse the text as JSON.
    """


def _time_text(column: ir.TimestampValue) -> ir.StringValue:
    """A timestamp as the quarantine shows it, the same on every engine: ISO 8601 in UTC
    (``2026-11-01T23:59:59.999999Z``), the fraction of a second only when there is one, always to
    the microsecond. A timestamp without a time zone is read as UTC, as the contract reads
    ``event_time`` (and Spark's types, as Ibis sees them, do not tell the two kinds apart).

    Left to ``to_json``, each engine spelled a timestamp its own way, and Spark's default format
    has milliseconds: ``23:59:59.999999`` became ``.999``, so the row was not kept whole (SPEC §2).
    """
    fraction = column.strftime("%f")
    text = column.strftime("%Y-%m-%d") + "T" + column.strftime("%H:%M:%S")
    return text + ibis.ifelse(fraction == "000000", "", "." + fraction) + "Z"


def _as_text(column: ir.Value) -> ir.StringValue:
    return column if column.type().is_string() else column.cast(dt.string)


def typed_column(column: ir.Value, kind: Kind) -> tuple[ir.Value, ir.BooleanValue]:
    """The column converted to its contract type, and whether a present value is malformed.

    Native types are kept when they already are the contract's (Parquet int64 ids, timestamps); text
    is parsed strictly: ``1.5``, ``1e3`` and `` 12`` are not int64, whatever a lenient cast thinks.
    """
    present = column.notnull()
    if kind is Kind.DIGITS:
        text = _as_text(column)
        return text, present & ~text.re_search(DIGITS_PATTERN)
    if kind is Kind.STRING:
        return _as_text(column), ibis.literal(False)
    if kind is Kind.INT64:
        if column.type().is_integer():
            return column.cast(dt.int64), ibis.literal(False)
        text = _as_text(column)
        parsed = text.try_cast(dt.int64)
        return parsed, present & (~text.re_search(INTEGER_PATTERN) | parsed.isnull())
    # Kind.TIMESTAMP: instants kept as UTC timestamps with time zone. Converting them to naive
    # timestamps would cost a calendar computation per row (a third of the checking time on 20M
    # events); comparing instants is an integer comparison.
    if column.type().is_timestamp() and column.type().timezone is not None:
        return column, ibis.literal(False)
    if column.type().is_timestamp() or column.type().is_date():
        return column.cast(TIMESTAMP_UTC), ibis.literal(False)
    text = _as_text(column)
    instant = text.try_cast(TIMESTAMP_UTC)
    return instant, present & (instant.isnull() | ~text.re_search(ISO_8601_PATTERN))


#: Above this many allowed values, a set is tested once per distinct value, not once per row.
LARGE_SET = 16


def _present_allowed(raw: ir.Table, value: ir.Value, allowed: tuple[str, ...]) -> ir.Table:
    """The values of ``value`` in ``raw`` that are in ``allowed``: one row each, to join with.

    A long IN list (the 249 country codes in every case) is evaluated as a chain of comparisons
    per row; testing the few distinct values present and joining back is an order of magnitude
    cheaper. The set is one array literal, not 249 literals: Ibis walks every node of a query's
    graph many times while compiling it, and the users' and ad accounts' checks compiled in
    about half the time so (the same test: ``list_contains`` on DuckDB, ``array_contains`` on
    Spark). Spark does not take this path: it tests an ``IN`` list by a hash set
    (``hashed_sets`` of :func:`check_table`).
    """
    present = raw.select(value=value).distinct()
    return present.filter(ibis.literal(list(allowed), type="array<string>").contains(present.value))


def _cased(value: ir.Value, case: Case | None) -> ir.Value:
    """``value`` in the column's case, if it has one."""
    if case is Case.LOWER:
        return value.lower()
    if case is Case.UPPER:
        return value.upper()
    return value


def _absent(raw: ir.Table, column: Column, keys: ir.Column) -> ir.Table:
    """The values of ``column`` in ``raw``, typed, that are not among ``keys``: one row each.

    A reference to a large table (the events' users: a million ids) checked by a left join with
    every used key probes a hash table too large for the cache once per row: ~2 CPU s of the
    20M events' check. Its distinct values present, less the used keys (an anti join of two
    tables of a million rows or so), are the unknown ones: usually none or a few, a hash table
    the probe finds in the cache. A row names an unknown value exactly when its value is among
    them (BENCHMARKS.md, "Ninth round").
    """
    # The raw values first, typed after: joined back with ``raw``, a column computed by the
    # same expression as the row's typed value would stand for it (Ibis dereferences an
    # expression of the left table that the right one selects), and ``.view()`` would make
    # every build's query new to the compiled-SQL cache.
    known = keys.name("__known").as_table()
    raws = raw.select(__raw=raw[column.name])
    if _cased(typed_column(raws["__raw"], column.kind)[0], column.case).equals(raws["__raw"]):
        # Typed as they are (Parquet int64 ids): every value is looked up among the used keys
        # and only the unknown ones are made distinct (usually none), instead of grouping
        # every value first (100M events hold 5M distinct user ids: BENCHMARKS.md, "Eleventh
        # round"). Text is grouped first: it is parsed once per distinct value, not per row.
        raws = raws.filter(raws["__raw"].notnull())
        unknown = raws.anti_join(known, raws["__raw"] == known["__known"]).distinct()
        return unknown.select(value=unknown["__raw"])
    present = raws.distinct()
    value = _cased(typed_column(present["__raw"], column.kind)[0], column.case)
    typed = present.select(value=value)
    typed = typed.filter(typed.value.notnull())
    if not value.equals(present["__raw"]):  # texts such as "7" and "07" type alike
        typed = typed.distinct()
    return typed.anti_join(known, typed.value == known["__known"])


def _seen_twice(raw: ir.Table, key: ir.Value) -> ir.Table:
    """The keys (typed, not null) that two or more rows of ``raw`` have, whether or not they
    pass: the only ones a passing row can repeat.

    Found by sorting the keys and comparing each with the one before it: DuckDB sorts the
    10M pin ids of a 100M-event platform in ~0.55 CPU s where grouping them cost 1.5-2.4, and
    the users' 5M ids in ~0.3 against ~0.8 (BENCHMARKS.md, "Tenth round"); nothing but the key
    column is read, where grouping the passing rows judged every row a second time. Usually
    empty, so the rows to group are none. Not on Spark: a window over the whole table is one task.
    """
    keys = raw.select(key=key)
    keys = keys.filter(keys.key.notnull())
    before = keys.key.lag().over(ibis.window(order_by=keys.key))
    return keys.filter(keys.key == before).select("key").distinct()


def _joined(
    source: ir.Table, lookup: ir.Table, prefix: str, value: ir.Value
) -> tuple[ir.Table, ir.Column, dict[str, ir.Value]]:
    """``source`` left-joined with ``lookup`` on ``value`` = its first column (unique), the
    lookup's columns renamed under ``prefix``: the joined table, the matched key (null where
    nothing matched) and the lookup's other columns."""
    prefixed = lookup.rename(**{f"{prefix}{name}": name for name in lookup.columns})
    found = prefixed[f"{prefix}{lookup.columns[0]}"]
    carried = {name: prefixed[f"{prefix}{name}"] for name in lookup.columns[1:]}
    return source.left_join(prefixed, value == found), found, carried


def check_table(
    raw: ir.Table,
    table: Table,
    *,
    used_keys: Mapping[str, ir.Column],
    skip_references: frozenset[str] = frozenset(),
    lookups: Mapping[str, ir.Table] | None = None,
    hashed_sets: bool = False,
    by_value: frozenset[str] = frozenset(),
    sorted_keys: bool = False,
) -> ir.Table:
    """Type every column of ``table`` and judge every row of ``raw`` against the contract.

    ``used_keys`` maps a referenced table's name to the column of its used primary keys (the rows
    of earlier tables that passed). References named in ``skip_references`` are left to the caller
    (the interest hierarchy is checked as reachability, see :mod:`pinsights.engine.semantics`).

    ``lookups`` maps a referencing column to a table keyed by its first column (the used rows it
    may name, with attributes): the reference is then checked by a left join that also brings
    those attributes along, so a later step needs no second join on the same key. The build uses
    it for events → pins, the largest join there is.

    ``hashed_sets``: the engine tests a value against a long list of constants by a hash set
    lookup (``Backend.hashes_value_lists``: Spark): a long value set is then an ``IN`` list like
    a short one, not the distinct values present joined back (:func:`_present_allowed`). On
    Spark the join cost two more scans of the table and the 996 spellings of the country codes
    written four times in the query (the users' check: 7.7-9.7 s against 4.3-4.7 s warm at
    500,000 users, and its analysis 1.0 s against 0.6-0.8).

    ``by_value`` names referencing columns checked per distinct value instead (see
    :func:`_absent`): the row is joined with the values present that are not used keys, not
    with every used key. The same rows are ``unknown_reference``; the build uses it for the
    events' users on DuckDB.

    ``sorted_keys``: the duplicate keys are looked for among the keys seen twice in sorted
    order first (:func:`_seen_twice`), only their rows judged and grouped: DuckDB.
    """
    # Every test that needs another table (a long value set, the duplicate keys, a reference) is
    # a left join, not an ``IN`` subquery: the rule is read three times by :func:`finish` (the
    # rule, the source file, the row), and DuckDB ran such a subquery once per read — three mark
    # joins of the 20M events with the users, and for the users five reads of their file with
    # seven mark joins. A joined column read three times costs nothing more. Every lookup is unique
    # on its key, so no row is repeated.
    typed: dict[str, ir.Value] = {}
    malformed: ir.BooleanValue | None = None
    bad_value: ir.BooleanValue = ibis.literal(False)
    source = raw
    if MALFORMED in raw.columns:
        # A malformed line has no values; it must not take part in the other rules either.
        malformed = raw[MALFORMED].fill_null(False)
        bad_value = malformed
    for column in table.columns:
        if column.name not in raw.columns:
            # An optional column the files lack (the readers refuse a table lacking another):
            # null throughout, and nothing of it in the quarantined rows' originals.
            assert column.optional, f"{table.name}.{column.name} is not optional"
            typed[column.name] = ibis.null(dt.string)
            continue
        value, unparsable = typed_column(raw[column.name], column.kind)
        bad = unparsable
        if column.required:
            bad = bad | raw[column.name].isnull()
        accepted = column.accepted
        if accepted is not None and (hashed_sets or len(accepted) <= LARGE_SET):
            bad = bad | (value.notnull() & ~value.isin(accepted))
        elif accepted is not None:
            valid = _present_allowed(raw, value, accepted)
            source, found, _ = _joined(source, valid, f"__allowed:{column.name}:", value)
            bad = bad | (value.notnull() & found.isnull())
        value = _cased(value, column.case)
        if column.max_length is not None:
            bad = bad | (value.length() > column.max_length)
        typed[column.name] = value
        bad_value = bad_value | bad.fill_null(False)

    duplicate: ir.BooleanValue = ibis.literal(False)
    if table.primary_key is not None:
        # Keys seen more than once among the rows that passed; grouped, not a window partitioned
        # by key (it buffers every row): at most among the keys seen twice at all, on DuckDB.
        key = typed[table.primary_key]
        passing = source.filter(~bad_value)
        if sorted_keys:
            passing = passing.filter(key.isin(_seen_twice(raw, key).key))
        passing = passing.select(key=key)
        repeated = passing.group_by("key").aggregate(rows=passing.count())
        repeated = repeated.filter(repeated.rows > 1).select("key")
        source, found, _ = _joined(source, repeated, "__repeated:", key)
        duplicate = ~bad_value & found.notnull()

    dangling: ir.BooleanValue = ibis.literal(False)
    carried: dict[str, ir.Value] = {}
    for column in table.columns:
        if column.references is None or column.references in skip_references:
            continue
        value = typed[column.name]
        if column.name in by_value:
            absent = _absent(raw, column, used_keys[column.references])
            source, found, _ = _joined(source, absent, f"__absent:{column.name}:", value)
            dangling = dangling | found.notnull()
            continue
        if lookups and column.name in lookups:
            lookup = lookups[column.name]
        else:
            lookup = used_keys[column.references].as_table()
        source, found, brought = _joined(source, lookup, f"__lookup:{column.name}:", value)
        carried.update(brought)
        dangling = dangling | (value.notnull() & found.isnull())

    cases = [] if malformed is None else [(malformed, Rule.MALFORMED.value)]
    rule = ibis.cases(
        *cases,
        (bad_value, Rule.BAD_VALUE.value),
        (duplicate, Rule.DUPLICATE_KEY.value),
        (dangling, Rule.UNKNOWN_REFERENCE.value),
        else_=ibis.null(dt.string),
    )
    originals = {_original(name): raw[name] for name in raw.columns if name not in READER_COLUMNS}
    provenance = {name: raw[name] for name in (SOURCE_FILE, TEXT, LINE) if name in raw.columns}
    return source.select(**typed, **carried, **{RULE: rule}, **provenance, **originals)


def _original(name: str) -> str:
    return f"__original:{name}"


def mark_unknown_references(checked: ir.Table, dangling: ir.BooleanValue) -> ir.Table:
    """Quarantine, as ``unknown_reference``, rows still used for which ``dangling`` holds."""
    rule = ibis.ifelse(
        checked[RULE].isnull() & dangling.fill_null(False),
        Rule.UNKNOWN_REFERENCE.value,
        checked[RULE],
    )
    return checked.mutate(**{RULE: rule})


def finish(
    checked: ir.Table,
    table: Table,
    keep: Callable[[ir.Table], dict[str, ir.Value]] | None = None,
) -> ir.Table:
    """The checked table as it is kept: typed columns, the rule, and provenance of bad rows only.

    The whole original row is serialised inside the same CASE that tests the rule, so the one pass
    over 20M events serialises only the few bad rows, never the good ones. ``keep`` chooses the
    columns kept for used rows (default: every typed and looked-up column), so that a large table
    is written once in the narrow shape later steps read.
    """
    prefix = _original("")
    originals = [name for name in checked.columns if name.startswith(prefix)]
    # Text, whatever the format: a quarantine that mixes tables (and formats) is one union.
    values = {
        name[len(prefix) :]: _time_text(checked[name])
        if checked[name].type().is_timestamp()
        else checked[name]
        for name in originals
    }
    row: ir.Value = _to_json(ibis.struct(values)).cast(dt.string)
    if TEXT in checked.columns:
        row = checked[TEXT].fill_null(row)
    is_bad = checked[RULE].notnull()
    if keep is None:
        kept = {name: checked[name] for name in checked.columns if not name.startswith("__")}
    else:
        kept = keep(checked)
    return checked.select(
        **kept,
        **{RULE: checked[RULE]},
        **{
            SOURCE_FILE: ibis.ifelse(is_bad, checked[SOURCE_FILE], ibis.null(dt.string)),
            ROW: ibis.ifelse(is_bad, row, ibis.null(dt.string)),
        },
        **({LINE: checked[LINE]} if LINE in checked.columns else {}),
    )


def quarantine_rows(checked: ir.Table, table: Table) -> ir.Table:
    """The quarantined rows of a checked table, in the quarantine's shape."""
    bad = checked.filter(checked[RULE].notnull())
    return bad.select(
        table=ibis.literal(table.name),
        source_file=bad[SOURCE_FILE],
        line=bad[LINE].cast(dt.int64) if LINE in bad.columns else ibis.null(dt.int64),
        rule=bad[RULE],
        row=bad[ROW].cast(dt.string),
    )


def used_rows(checked: ir.Table) -> ir.Table:
    """The rows of a checked table that are used: typed columns (and looked-up ones), no rule."""
    used = checked.filter(checked[RULE].isnull())
    return used.select(*[name for name in checked.columns if not name.startswith("__")])


def rule_counts(checked: ir.Table) -> ir.Table:
    """Rows read and quarantined per rule (a null rule counts the used rows)."""
    return checked.group_by(RULE).aggregate(rows=checked.count())
