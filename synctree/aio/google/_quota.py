"""Google's quotas as rate limits: per-API profiles, headroom, and concurrency that backs off.

The documented quotas: the Directory API allows 2,400 queries per minute per user per
project, Classroom 1,200.  A batch of n calls counts as n queries, so the limiter is
asked for a token per part.  ``rate="95%"`` (the default) keeps that share of the profile, and
the rest absorbs a batch's burst: a batch holds at most the unused share of a window
(120 calls for the Directory API at 95%), so no window ever holds more than the quota.  Google's
403 ``quotaExceeded`` means too many requests at once: :meth:`Quota.crowded` halves the
API's concurrency (never below one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
from anyio.lowlevel import RunVar

from synctree.aio import RateLimiter

__all__ = ["DEFAULT_QUOTAS", "Quota", "parse_headroom"]

#: Queries per minute per user, per API (Google's documented defaults).
DEFAULT_QUOTAS: Mapping[str, int] = {"directory": 2400, "classroom": 1200}

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_headroom(rate: str | float) -> float:
    """``'90%'`` (or ``0.9``) as the share of the quota to use, in ``(0, 1]``."""
    share: float | None = None
    if isinstance(rate, str):
        match = _PERCENT.match(rate)
        if match:
            share = float(match[1]) / 100
    elif isinstance(rate, int | float) and not isinstance(rate, bool):
        share = float(rate)
    if share is None or not 0 < share <= 1:
        raise ValueError(f"'rate' must be a share of the quota such as '90%', got {rate!r}")
    return share


#: The limiters of one event loop's run, shared by every Quota with the same key: a reader
#: and a template of one sync draw on one quota, as Google counts them (per user, project).
_LIMITERS: RunVar[dict[tuple[str, str, float], _Api]] = RunVar("synctree_google_limiters")


@dataclass(frozen=True, slots=True)
class _Api:
    limiter: RateLimiter
    slots: anyio.CapacityLimiter
    taking: anyio.Lock  # a batch takes its n tokens in one go, not interleaved with others


class Quota:
    """The rate limiters and concurrency limits of the APIs one template or reader calls.

    :param quotas: queries per ``window`` seconds per API (default :data:`DEFAULT_QUOTAS`).
    :param rate: the share of each quota to use (``'90%'``).
    :param concurrency: requests in flight per API at most (lowered on ``quotaExceeded``).
    :param key: quotas of one key share their limits within a run (the API's URL).
    """

    def __init__(
        self,
        quotas: Mapping[str, int] | None = None,
        *,
        rate: str | float = "95%",
        window: float = 60.0,
        concurrency: int = 10,
        key: str = "google",
    ) -> None:
        given = dict(DEFAULT_QUOTAS if quotas is None else {**DEFAULT_QUOTAS, **quotas})
        for name, value in given.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'quotas' of {name!r} must be an int >= 1, got {value!r}")
        if not (isinstance(window, int | float) and window > 0):
            raise ValueError(f"'quota_window' must be > 0 seconds, got {window!r}")
        self.share = parse_headroom(rate)
        self.quotas = given
        self.window = float(window)
        self.concurrency = concurrency
        self.key = key

    def __repr__(self) -> str:
        return f"Quota({self.quotas!r}, rate={self.share:.0%}, window={self.window:g})"

    def per_second(self, api: str) -> float:
        """The calls per second this quota lets through for ``api``."""
        return self.quotas[api] * self.share / self.window

    def _api(self, api: str) -> _Api:
        # Made on first use, inside the event loop that runs the calls, and shared there
        # with the other quotas of the same key (the reader's and the template's).
        try:
            limiters = _LIMITERS.get()
        except LookupError:
            limiters = {}
            _LIMITERS.set(limiters)
        rate = self.per_second(api)
        found = limiters.get((self.key, api, rate))
        if found is None:
            found = limiters[self.key, api, rate] = _Api(
                RateLimiter(rate), anyio.CapacityLimiter(self.concurrency), anyio.Lock()
            )
        return found

    def headroom(self, api: str) -> int:
        """The most calls one batch of ``api`` may hold: a batch arrives as a burst, and
        paced at ``share`` of the quota, a burst of the quota's unused share never takes a
        window past it (``quota * (1 - share)``, at least 1)."""
        return max(1, int(self.quotas[api] * (1 - self.share) + 1e-9))

    def limiter(self, api: str) -> RateLimiter:
        return self._api(api).limiter

    def slots(self, api: str) -> anyio.CapacityLimiter:
        return self._api(api).slots

    async def acquire(self, api: str, calls: int = 1) -> None:
        """Wait until ``calls`` queries of ``api`` fit in its quota (a batch counts each)."""
        found = self._api(api)
        if calls == 1:
            await found.limiter.acquire()
            return
        async with found.taking:
            for _ in range(calls):
                await found.limiter.acquire()

    def pause(self, api: str, seconds: float) -> None:
        """Hold every call of ``api`` for ``seconds`` (Google said it is over its rate)."""
        self._api(api).limiter.pause_until(anyio.current_time() + seconds)

    def crowded(self, api: str) -> int:
        """Halve ``api``'s concurrency after a ``quotaExceeded``; the new limit."""
        slots = self._api(api).slots
        slots.total_tokens = max(1, int(slots.total_tokens) // 2)
        return int(slots.total_tokens)
