"""What is known about one incoming message before it is answered: :class:`CallInfo`.

Its own module so that the server (which answers) and observability (which records) both use it
without importing each other.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from libmcp.protocol import Revision

_REQUEST_ID_PREFIX = secrets.token_hex(4)
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    """16 hex digits: a random per-process prefix (replicas differ) and a counter (cheaper than uuid4)."""
    return _REQUEST_ID_PREFIX + "%08x" % (next(_request_numbers) & 0xFFFFFFFF)


@dataclass(slots=True)
class CallInfo:
    """Where a message came from: transport, revision (era) and negotiated version, caller, trace context."""

    transport: str
    revision: Revision
    protocol_version: str
    client_id: str = "anonymous"
    traceparent: str | None = None
    session_id: str | None = None
    request_id: str = field(default_factory=new_request_id)
    # Sends a notification to the caller on a stream its request can be answered on; None: no stream.
    notify: Callable[[dict[str, Any]], None] | None = None
