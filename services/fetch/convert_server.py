"""The fetch service's fork server: forks one short-lived process per large conversion.

Run by :class:`services.fetch.conversions.Converter` as ``python -m services.fetch.convert_server FD``,
where FD is its end of a Unix socket pair. It imports the converters once and stays single-threaded,
so forking it is safe and cheap (a few milliseconds), and a child starts with everything loaded but
none of the service's memory. For each request it receives a small JSON header and two pipe ends (the
body to read, the result to write), forks, and answers with the child's pid, which the service kills
when the call gives up. A child converts, writes its pickled outcome and exits, so its memory goes
back to the system. The server exits when the service closes its end of the socket.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pickle
import resource
import select
import socket
import struct
import sys
from typing import Any

from services.fetch import convert as _converters  # noqa: F401 - imported once here, for every child

HEADER_BYTES = 4096
PID = struct.Struct("!q")


def serve(control: socket.socket) -> None:
    while True:
        _reap_children()
        ready, _, _ = select.select([control], [], [], 1.0)
        if not ready:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(control, HEADER_BYTES, 2)
        except (ConnectionResetError, OSError):
            return
        if not message:
            return  # the service closed its end
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            control.sendall(PID.pack(-1))
            continue
        body_fd, result_fd = fds
        pid = os.fork()
        if pid == 0:
            control.close()
            os._exit(_child(json.loads(message), body_fd, result_fd))
        os.close(body_fd)
        os.close(result_fd)
        control.sendall(PID.pack(pid))


def _child(request: dict[str, Any], body_fd: int, result_fd: int) -> int:
    """Convert the body read from ``body_fd``; write ``("ok", Converted)`` or ``("error", text)``."""
    outcome: tuple[str, Any]
    try:
        _limit_memory(request["memory_bytes"])
        with os.fdopen(body_fd, "rb") as pipe:
            body = pipe.read(request["length"])
        module, _, name = request["function"].partition(":")
        function = getattr(importlib.import_module(module), name)
        converted = function(
            body,
            request["content_type"],
            request["base_url"],
            raw=request["raw"],
            max_bytes=request["max_bytes"],
        )
        outcome = ("ok", converted)
    except MemoryError:
        outcome = ("memory", None)
    except Exception as exc:
        outcome = ("error", f"{type(exc).__name__}: {exc}"[:500])
    data = memoryview(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    with contextlib.suppress(BrokenPipeError):  # the call gave up and closed its end
        while data:
            data = data[os.write(result_fd, data) :]
    os.close(result_fd)
    return 0


def _limit_memory(budget: int) -> None:
    """Cap this process's address space at what it has now (the interpreter and the converters) plus
    ``budget``: past it an allocation fails with MemoryError instead of the kernel's OOM killer choosing."""
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = in_use + budget
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    with control:
        serve(control)


if __name__ == "__main__":
    main()
