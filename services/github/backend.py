"""The PyGithub clients of the service: created once, run off the event loop, failures made readable.

PyGithub is synchronous, so every call runs in a worker thread of a dedicated pool. Its Requester is not
safe to share between threads (the connection object keeps the request being sent in attributes, see
PyGithub/PyGithub#2052), so the backend holds one ``Github`` client per allowed concurrent call and lends
each to one thread at a time. A :class:`FairShare` of the clients bounds concurrency: a call waits for a
free client, never for the event loop, and one caller holds at most its share (``MCP_CLIENT_SHARE``) of
them, so its slow calls cannot keep every other caller waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException, RateLimitExceededException
from prometheus_client import CollectorRegistry, Gauge
from urllib3.util import Retry

from libmcp import ToolError
from libmcp.fairness import FairShare, ShareTimeout, share_of
from services.github import VERSION
from services.github.models import GithubResult
from services.github.settings import GithubSettings

logger = logging.getLogger("services.github")

T = TypeVar("T")

LOW_RATE_LIMIT_FRACTION = 0.1
"""Below this share of the rate limit left, results and errors say so."""

# Connection failures are retried twice (nothing was sent); HTTP statuses never are, so a rate limit
# or a 5xx comes back at once instead of PyGithub's default retry loop sleeping inside a tool call.
_RETRY = Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, backoff_factor=0.2)


@dataclass(frozen=True, slots=True)
class RateSnapshot:
    """The rate-limit headers of GitHub's last answer to one call."""

    resource: str
    remaining: int
    limit: int
    reset: int

    @property
    def low(self) -> bool:
        return self.limit > 0 and self.remaining < self.limit * LOW_RATE_LIMIT_FRACTION

    def describe(self) -> str:
        return f"{self.remaining} of {self.limit} {self.resource} requests left; {describe_reset(self.reset)}"


def describe_reset(reset: int) -> str:
    """``resets at 2026-11-26T10:00:00Z (in 42 min)`` from an ``x-ratelimit-reset`` epoch."""
    when = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    seconds = max(0, reset - int(time.time()))
    wait = f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"
    return f"the limit resets at {when} (in {wait})"


