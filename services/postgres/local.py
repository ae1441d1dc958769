"""A throwaway PostgreSQL: the embedded default of ``mcp-sse up`` and the server the tests run against.

When ``DATABASE_URL`` is not configured, :func:`prepare` starts a private PostgreSQL cluster in a
temporary directory, listening on a free 127.0.0.1 port only, loads the small sample schema of
``sample_schema.sql`` into a database ``shop`` owned by a non-superuser role ``mcp``, points
``DATABASE_URL`` at it and returns a cleanup that stops the server and deletes the directory.

The binaries come from the machine's PostgreSQL installation (``/usr/lib/postgresql/*/bin`` on
Debian and Ubuntu, ``pg_ctl`` on ``PATH`` elsewhere); when there is none, from the pip package
``pgserver`` if it is installed. PostgreSQL refuses to run as root: as root, the cluster belongs to the
``postgres`` system user (or ``nobody``) and every server command runs as that user.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from libmcp.config import DEFAULT_ENV_FILE, read_env_file

SAMPLE_SCHEMA = Path(__file__).with_name("sample_schema.sql")
SAMPLE_DATABASE = "shop"
SAMPLE_ROLE = "mcp"
SUPERUSER = "postgres"
BINARY_GLOBS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # PGDG packages on RHEL, Fedora
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew, Intel
    "/usr/local/pgsql/bin",  # built from source
)
INSTALL_HINT = (
    "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; "
    "macOS: brew install postgresql) or `pip install pgserver`, or set DATABASE_URL to an existing database"
)
# A throwaway cluster does not need to survive a power cut: trade durability for start-up and test speed.
THROWAWAY_CONFIG = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


# Run by a detached interpreter (no project imports): waits for the owner process to exit, then, unless the
# owner already removed the cluster, stops it and deletes its directory.
WATCHDOG = """
import os, shutil, subprocess, sys, time
owner, pg_ctl, data_dir, base_dir, uid, gid = sys.argv[1:]
while os.path.isdir(base_dir):
    try:
        os.kill(int(owner), 0)
    except ProcessLookupError:
        as_user = {"user": int(uid), "group": int(gid), "extra_groups": []} if uid else {}
        subprocess.run([pg_ctl, "stop", "-m", "immediate", "-w", "-D", data_dir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, **as_user)
        shutil.rmtree(base_dir, ignore_errors=True)
        break
    time.sleep(1)
"""


class EmbeddedPostgresError(RuntimeError):
    """The throwaway PostgreSQL could not be found or started; the message says what to do."""


def find_binaries() -> Path | None:
    """The ``bin`` directory of the newest PostgreSQL installed on this machine, or ``None``."""
    candidates = [Path(path) for pattern in BINARY_GLOBS for path in glob.glob(pattern)]
    candidates.sort(key=_version_of, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _version_of(path: Path) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", str(path)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(
    host: str, port: int | None, database: str, user: str, password: str, socket_dir: str | None = None
) -> str:
    """A libpq URL with every part percent-encoded (a socket directory goes in the ``host`` query)."""
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    if socket_dir:
        query = f"?host={quote(socket_dir, safe='')}" + (f"&port={port}" if port else "")
        return f"postgresql://{credentials}@/{quote(database, safe='')}{query}"
    return f"postgresql://{credentials}@{host}:{port}/{quote(database, safe='')}"


class LocalPostgres:
    """One PostgreSQL cluster in a temporary directory, reachable on ``127.0.0.1:<port>`` only.

    ``config`` adds ``postgresql.conf`` settings (``{"shared_preload_libraries": "pg_stat_statements"}``).
    :meth:`stop` and :meth:`start` may be called again (same port, same data); :meth:`destroy` removes it.
    """

    def __init__(self, bin_dir: Path, *, config: Mapping[str, str] | None = None) -> None:
        self.bin_dir = bin_dir
        self.config = {**THROWAWAY_CONFIG, **(config or {})}
        self.password = secrets.token_urlsafe(18)
        self.base_dir = Path(tempfile.mkdtemp(prefix="mcp-sse-postgres-"))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "server.log"
        self.port = 0
        self._user = _server_user()

    @property
    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        return database_url(
            "127.0.0.1", self.port, database, user, self.password if password is None else password
        )

    def start(self) -> LocalPostgres:
        """Create the cluster on first use, then start it and wait until it accepts connections."""
        if not self.data_dir.exists():
            self._initdb()
            self._start_watchdog()
        for attempt in range(3):
            if attempt or not self.port:
                self.port = free_port()
            self._write_config()
            result = self._run(
                [
                    self._tool("pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                ]
            )
            if result.returncode == 0:
                return self
        raise EmbeddedPostgresError(f"PostgreSQL did not start: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are disconnected), keeping its data."""
        if self.running:
            self._run(
                [self._tool("pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data_dir)]
            )

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _initdb(self) -> None:
        if self._user is not None:
            os.chown(self.base_dir, self._user.pw_uid, self._user.pw_gid)
        password_file = self.base_dir / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        if self._user is not None:
            os.chown(password_file, self._user.pw_uid, self._user.pw_gid)
        try:
            result = self._run(
                [
                    self._tool("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={password_file}",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            )
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed: {result.stdout.strip()[-2000:]}")

    def _start_watchdog(self) -> None:
        """A detached process that stops and deletes the cluster if this process dies without doing it."""
        user = [str(self._user.pw_uid), str(self._user.pw_gid)] if self._user is not None else ["", ""]
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WATCHDOG,
                str(os.getpid()),
                self._tool("pg_ctl"),
                str(self.data_dir),
                str(self.base_dir),
                *user,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _write_config(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            # As in the official container images, whatever the machine's zone: the same answers everywhere.
            "timezone": "UTC",
            **self.config,
        }
        lines = [f"{key} = '{value.replace(chr(39), chr(39) * 2)}'" for key, value in settings.items()]
        # postgresql.auto.conf is read last, so these win over postgresql.conf and are rewritten per start.
        auto_conf = self.data_dir / "postgresql.auto.conf"
        auto_conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if self._user is not None:
            os.chown(auto_conf, self._user.pw_uid, self._user.pw_gid)

    def _tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, Any] = {}
        if self._user is not None:
            as_user = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.base_dir,
            env={**os.environ, "LC_ALL": "C"},
            timeout=120,
            check=False,
            **as_user,
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(
                self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            )
        except OSError:
            return "(no server log)"


def _server_user() -> pwd.struct_passwd | None:
    """The user that runs the server when we are root (PostgreSQL refuses root); ``None`` otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise EmbeddedPostgresError(
        "running as root, and there is no 'postgres' or 'nobody' user to run PostgreSQL as"
    )


def has_pg_stat_statements(bin_dir: Path) -> bool:
    """Whether this installation ships the pg_stat_statements module (Debian: in postgresql-NN itself)."""
    pg_config = bin_dir / "pg_config"
    if not pg_config.is_file():
        return False
    result = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False)
    library_dir = Path(result.stdout.strip())
    return any(library_dir.glob("pg_stat_statements.*"))


async def load_sample(admin_url: str, *, create_pg_stat_statements: bool) -> str:
    """Create role ``mcp`` and database ``shop`` with the sample schema; return the URL the service uses."""
    import asyncpg

    password = secrets.token_urlsafe(18)
    admin = await asyncpg.connect(admin_url)
    try:
        # Utility statements take no parameters: PostgreSQL's format() quotes the password literal.
        create_role = await admin.fetchval(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", SAMPLE_ROLE, password
        )
        await admin.execute(create_role)
        await admin.execute(f'CREATE DATABASE "{SAMPLE_DATABASE}" OWNER "{SAMPLE_ROLE}"')
    finally:
        await admin.close()
    parts = urlsplit(admin_url)
    if create_pg_stat_statements:
        shop_admin = await asyncpg.connect(admin_url, database=SAMPLE_DATABASE)
        try:
            await shop_admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await shop_admin.close()
    app_url = database_url(
        parts.hostname or "127.0.0.1",
        parts.port,
        SAMPLE_DATABASE,
        SAMPLE_ROLE,
        password,
        socket_dir=_socket_dir(admin_url),
    )
    owner = await asyncpg.connect(app_url)
    try:
        await owner.execute(SAMPLE_SCHEMA.read_text(encoding="utf-8"))
    finally:
        await owner.close()
    return app_url


def _socket_dir(url: str) -> str | None:
    query = urlsplit(url).query
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key == "host" and value:
            return unquote(value)
    return None


def _configured_url(env: Mapping[str, str]) -> str:
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    return read_env_file(env.get("MCP_ENV_FILE", DEFAULT_ENV_FILE)).get("DATABASE_URL", "")


def prepare(env: dict[str, str]) -> Callable[[], None] | None:
    """``mcp-sse up`` hook: start the throwaway PostgreSQL unless ``DATABASE_URL`` is configured.

    Sets ``env["DATABASE_URL"]`` and returns the cleanup that stops the server and deletes its files.
    """
    if _configured_url(env):
        return None
    bin_dir = find_binaries()
    if bin_dir is not None:
        preload = has_pg_stat_statements(bin_dir)
        server = LocalPostgres(
            bin_dir, config={"shared_preload_libraries": "pg_stat_statements"} if preload else {}
        )
        try:
            server.start()
            env["DATABASE_URL"] = asyncio.run(load_sample(server.url(), create_pg_stat_statements=preload))
        except BaseException:
            server.destroy()
            raise
        print(
            f"mcp-sse: postgres uses a throwaway PostgreSQL ({bin_dir}) on 127.0.0.1:{server.port}, "
            f"database {SAMPLE_DATABASE} (sample schema); it is deleted on exit",
            file=sys.stderr,
        )
        return server.destroy
    return _prepare_with_pgserver(env)


def _prepare_with_pgserver(env: dict[str, str]) -> Callable[[], None]:
    try:
        import pgserver  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise EmbeddedPostgresError(
            f"DATABASE_URL is not set and no PostgreSQL was found: {INSTALL_HINT}"
        ) from None
    data_dir = Path(tempfile.mkdtemp(prefix="mcp-sse-pgserver-"))
    try:
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
        admin_url = server.get_uri()
        env["DATABASE_URL"] = asyncio.run(load_sample(admin_url, create_pg_stat_statements=False))
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise

    def cleanup() -> None:
        with contextlib.suppress(Exception):
            server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)

    print(
        f"mcp-sse: postgres uses a throwaway PostgreSQL from pgserver, database {SAMPLE_DATABASE}",
        file=sys.stderr,
    )
    return cleanup
