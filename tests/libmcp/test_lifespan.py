"""A service's lifespan opens its backends once: the state it yields is what every tool and health check
reads as ``ctx.state``, the code after its ``yield`` closes them on shutdown, and its failures are
reported where an operator looks (start-up fails with the error; one on exit is logged)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from libmcp import (
    CheckContext,
    CheckResult,
    Server,
    ServerSettings,
    Service,
    ServiceSettings,
    StartupContext,
    ToolContext,
    ToolOutput,
    create_app,
)
from tests.libmcp.conftest import rpc
from tests.support.servers import run_server


class PoolSettings(ServiceSettings):
    pool_name: str = "primary"


@dataclass
class Pool:
    """A stand-in backend that remembers what was done to it."""

    name: str
    events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PoolState:
    pool: Pool


Context = ToolContext[PoolSettings, PoolState]


class PoolName(ToolOutput):
    name: str
    events: list[str]


class StateSeen(ToolOutput):
    state_is_none: bool


def pooled_service(events: list[str]) -> Service[PoolSettings, PoolState]:
    """A service whose lifespan opens a :class:`Pool` sharing ``events``, and closes it after the yield."""
    service: Service[PoolSettings, PoolState] = Service("pooled", version="1", settings_class=PoolSettings)

    @service.lifespan
    async def open_pool(ctx: StartupContext[PoolSettings]) -> AsyncIterator[PoolState]:
        pool = Pool(ctx.settings.pool_name, events)
        events.append(f"opened {pool.name}")
        try:
            yield PoolState(pool)
        finally:
            events.append(f"closed {pool.name}")

    @service.tool(read_only=True)
    async def pool_name(ctx: Context) -> PoolName:
        """Name the pool the lifespan opened."""
        return PoolName(name=ctx.state.pool.name, events=ctx.state.pool.events)

    @service.tool(read_only=True)
    async def broken() -> PoolName:
        """Fail as a bug would."""
        raise RuntimeError("a bug in the tool")

    @service.health_check("pool")
    async def pool(ctx: CheckContext[PoolSettings, PoolState]) -> CheckResult:
        return CheckResult("ok", f"pool {ctx.state.pool.name} open")

    return service


@contextlib.contextmanager
def serving(service: Service[PoolSettings, PoolState], **settings: str) -> Iterator[tuple[str, Server]]:
    """The service on a loopback port, stopped (its lifespan left) when the block ends."""
    server = Server(service, PoolSettings(**settings), ServerSettings.model_validate({}))
    with run_server(server) as url:
        yield url, server


def call(url: str, tool: str) -> dict[str, Any]:
    result: dict[str, Any] = rpc(url, "tools/call", {"name": tool, "arguments": {}}).json()["result"]
    return result


def test_the_state_the_lifespan_yields_reaches_tools_and_health_checks() -> None:
    events: list[str] = []
    with serving(pooled_service(events), pool_name="reports") as (url, server):
        result = call(url, "pool_name")
        health = httpx.get(f"{url}/health").json()

    assert result["structuredContent"] == {"name": "reports", "events": ["opened reports"]}
    assert health["checks"]["pool"] == {"status": "ok", "detail": "pool reports open"}
    assert server.state == PoolState(Pool("reports", events))


def test_the_code_after_yield_runs_on_shutdown() -> None:
    events: list[str] = []
    with serving(pooled_service(events)) as (url, _):
        assert call(url, "pool_name")["isError"] is False
        assert events == ["opened primary"]

    assert events == ["opened primary", "closed primary"]


def test_the_code_after_yield_runs_also_after_a_tool_failed() -> None:
    events: list[str] = []
    with serving(pooled_service(events)) as (url, _):
        answer = rpc(url, "tools/call", {"name": "broken", "arguments": {}}).json()
        # Whichever way a bug is answered (an internal error, an isError result), the call failed.
        assert "error" in answer or answer["result"]["isError"] is True

    assert events == ["opened primary", "closed primary"]


async def test_a_lifespan_that_raises_before_yielding_fails_start_up_with_its_error() -> None:
    service: Service[PoolSettings, PoolState] = Service(
        "unreachable", version="1", settings_class=PoolSettings
    )

    @service.lifespan
    async def open_pool(ctx: StartupContext[PoolSettings]) -> AsyncIterator[PoolState]:
        raise ConnectionRefusedError(f"pool {ctx.settings.pool_name} at 127.0.0.1:1 refused the connection")
        yield PoolState(Pool("never"))  # unreachable: makes this an async generator

    app = create_app(Server(service, PoolSettings(), ServerSettings.model_validate({})))
    with pytest.raises(ConnectionRefusedError) as caught:
        async with app.lifespan():
            pytest.fail("the app served although its lifespan failed")
    assert str(caught.value) == "pool primary at 127.0.0.1:1 refused the connection"


def test_an_exception_on_exit_is_logged_and_does_not_hide_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    service: Service[PoolSettings, PoolState] = Service("leaky", version="1", settings_class=PoolSettings)

    @service.lifespan
    async def open_two(ctx: StartupContext[PoolSettings]) -> AsyncIterator[PoolState]:
        try:
            try:
                yield PoolState(Pool("first"))
            finally:
                events.append("closing first")
                raise OSError("the first pool did not close")
        finally:
            events.append("closing second")
            raise RuntimeError("the second pool did not close either")

    with caplog.at_level(logging.ERROR, logger="libmcp.server"), serving(service) as (url, _):
        assert httpx.get(f"{url}/health").status_code == 200

    assert events == ["closing first", "closing second"]
    [record] = [record for record in caplog.records if record.name == "libmcp.server"]
    assert record.getMessage() == "the lifespan of leaky failed while closing its backends"
    assert "RuntimeError: the second pool did not close either" in caplog.text
    assert "OSError: the first pool did not close" in caplog.text


def test_a_service_without_lifespan_gives_its_tools_and_checks_no_state() -> None:
    service = Service("stateless", version="1")
    seen_by_checks: list[object] = []

    @service.tool(read_only=True)
    async def state_seen(ctx: ToolContext) -> StateSeen:
        """Say whether there is a state."""
        return StateSeen(state_is_none=ctx.state is None)

    @service.health_check("nothing")
    async def nothing(ctx: CheckContext) -> CheckResult:
        seen_by_checks.append(ctx.state)
        return CheckResult("ok")

    server = Server(service, None, ServerSettings.model_validate({}))
    with run_server(server) as url:
        result = call(url, "state_seen")
        assert httpx.get(f"{url}/health").status_code == 200

    assert result["structuredContent"] == {"state_is_none": True}
    assert seen_by_checks == [None]
    assert server.state is None


# --- declaring it ---------------------------------------------------------------------------------


def test_a_lifespan_that_is_not_an_async_generator_is_refused() -> None:
    service: Service[PoolSettings, PoolState] = Service("pooled", version="1", settings_class=PoolSettings)

    async def open_pool(ctx: StartupContext[PoolSettings]) -> PoolState:
        return PoolState(Pool("returned, not yielded"))

    with pytest.raises(TypeError) as caught:
        service.lifespan(open_pool)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "the lifespan open_pool of service pooled must be an async generator function: "
        "open the backends, yield the state, close them after the yield"
    )


def test_a_second_lifespan_is_refused() -> None:
    service = pooled_service([])

    async def open_more(ctx: StartupContext[PoolSettings]) -> AsyncIterator[PoolState]:
        yield PoolState(Pool("more"))

    with pytest.raises(ValueError) as caught:
        service.lifespan(open_more)
    assert str(caught.value) == "service pooled already has a lifespan: open every backend in that one"