class RateLimitGauges:
    """``github_rate_limit_*`` gauges, by GitHub rate-limit resource (core, search, ...)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.remaining = Gauge(
            "github_rate_limit_remaining",
            "GitHub API requests left in the current rate-limit window, from the last response.",
            ["resource"],
            registry=registry,
        )
        self.limit = Gauge(
            "github_rate_limit_limit",
            "GitHub API requests allowed per rate-limit window, from the last response.",
            ["resource"],
            registry=registry,
        )
        self.reset = Gauge(
            "github_rate_limit_reset_timestamp_seconds",
            "Unix time at which the GitHub rate-limit window resets, from the last response.",
            ["resource"],
            registry=registry,
        )

    def record(self, snapshot: RateSnapshot) -> None:
        self.remaining.labels(snapshot.resource).set(snapshot.remaining)
        self.limit.labels(snapshot.resource).set(snapshot.limit)
        self.reset.labels(snapshot.resource).set(snapshot.reset)


@dataclass(slots=True)
class _Outcome:
    value: Any
    error: Exception | None
    rate: RateSnapshot | None


class GithubBackend:
    """A pool of PyGithub clients for one service, and the one place their failures become messages."""

    def __init__(
        self,
        settings: GithubSettings,
        registry: CollectorRegistry,
        *,
        timeout_s: int,
        client_share: float = 1.0,
        queue_timeout_s: float = 10.0,
    ) -> None:
        self.api_url = settings.github_api_url
        self.authenticated = bool(settings.github_token)
        self.max_concurrency = settings.github_max_concurrency
        self.gauges = RateLimitGauges(registry)
        self.last_rate: dict[str, RateSnapshot] = {}
        self.credentials_rejected = False
        self._executor = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="github")
        self.queue_timeout_s = queue_timeout_s
        self._slots = FairShare(
            self.max_concurrency,
            share_of(self.max_concurrency, client_share),
            what="GitHub API clients",
            settings="GITHUB_MAX_CONCURRENCY, MCP_CLIENT_SHARE and MCP_QUEUE_TIMEOUT_S",
        )
        self._idle: asyncio.Queue[Github] = asyncio.Queue()
        self._clients = [self._client(settings, timeout_s) for _ in range(self.max_concurrency)]
        for client in self._clients:
            self._idle.put_nowait(client)

    @staticmethod
    def _client(settings: GithubSettings, timeout_s: int) -> Github:
        return Github(
            auth=Auth.Token(settings.github_token) if settings.github_token else None,
            base_url=settings.github_api_url,
            timeout=timeout_s,
            user_agent=f"mcp-sse-github/{VERSION}",
            retry=_RETRY,
            pool_size=1,
            lazy=True,
        )

    async def call(
        self, operation: Callable[[Github], T], *, resource: str, subject: str, identity: str
    ) -> T:
        """Run ``operation(client)`` in a worker thread; GitHub failures raise :class:`ToolError`.

        ``resource`` is the rate-limit resource the call counts against (``core`` or ``search``);
        ``subject`` names what was asked for, for "not found" messages; ``identity`` is the caller whose
        share of the clients the call uses.
        """
        try:
            await self._slots.acquire(identity, self.queue_timeout_s)
        except ShareTimeout as exc:
            raise ToolError(str(exc)) from None
        client = self._idle.get_nowait()  # a held slot always has an idle client: both return together
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, _run, client, operation, resource)
        # The client and the slot go back when the thread is done, not when the caller stops waiting
        # (a tool timeout cancels the caller while the thread still uses the client).
        future.add_done_callback(partial(self._finished, client, identity))
        outcome: _Outcome = await asyncio.shield(future)
        if outcome.error is not None:
            if isinstance(outcome.error, GithubException) and outcome.error.status == 401:
                self.credentials_rejected = True
            raise ToolError(self.describe_failure(outcome.error, subject, outcome.rate)) from outcome.error
        self.credentials_rejected = False
        value: T = outcome.value
        if outcome.rate is not None and outcome.rate.low and isinstance(value, GithubResult):
            value.rate_limit_warning = f"GitHub API rate limit is low: {outcome.rate.describe()}."
        return value

    def _finished(self, client: Github, identity: str, future: asyncio.Future[_Outcome]) -> None:
        self._idle.put_nowait(client)
        self._slots.release(identity)
        if future.cancelled():
            return
        rate = future.result().rate
        if rate is not None:
            self.last_rate[rate.resource] = rate
            self.gauges.record(rate)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        for client in self._clients:
            client.close()

    # Failures -----------------------------------------------------------------------------------

    def describe_failure(self, error: Exception, subject: str, rate: RateSnapshot | None) -> str:
        """A message a model (or a person) can act on. It never contains the token."""
        if isinstance(error, GithubException):
            headers = {str(key).lower(): str(value) for key, value in (error.headers or {}).items()}
            if _is_rate_limit(error, headers):
                data = error.data if isinstance(error.data, dict) else {}
                return self._describe_rate_limit(str(data.get("message") or "no message"), headers)
        text = self._describe_error(error, subject)
        if rate is not None and rate.low:
            text += f" GitHub API rate limit is low: {rate.describe()}."
        return text

    def _describe_error(self, error: Exception, subject: str) -> str:
        if isinstance(error, requests.Timeout):
            return f"The GitHub API at {self.api_url} did not answer in time; try again later."
        if isinstance(error, requests.RequestException):
            kind = type(error).__name__
            return f"Could not reach the GitHub API at {self.api_url} ({kind}); check GITHUB_API_URL."
        if not isinstance(error, GithubException):
            logger.warning("reading GitHub's answer for %s failed", subject, exc_info=error)
            return f"GitHub's answer for {subject} could not be read ({type(error).__name__})."
        status = error.status
        data = error.data if isinstance(error.data, dict) else {}
        message = str(data.get("message") or error.message or "no message")
        if status == 401:
            if self.authenticated:
                return "GitHub rejected GITHUB_TOKEN (401): the token is invalid, expired or revoked."
            return "GitHub requires authentication for this request (401): set GITHUB_TOKEN."
        if status == 404:
            hint = (
                "or the token cannot see it (GitHub answers 404 for private resources it hides)"
                if self.authenticated
                else "or it is private (no GITHUB_TOKEN is set, so only public repositories are visible)"
            )
            return f"Not found on GitHub: {subject}. It does not exist, {hint}."
        detail = _documentation(data)
        if status == 403:
            return (
                f"GitHub refused {subject} (403 {message}): the token may lack a needed permission{detail}."
            )
        if status == 422:
            problems = _validation_errors(data.get("errors"))
            listed = f": {problems}" if problems else ""
            return f"GitHub rejected the request as invalid (422 {message}){listed}{detail}."
        return f"GitHub answered {status} for {subject}: {message}{detail}."

    def _describe_rate_limit(self, message: str, headers: dict[str, str]) -> str:
        resource = headers.get("x-ratelimit-resource", "core")
        remaining, limit, reset = (
            headers.get(f"x-ratelimit-{key}") for key in ("remaining", "limit", "reset")
        )
        retry_after = headers.get("retry-after")
        if remaining == "0" and not retry_after:
            text = f"GitHub API rate limit exceeded ({resource}: 0 of {limit or '?'} requests left)"
            if reset and reset.isdigit():
                text += f"; {describe_reset(int(reset))}"
            if not self.authenticated:
                text += ". Unauthenticated clients get 60 requests an hour; set GITHUB_TOKEN for more"
            return text + "."
        # Secondary rate limits (too many requests at once or too fast); GitHub's documented back-off:
        # honour retry-after, else wait for the reset when nothing is left, else at least a minute.
        text = f"GitHub secondary rate limit hit ({message.rstrip('.')})"
        if retry_after and retry_after.isdigit():
            return f"{text}: retry after {retry_after} s."
        if remaining == "0" and reset and reset.isdigit():
            return f"{text}: {describe_reset(int(reset))}."
        return f"{text}: wait at least a minute before retrying."

    def health_detail(self) -> str:
        mode = (
            "token configured" if self.authenticated else "anonymous (60 requests an hour; set GITHUB_TOKEN)"
        )
        parts = [f"{mode}, API {self.api_url}"]
        parts += [
            f"{snapshot.resource}: {snapshot.remaining}/{snapshot.limit} left"
            for snapshot in self.last_rate.values()
        ]
        return "; ".join(parts)


def _run(client: Github, operation: Callable[[Github], Any], resource: str) -> _Outcome:
    """Runs in a worker thread: the operation, then the rate-limit headers of its last response."""
    requester = client.requester
    requester.rate_limiting = (-1, -1)
    requester.rate_limiting_resettime = 0
    value: Any = None
    error: Exception | None = None
    try:
        value = operation(client)
    except Exception as exc:  # handed to the event loop, which turns it into a message
        error = exc
    remaining, limit = requester.rate_limiting
    rate = RateSnapshot(resource, remaining, limit, requester.rate_limiting_resettime) if limit >= 0 else None
    return _Outcome(value, error, rate)


def _is_rate_limit(error: GithubException, headers: dict[str, str]) -> bool:
    if isinstance(error, RateLimitExceededException) or error.status == 429:
        return True
    return error.status == 403 and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)


def _documentation(data: dict[str, Any]) -> str:
    url = data.get("documentation_url")
    return f" (see {url})" if isinstance(url, str) and url else ""


def _validation_errors(errors: Any) -> str:
    """GitHub's ``errors`` array: strings, or objects with resource, field, code and maybe message."""
    if not isinstance(errors, list):
        return ""
    problems = []
    for item in errors:
        if isinstance(item, dict):
            where = ".".join(str(item[key]) for key in ("resource", "field") if item.get(key))
            what = item.get("message") or item.get("code") or "invalid"
            value = f" (value {item['value']!r})" if "value" in item else ""
            problems.append(f"{where + ': ' if where else ''}{what}{value}")
        else:
            problems.append(str(item))
    return "; ".join(problems)
