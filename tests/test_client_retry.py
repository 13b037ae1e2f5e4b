"""The client's one retry policy: exponential backoff with full jitter, retryable errors only."""

from __future__ import annotations

import httpx
import pytest

from momentum.client import Backoff, MomentumAPIError, Retrying


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    low, high = Backoff(1.0, 8.0, rng=lambda: 0.0), Backoff(1.0, 8.0, rng=lambda: 1.0)
    assert [high.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [low.next_delay() for _ in range(6)] == [0.0] * 6  # full jitter: down to zero
    high.reset()
    assert [high.next_delay() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    for _ in range(5000):  # a long outage must not overflow the exponent
        assert high.next_delay() == 8.0


def test_backoff_delays_are_jittered_within_their_ceiling() -> None:
    backoff = Backoff(0.5, 30.0)
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(0.0 <= delay <= 30.0 for delay in delays)
    assert len(set(delays)) > 150  # drawn, not fixed: clients failing together spread out


def flaky(failures: list[Exception], answer: str = "ok") -> tuple[list[int], object]:
    calls: list[int] = []

    def call(value: int) -> str:
        calls.append(value)
        if failures:
            raise failures.pop(0)
        return answer

    return calls, call


def test_retryable_failures_are_retried_with_the_policys_delays() -> None:
    slept: list[float] = []
    heard: list[tuple[str, float]] = []
    retry = Retrying(
        4,
        Backoff(1.0, 8.0, rng=lambda: 1.0),
        slept.append,
        on_retry=lambda exc, delay: heard.append((type(exc).__name__, delay)),
    )
    failures: list[Exception] = [httpx.ConnectError("down"), MomentumAPIError(503, "x", "busy")]
    calls, call = flaky(failures)
    assert retry(call, 7) == "ok"  # type: ignore[arg-type]
    assert calls == [7, 7, 7] and slept == [1.0, 2.0]
    assert heard == [("ConnectError", 1.0), ("MomentumAPIError", 2.0)]
    # The backoff starts over for the next call.
    _, call = flaky([httpx.ReadTimeout("slow")])
    assert retry(call, 1) == "ok" and slept[-1] == 1.0  # type: ignore[arg-type]


def test_a_refusal_is_raised_at_once_without_retrying() -> None:
    slept: list[float] = []
    retry = Retrying(5, Backoff(0.5, 10.0), slept.append)
    calls, call = flaky([MomentumAPIError(409, "lease_lost", "not yours")])
    with pytest.raises(MomentumAPIError) as raised:
        retry(call, 1)  # type: ignore[arg-type]
    assert raised.value.status_code == 409 and calls == [1] and slept == []


def test_the_last_failure_is_raised_after_the_attempts_without_a_last_sleep() -> None:
    slept: list[float] = []
    retry = Retrying(3, Backoff(0.5, 10.0), slept.append)
    calls, call = flaky([httpx.ConnectError(f"down {n}") for n in range(5)])
    with pytest.raises(httpx.ConnectError, match="down 2"):
        retry(call, 1)  # type: ignore[arg-type]
    assert len(calls) == 3 and len(slept) == 2


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Retrying(0, Backoff(0.5, 10.0))
