"""Rate limits (SPEC §1): a token bucket per client id, reported on every authenticated response."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinsights.server.ratelimit import MemoryLimiter, RateLimit
from tests.conftest import RunningServer, mint

INSIGHTS = "/v5/ad_accounts/{account}/audience_insights?audience_insight_type=YOUR_TOTAL_AUDIENCE"
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("100/s", 100, 1.0),
        ("6000/min", 6000, 60.0),
        ("10/hour", 10, 3600.0),
        (" 5 / seconds ", 5, 1.0),
    ],
)
def test_rate_parses_count_per_unit_with_double_burst(text: str, count: int, period: float) -> None:
    limit = RateLimit.parse(text)
    assert (limit.count, limit.period, limit.burst) == (count, period, 2 * count)


@pytest.mark.parametrize("text", ["", "100", "0/s", "-1/s", "100/ms", "fast", "1.5/s"])
def test_invalid_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit.parse(text)


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(RateLimit.parse("10/s"), clock=clock)
    decisions = [limiter.spend("a") for _ in range(21)]
    assert all(d.allowed for d in decisions[:20]) and not decisions[20].allowed
    assert decisions[0].limit == 20 and decisions[0].remaining == 19
    assert decisions[20].retry_after == 1 and decisions[20].reset == 2
    clock.now += 0.5  # five requests' worth
    assert [limiter.spend("a").allowed for _ in range(6)] == [True] * 5 + [False]
    assert limiter.spend("b").allowed, "buckets are per client"


def test_slow_rate_reports_retry_after_in_whole_seconds() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(RateLimit.parse("1/min"), clock=clock)
    assert limiter.spend("a").allowed and limiter.spend("a").allowed
    refused = limiter.spend("a")
    assert not refused.allowed and refused.retry_after == 60 and refused.reset == 120


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (INSIGHTS.format(account="1001"), 200),
        (INSIGHTS.format(account="1002"), 403),  # token for 1001 only
        ("/v5/ad_accounts/1001/insights/audiences/PARTNER/ENGAGEMENT/99", 404),
        ("/v5/ad_accounts/1001/audience_insights", 400),
    ],
)
def test_every_authenticated_response_carries_rate_headers(
    server: RunningServer, path: str, status: int
) -> None:
    response = server.get(path, mint(["1001"]))
    assert response.status_code == status
    limit, remaining, reset = (int(response.headers[h]) for h in RATE_HEADERS)
    assert limit == 200_000 and 0 <= remaining < limit and reset >= 0


def test_unauthenticated_responses_carry_no_rate_headers(server: RunningServer) -> None:
    response = server.get(INSIGHTS.format(account="1001"))
    assert response.status_code == 401
    assert not any(h in response.headers for h in RATE_HEADERS)


def test_limits_are_per_client_and_configurable(handmade_store: Path, server_factory) -> None:
    limited = server_factory(handmade_store, rate_limit="3/min")
    greedy, patient = mint(client_id="greedy"), mint(client_id="patient")
    assert [limited.get(INSIGHTS.format(account="1001"), greedy).status_code for _ in range(7)] == [
        200
    ] * 6 + [429]
    refused = limited.get(INSIGHTS.format(account="1001"), greedy)
    assert refused.json()["code"] == 8 and int(refused.headers["retry-after"]) >= 19
    assert limited.get(INSIGHTS.format(account="1001"), patient).status_code == 200
