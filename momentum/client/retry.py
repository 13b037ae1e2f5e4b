"""The client side's one retry policy: exponential backoff with full jitter.

The reporter's sender thread, `momentum sync` and the worker's outcome reports all wait
this way between tries. Full jitter (a delay drawn uniformly below an exponential
ceiling) spreads out the clients that failed together, so a service coming back is not
met by all of them in the same instant.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from momentum.client.http import is_retryable

T = TypeVar("T")


class Backoff:
    """Delays of `uniform(0, min(cap, base * 2**attempt))`; `reset` after a success."""

    def __init__(self, base: float, cap: float, rng: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self.rng = base, cap, rng
        self.attempts = 0

    def next_delay(self) -> float:
        # The exponent stops growing once past any cap: 2.0**1100 would overflow.
        ceiling = min(self.cap, self.base * 2.0 ** min(self.attempts, 64))
        self.attempts += 1
        return self.rng() * ceiling

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class Retrying:
    """Calls with up to `attempts` tries, waiting between them, while `retryable(error)`.

    The last error (or the first one not worth retrying) is raised as is; `on_retry`
    hears of each failure that will be retried, with the delay before the next try.
    """

    attempts: int
    backoff: Backoff
    sleep: Callable[[float], None] = time.sleep
    retryable: Callable[[BaseException], bool] = is_retryable
    on_retry: Callable[[Exception, float], None] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def __call__(self, call: Callable[..., T], *args: Any) -> T:
        self.backoff.reset()
        attempt = 1
        while True:
            try:
                return call(*args)
            except Exception as exc:
                if attempt >= self.attempts or not self.retryable(exc):
                    raise
                delay = self.backoff.next_delay()
                if self.on_retry is not None:
                    self.on_retry(exc, delay)
                self.sleep(delay)
                attempt += 1
