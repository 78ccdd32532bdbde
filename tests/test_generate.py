"""`pinsights generate`: the synthetic platform honours the input contract (SPEC §2), is
reproducible, and is realistic enough that audiences really differ.

Every check reads the written files directly (PyArrow, DuckDB); the rules are restated here from
the SPEC rather than imported, so the generator cannot agree with itself by construction.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pycountry
import pytest
from typer.testing import CliRunner

from pinsights.cli import app
from pinsights.synthetic.generate import GenerateSummary, generate

AGE_BUCKETS = {"18-24", "25-34", "35-44", "45-49", "50-54", "55-64", "65+"}
GENDERS = {"female", "male", "unspecified"}
DEVICES = {"android_mobile", "android_tablet", "ipad", "iphone", "web", "web_mobile"}
EVENT_TYPES = {
    "IMPRESSION",
    "CLOSEUP",
    "SAVE",
    "PIN_CLICK",
    "OUTBOUND_CLICK",
    "VIDEO_VIEW",
    "COMMENT",
    "REACTION",
}
CATEGORY_NAMES = {
    "Animals",
    "Architecture",
    "Art",
    "Beauty",
    "Children's fashion",
    "Design",
    "DIY and crafts",
    "Education",
    "Electronics",
    "Entertainment",
    "Event planning",
    "Finance",
    "Food and drinks",
    "Gardening",
    "Health",
    "Home decor",
    "Men's fashion",
    "Parenting",
    "Quotes",
    "Sport",
    "Travel",
    "Vehicles",
    "Wedding",
    "Women's fashion",
}
END_DATE = dt.date(2026, 3, 31)
DAYS = 7
EVENTS = 120_000


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> GenerateSummary:
    """One mid-sized platform shared by the contract and statistics tests (about a second)."""
    out_dir = tmp_path_factory.mktemp("platform")
    return generate(
        out_dir, users=3_000, accounts=12, days=DAYS, end_date=END_DATE, seed=7, events=EVENTS
    )


def read(summary: GenerateSummary, table: str) -> pa.Table:
    return pq.read_table(summary.out_dir / f"{table}.parquet")


def read_events(summary: GenerateSummary) -> pa.Table:
    files = sorted((summary.out_dir / "events").glob("date=*/part-0.parquet"))
    return pa.concat_tables(pq.read_table(f) for f in files)


def column(table: pa.Table, name: str) -> list[object]:
    return table.column(name).to_pylist()


def test_every_table_has_the_contract_columns_and_types(platform: GenerateSummary) -> None:
    string, int64 = pa.string(), pa.int64()
    expected = {
        "interests": {"interest_id": string, "name": string, "parent_id": string},
        "ad_accounts": {"ad_account_id": string, "name": string},
        "users": {
            "user_id": int64,
            "age_bucket": string,
            "gender": string,
            "country": string,
            "metro": string,
            "device": string,
        },
        "metros": {"metro": string, "name": string},
        "pins": {"pin_id": int64, "ad_account_id": string, "interest_id": string},
    }
    for table, columns in expected.items():
        schema = read(platform, table).schema
        assert {name: schema.field(name).type for name in schema.names} == columns, table

    events_schema = read_events(platform).schema
    assert events_schema.names == ["event_time", "user_id", "pin_id", "event_type"]
    assert events_schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert events_schema.field("user_id").type == int64
    assert events_schema.field("pin_id").type == int64
    assert events_schema.field("event_type").type == string


def test_primary_keys_are_unique_and_required_columns_present(platform: GenerateSummary) -> None:
    keys = {
        "interests": "interest_id",
        "ad_accounts": "ad_account_id",
        "users": "user_id",
        "metros": "metro",
        "pins": "pin_id",
    }
    for table, key in keys.items():
        values = column(read(platform, table), key)
        assert None not in values, table
        assert len(set(values)) == len(values), table
    for table in ("interests", "ad_accounts", "metros"):
        assert None not in column(read(platform, table), "name")
    events = read_events(platform)
    for name in events.schema.names:
        assert events.column(name).null_count == 0, name


def test_ids_look_like_pinterest_ids(platform: GenerateSummary) -> None:
    for interest_id in column(read(platform, "interests"), "interest_id"):
        assert re.fullmatch(r"\d{12}", str(interest_id))
    for account_id in column(read(platform, "ad_accounts"), "ad_account_id"):
        assert re.fullmatch(r"\d{1,18}", str(account_id))


def test_every_reference_names_an_existing_row(platform: GenerateSummary) -> None:
    interests = set(column(read(platform, "interests"), "interest_id"))
    accounts = set(column(read(platform, "ad_accounts"), "ad_account_id"))
    users = set(column(read(platform, "users"), "user_id"))
    metros = set(column(read(platform, "metros"), "metro"))
    pins = read(platform, "pins")
    events = read_events(platform)

    assert set(column(read(platform, "interests"), "parent_id")) - {None} <= interests
    assert set(column(pins, "ad_account_id")) - {None} <= accounts
    assert set(column(pins, "interest_id")) - {None} <= interests
    assert set(column(read(platform, "users"), "metro")) - {None} <= metros
    assert set(column(events, "user_id")) <= users
    assert set(column(events, "pin_id")) <= set(column(pins, "pin_id"))


def test_values_stay_in_their_sets(platform: GenerateSummary) -> None:
    users = read(platform, "users")
    assert set(column(users, "age_bucket")) - {None} == AGE_BUCKETS
    assert set(column(users, "gender")) - {None} == GENDERS
    assert set(column(users, "device")) - {None} == DEVICES
    assert set(column(read_events(platform), "event_type")) == EVENT_TYPES

    countries = set(column(users, "country")) - {None}
    for code in countries:
        assert isinstance(code, str) and len(code) == 2
        assert pycountry.countries.get(alpha_2=code.upper()) is not None, code
    assert any(code.islower() for code in countries), "the contract allows any case"
    assert len({code.upper() for code in countries}) >= 20, "a long tail of countries"


def test_metros_are_us_dmas_for_us_users_only(platform: GenerateSummary) -> None:
    users = read(platform, "users").to_pylist()
    with_metro = [user for user in users if user["metro"] is not None]
    assert with_metro
    for user in with_metro:
        assert user["country"] is None or user["country"].upper() == "US"
    metros = {row["metro"]: row["name"] for row in read(platform, "metros").to_pylist()}
    assert len(metros) >= 50
    assert metros["501"] == "New York, NY"
    assert metros["803"] == "Los Angeles, CA"
    assert metros["602"] == "Chicago, IL"


def test_taxonomy_has_pinterest_categories_and_deeper_interests(
    platform: GenerateSummary,
) -> None:
    rows = read(platform, "interests").to_pylist()
    parent_of = {row["interest_id"]: row["parent_id"] for row in rows}

    def level(interest_id: str) -> int:
        parent = parent_of[interest_id]
        return 1 if parent is None else 1 + level(parent)

    categories = [row for row in rows if row["parent_id"] is None]
    assert {row["name"] for row in categories} == CATEGORY_NAMES
    levels = [level(row["interest_id"]) for row in rows]
    assert 200 <= len(rows) <= 1_000
    assert levels.count(2) >= 200 and levels.count(3) >= 50 and max(levels) == 3
    children = {row["parent_id"] for row in rows if row["parent_id"] is not None}
    assert all(row["interest_id"] in children for row in categories)
    assert "Vegan recipes" in {row["name"] for row in rows}


def test_users_look_like_a_visual_discovery_platform(platform: GenerateSummary) -> None:
    users = read(platform, "users")
    n = users.num_rows

    def share(name: str, value: str) -> float:
        return column(users, name).count(value) / n

    assert share("gender", "female") > 0.55
    assert share("age_bucket", "25-34") == max(share("age_bucket", a) for a in AGE_BUCKETS)
    us = sum(1 for code in column(users, "country") if code and code.upper() == "US") / n
    assert 0.35 < us < 0.65
    for name in ("age_bucket", "gender", "country", "device"):
        assert 0 < users.column(name).null_count / n < 0.1, name


def test_pins_are_mostly_organic_and_mostly_tagged(platform: GenerateSummary) -> None:
    pins = read(platform, "pins")
    owned = 1 - pins.column("ad_account_id").null_count / pins.num_rows
    untagged = pins.column("interest_id").null_count / pins.num_rows
    assert 0.1 < owned < 0.5
    assert 0 < untagged < 0.1
    accounts = set(column(pins, "ad_account_id")) - {None}
    assert accounts == set(column(read(platform, "ad_accounts"), "ad_account_id"))


def test_impressions_dominate_and_every_event_type_occurs(platform: GenerateSummary) -> None:
    types = column(read_events(platform), "event_type")
    assert 0.70 <= types.count("IMPRESSION") / len(types) <= 0.80
    assert types.count("CLOSEUP") > types.count("COMMENT")


def test_events_are_partitioned_by_utc_day_within_the_window(platform: GenerateSummary) -> None:
    events_dir = platform.out_dir / "events"
    window = [END_DATE - dt.timedelta(days=d) for d in range(DAYS)]
    assert sorted(p.name for p in events_dir.iterdir()) == sorted(
        f"date={day.isoformat()}" for day in window
    )
    for day in window:
        partition = events_dir / f"date={day.isoformat()}"
        assert [p.name for p in partition.iterdir()] == ["part-0.parquet"]
        table = pq.read_table(partition / "part-0.parquet")
        assert "date" not in table.schema.names
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        assert pc.min(table.column("event_time")).as_py() >= start
        assert pc.max(table.column("event_time")).as_py() < start + dt.timedelta(days=1)
    assert (platform.start_date, platform.end_date) == (window[-1], END_DATE)


def test_requested_event_count_is_honoured(platform: GenerateSummary) -> None:
    assert platform.events == EVENTS
    assert read_events(platform).num_rows == pytest.approx(EVENTS, rel=0.02)


def test_default_event_count_and_end_date(tmp_path: Path) -> None:
    summary = generate(tmp_path, users=200, accounts=3, days=2)
    assert read_events(summary).num_rows == pytest.approx(50 * 200, rel=0.02)
    assert summary.end_date == dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def test_summary_matches_the_files_and_lists_big_accounts_first(
    platform: GenerateSummary,
) -> None:
    assert platform.users == read(platform, "users").num_rows
    assert platform.pins == read(platform, "pins").num_rows
    assert platform.interests == read(platform, "interests").num_rows
    assert platform.accounts == read(platform, "ad_accounts").num_rows
    owners = column(read(platform, "pins"), "ad_account_id")
    sizes = [owners.count(account) for account in platform.ad_account_ids]
    assert sorted(platform.ad_account_ids) == sorted(
        column(read(platform, "ad_accounts"), "ad_account_id")
    )
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] > 3 * sizes[-1], "advertiser sizes are Zipf-distributed"


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    def small(name: str, seed: int) -> GenerateSummary:
        return generate(
            tmp_path / name,
            users=300,
            accounts=4,
            days=3,
            end_date=END_DATE,
            events=5_000,
            seed=seed,
        )

    first, second, other = small("a", seed=3), small("b", seed=3), small("c", seed=4)

    def files(summary: GenerateSummary) -> dict[str, bytes]:
        root = summary.out_dir
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert files(first) == files(second)
    assert first.ad_account_ids == second.ad_account_ids
    assert files(first)["users.parquet"] != files(other)["users.parquet"]


def test_engaged_audience_over_indexes_on_the_advertisers_focus(
    platform: GenerateSummary,
) -> None:
    """People who engage with an advertiser's pins also engage, elsewhere on the platform, with
    its focus category much more than the average user: the latent interests carry through.

    The advertiser's own pins are left out of the comparison, since engaging with them makes the
    category an interest by definition.
    """
    root = platform.out_dir
    con = duckdb.connect()
    for table in ("interests", "pins"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{root}/{table}.parquet')")
    con.execute(
        "CREATE VIEW events AS SELECT * FROM "
        f"read_parquet('{root}/events/*/*.parquet', hive_partitioning = false)"
    )
    indexes = con.execute(
        """
        WITH RECURSIVE category(interest_id, category_id) AS (
            SELECT interest_id, interest_id FROM interests WHERE parent_id IS NULL
            UNION ALL
            SELECT i.interest_id, c.category_id FROM interests i
            JOIN category c ON i.parent_id = c.interest_id
        ),
        pin AS (
            SELECT p.pin_id, p.ad_account_id, c.category_id
            FROM pins p LEFT JOIN category c USING (interest_id)
        ),
        engagement AS (
            SELECT DISTINCT e.user_id, p.ad_account_id, p.category_id
            FROM events e JOIN pin p USING (pin_id) WHERE e.event_type <> 'IMPRESSION'
        ),
        focus AS (
            SELECT ad_account_id, arg_max(category_id, n) AS category_id
            FROM (SELECT ad_account_id, category_id, count(*) AS n FROM pin
                  WHERE ad_account_id IS NOT NULL AND category_id IS NOT NULL GROUP BY ALL)
            GROUP BY ad_account_id
        ),
        everyone AS (SELECT count(DISTINCT user_id) AS n FROM events),
        engaged AS (SELECT DISTINCT ad_account_id, user_id FROM engagement
                    WHERE ad_account_id IS NOT NULL),
        elsewhere AS (  -- (account, user): user engaged with the account's focus on other pins
            SELECT DISTINCT f.ad_account_id, g.user_id FROM focus f
            JOIN engagement g ON g.category_id = f.category_id
            AND g.ad_account_id IS DISTINCT FROM f.ad_account_id
        )
        SELECT
            a.ad_account_id,
            count(*) AS audience,
            count(w.user_id) / count(*) AS ratio,
            (SELECT count(*) FROM elsewhere x WHERE x.ad_account_id = a.ad_account_id)
                / (SELECT n FROM everyone) AS platform_ratio
        FROM engaged a
        LEFT JOIN elsewhere w USING (ad_account_id, user_id)
        GROUP BY a.ad_account_id
        HAVING count(*) >= 100
        ORDER BY audience DESC
        """
    ).fetchall()
    assert len(indexes) >= 3
    for account, _audience, ratio, platform_ratio in indexes[:3]:
        assert ratio / platform_ratio > 1.5, account


def test_interests_follow_demographics(platform: GenerateSummary) -> None:
    """Latent interests depend on gender, so audiences of different categories differ in gender
    mix the way they do on a real platform."""
    root = platform.out_dir
    female_share = dict(
        duckdb.execute(
            f"""
            WITH RECURSIVE category(interest_id, name) AS (
                SELECT interest_id, name FROM read_parquet('{root}/interests.parquet')
                WHERE parent_id IS NULL
                UNION ALL
                SELECT i.interest_id, c.name FROM read_parquet('{root}/interests.parquet') i
                JOIN category c ON i.parent_id = c.interest_id
            ),
            engaged AS (
                SELECT DISTINCT c.name, e.user_id
                FROM read_parquet('{root}/events/*/*.parquet', hive_partitioning = false) e
                JOIN read_parquet('{root}/pins.parquet') p USING (pin_id)
                JOIN category c USING (interest_id)
                WHERE e.event_type <> 'IMPRESSION'
            )
            SELECT name, avg((u.gender = 'female')::INT)
            FROM engaged JOIN read_parquet('{root}/users.parquet') u USING (user_id)
            GROUP BY name
            """
        ).fetchall()
    )
    assert female_share["Women's fashion"] > female_share["Men's fashion"] + 0.3
    assert female_share["Beauty"] > female_share["Vehicles"] + 0.3


# --- CLI -----------------------------------------------------------------------------------------

runner = CliRunner()
SMALL = ["--users", "150", "--accounts", "3", "--days", "2", "--end-date", "2026-03-31"]


def test_cli_writes_a_dataset_and_prints_a_json_summary(tmp_path: Path) -> None:
    out_dir = tmp_path / "data"
    result = runner.invoke(app, ["generate", str(out_dir), *SMALL, "--events", "3000", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["events"] == 3000
    assert (summary["start_date"], summary["end_date"]) == ("2026-03-30", "2026-03-31")
    assert len(summary["ad_account_ids"]) == 3
    assert (out_dir / "events" / "date=2026-03-31" / "part-0.parquet").is_file()


def test_cli_refuses_a_non_empty_out_dir(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["generate", str(tmp_path), *SMALL])
    assert result.exit_code == 2
    assert "not empty" in result.stderr and "--force" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_cli_force_replaces_generated_tables_and_keeps_everything_else(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    stale = tmp_path / "events" / "date=2001-01-01" / "part-0.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    result = runner.invoke(app, ["generate", str(tmp_path), *SMALL, "--force"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not stale.parent.exists(), "partitions of an earlier window must not leak in"
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == [
        "date=2026-03-30",
        "date=2026-03-31",
    ]
