"""robots.txt, honoured by ``fetch`` as the reference fetch server does (FETCH_IGNORE_ROBOTS turns it off).

Each origin's robots.txt is fetched through the same guarded client, parsed with Protego and kept
for a few minutes. As in the reference server: 401/403 means autonomous fetching is not allowed,
another 4xx means no rules. A 5xx means the site cannot say, which RFC 9309 reads as "disallow".
"""

from __future__ import annotations

import time
from collections import OrderedDict

import httpx
from protego import Protego

from services.fetch.client import FetchClient, FetchError

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
ROBOTS_TTL_S = 300.0
ROBOTS_CACHE_SIZE = 512

_ALLOW_ALL = Protego.parse("")


class RobotsPolicy:
    """Answers "may this user agent fetch this URL?" per robots.txt, with a small per-origin cache."""

    def __init__(self, client: FetchClient, user_agent: str) -> None:
        self.client = client
        self.user_agent = user_agent
        self._cache: OrderedDict[str, tuple[float, Protego | str]] = OrderedDict()

    async def check(self, url: httpx.URL) -> None:
        """Raise a ``robots`` :class:`FetchError` when robots.txt disallows ``url`` for our user agent."""
        robots_url = url.copy_with(path="/robots.txt", query=None, fragment=None)
        rules = await self._rules(robots_url)
        if isinstance(rules, str):
            raise FetchError("robots", f"robots.txt refused: {rules}. {_HINT}")
        if not rules.can_fetch(str(url), self.user_agent):
            raise FetchError(
                "robots",
                f"robots.txt refused: {robots_url} disallows {url} "
                f"for user agent {self.user_agent!r}. {_HINT}",
            )

    async def _rules(self, robots_url: httpx.URL) -> Protego | str:
        key = str(robots_url)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            self._cache.move_to_end(key)
            return cached[1]
        rules = await self._load(robots_url)
        self._cache[key] = (time.monotonic() + ROBOTS_TTL_S, rules)
        while len(self._cache) > ROBOTS_CACHE_SIZE:
            self._cache.popitem(last=False)
        return rules

    async def _load(self, robots_url: httpx.URL) -> Protego | str:
        try:
            response = await self.client.request("GET", robots_url, max_bytes=ROBOTS_MAX_BYTES)
        except FetchError as exc:
            if exc.kind in ("blocked", "timeout"):
                raise
            raise FetchError(
                exc.kind, f"Could not read {robots_url} to check robots.txt: {exc.message}"
            ) from None
        if response.status in (401, 403):
            return f"{robots_url} answered {response.status}, so autonomous fetching is taken as not allowed"
        if 400 <= response.status < 500:
            return _ALLOW_ALL
        if response.status >= 500:
            return (
                f"{robots_url} answered {response.status}, so the site is taken to disallow fetching for now"
            )
        return Protego.parse(response.body.decode("utf-8", errors="replace"))


_HINT = "The user can fetch the page themselves, or the operator can set FETCH_IGNORE_ROBOTS=true"
