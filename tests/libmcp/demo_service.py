"""A small service for exercising libmcp itself: echo, a no-op, a slow call, a deliberate error, a bug.

Run it as a process with ``python -m tests.libmcp.demo_service PORT`` (used by the SIGTERM tests).
"""

from __future__ import annotations

import asyncio
import sys

from pydantic import Field

from libmcp import (
    Service,
    ServiceSettings,
    ToolContext,
    ToolError,
    ToolInput,
    ToolOutput,
    build_server,
    serve,
)


class DemoSettings(ServiceSettings):
    demo_greeting: str = "hello"


service: Service[DemoSettings] = Service(
    "demo",
    version="0.0.1",
    title="Demo",
    instructions="A service for testing libmcp.",
    settings_class=DemoSettings,
    tools_page_size=2,
)


class EchoArgs(ToolInput):
    text: str = Field(description="Text to send back.")
    times: int = Field(default=1, ge=1, le=10, description="How many times to repeat it.")


class EchoResult(ToolOutput):
    text: str
    greeting: str


class SleepArgs(ToolInput):
    seconds: float = Field(ge=0, le=60, description="How long to sleep.")


class SleepResult(ToolOutput):
    slept: float


class Empty(ToolOutput):
    pass


class FailArgs(ToolInput):
    reason: str = Field(description="The error message to report.")


@service.tool(read_only=True, idempotent=True)
async def echo(args: EchoArgs, ctx: ToolContext[DemoSettings]) -> EchoResult:
    """Echo the text back, repeated."""
    return EchoResult(text=args.text * args.times, greeting=ctx.settings.demo_greeting)


@service.tool(read_only=True, idempotent=True)
async def noop() -> Empty:
    """Do nothing, fast."""
    return Empty()


@service.tool(read_only=True)
async def sleep(args: SleepArgs) -> SleepResult:
    """Sleep for a while, then answer."""
    await asyncio.sleep(args.seconds)
    return SleepResult(slept=args.seconds)


@service.tool(read_only=True)
async def fail(args: FailArgs) -> Empty:
    """Report a deliberate error."""
    raise ToolError(args.reason)


@service.tool(read_only=True)
async def crash() -> Empty:
    """Raise an unexpected exception (a bug)."""
    raise RuntimeError("secret internal detail")


if __name__ == "__main__":
    port = int(sys.argv[1])
    sys.exit(
        serve(build_server(service), port=port, metrics_port=int(sys.argv[2]) if len(sys.argv) > 2 else None)
    )
