"""Client-side pacing under the rate limit: the decision table and the sleeping `Pacer`."""

from __future__ import annotations

import pytest

from connectors.coldsend.pacing import Pacer, RateLimitState, pacing_delay, parse_rate_limit

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, 0.0),  # no headers seen yet
        (RateLimitState(100, 100, NOW + 60), 0.0),  # fresh window: full speed
        (RateLimitState(100, 21, NOW + 30), 0.0),  # above the low-water mark (20)
        (RateLimitState(100, 20, NOW + 30), 1.5),  # at it: spread 20 requests over 30 s
        (RateLimitState(100, 5, NOW + 10), 2.0),
        (RateLimitState(100, 1, NOW + 4), 4.0),  # the last request lands at the reset
        (RateLimitState(100, 0, NOW + 7), 7.25),  # nothing left: wait for the reset + margin
        (RateLimitState(100, 0, NOW - 1), 0.0),  # the window is already over
        (RateLimitState(1000, 150, NOW + 1500), 10.0),  # the hour window binds
        (RateLimitState(1000, 201, NOW + 1500), 0.0),
        (RateLimitState(3, 1, NOW + 30), 30.0),  # tiny limits still pace
        (RateLimitState(0, 0, NOW + 30), 0.0),  # nonsense limit: do not stall
    ],
)
def test_pacing_delay(state: RateLimitState | None, expected: float) -> None:
    assert pacing_delay(state, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {
                "x-ratelimit-limit": "100",
                "x-ratelimit-remaining": "9",
                "x-ratelimit-reset": str(int(NOW + 30)),
            },
            RateLimitState(100, 9, NOW + 30),
        ),
        ({"x-ratelimit-limit": "100", "x-ratelimit-remaining": "9"}, None),
        (
            {"x-ratelimit-limit": "lots", "x-ratelimit-remaining": "9", "x-ratelimit-reset": "5"},
            None,
        ),
        ({}, None),
    ],
)
def test_parse_rate_limit(headers: dict[str, str], expected: RateLimitState | None) -> None:
    assert parse_rate_limit(headers, now=NOW) == expected


def _headers(remaining: int, reset_in: float, limit: int = 100) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(int(NOW + reset_in)),
    }


def test_pacer_sleeps_what_the_table_says_and_forgets_a_spent_window() -> None:
    slept: list[float] = []
    pacer = Pacer(clock=lambda: NOW, sleep=slept.append)
    assert pacer.before_request() == 0.0
    pacer.observe(_headers(50, 30))
    assert pacer.before_request() == 0.0
    pacer.observe(_headers(10, 30))
    assert pacer.before_request() == pytest.approx(3.0)
    pacer.observe(_headers(0, 30))
    assert pacer.before_request() == pytest.approx(30.25)
    # After waiting out a spent window, the next response brings the new budget.
    assert pacer.before_request() == 0.0
    assert slept == pytest.approx([3.0, 30.25])
    assert pacer.slept == pytest.approx(33.25)


def test_pacer_ignores_responses_without_headers() -> None:
    slept: list[float] = []
    pacer = Pacer(clock=lambda: NOW, sleep=slept.append)
    pacer.observe(_headers(1, 10))
    pacer.observe({})
    assert pacer.before_request() == pytest.approx(10.0)


def test_disabled_pacer_never_sleeps() -> None:
    slept: list[float] = []
    pacer = Pacer(clock=lambda: NOW, sleep=slept.append, enabled=False)
    pacer.observe(_headers(0, 30))
    assert pacer.before_request() == 0.0
    assert slept == []


def test_pacer_leaves_waits_beyond_max_wait_to_the_server() -> None:
    slept: list[float] = []
    pacer = Pacer(clock=lambda: NOW, sleep=slept.append, max_wait=60)
    pacer.observe(_headers(0, 3000, limit=1000))
    assert pacer.before_request() == 0.0
    assert slept == []
