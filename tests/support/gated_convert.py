"""A conversion that waits at a gate, so a test can hold conversion processes running, then let them go.

The fetch service's conversion processes run it (``Converter.function``); they find the gate, a
directory, in ``MCP_TEST_CONVERT_GATE``, which must be set before the service starts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from services.fetch import convert as converting
from services.fetch.convert import Converted

GATE_ENV = "MCP_TEST_CONVERT_GATE"
FUNCTION = "tests.support.gated_convert:convert"


def convert(body: bytes, content_type: str, base_url: str, *, raw: bool, max_bytes: int) -> Converted:
    gate = Path(os.environ[GATE_ENV])
    mark = gate / f"running-{os.getpid()}"
    mark.touch()
    try:
        deadline = time.monotonic() + 60
        while not (gate / "open").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return converting.convert(body, content_type, base_url, raw=raw, max_bytes=max_bytes)
    finally:
        mark.unlink(missing_ok=True)


class Gate:
    """The test's side: how many gated conversions are running (alive), and opening the gate."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def running(self) -> int:
        return sum(1 for mark in self.directory.glob("running-*") if _alive(int(mark.name.split("-")[1])))

    def open(self) -> None:
        (self.directory / "open").touch()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return status not in ("Z", "X")  # a killed child not yet reaped is a zombie
