"""HubSpot's three rate limits, emulated: ten-secondly rolling, search per second, daily."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from crm_sync.clock import Clock

TEN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call was refused with 429, in HubSpot's words."""

    policy: str
    message: str


class RateLimits:
    """Rolling windows over an injected clock; a refused call does not count."""

    def __init__(
        self,
        *,
        ten_secondly: int,
        search_per_second: int,
        daily: int,
        clock: Clock,
    ) -> None:
        self.ten_secondly = ten_secondly
        self.search_per_second = search_per_second
        self.daily = daily
        self._clock = clock
        self._calls: deque[float] = deque()
        self._searches: deque[float] = deque()
        self.daily_used = 0
        self._lock = threading.Lock()

    @staticmethod
    def _trim(window: deque[float], now: float, span: float) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    def admit(self, *, search: bool) -> Refusal | None:
        """Count the call, or say which limit refuses it."""
        with self._lock:
            now = self._clock.monotonic()
            self._trim(self._calls, now, TEN_SECONDS)
            self._trim(self._searches, now, 1.0)
            if self.daily_used >= self.daily:
                return Refusal("DAILY", "You have reached your daily limit.")
            if len(self._calls) >= self.ten_secondly:
                return Refusal(
                    "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit."
                )
            if search and len(self._searches) >= self.search_per_second:
                return Refusal("SECONDLY", "You have reached your secondly limit.")
            self._calls.append(now)
            if search:
                self._searches.append(now)
            self.daily_used += 1
            return None

    def headers(self) -> dict[str, str]:
        """The X-HubSpot-RateLimit-* headers of a non-search answer."""
        with self._lock:
            self._trim(self._calls, self._clock.monotonic(), TEN_SECONDS)
            return {
                "X-HubSpot-RateLimit-Max": str(self.ten_secondly),
                "X-HubSpot-RateLimit-Remaining": str(max(0, self.ten_secondly - len(self._calls))),
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Daily": str(self.daily),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily - self.daily_used)),
            }
