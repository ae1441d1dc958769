"""Connections: one bounded asyncpg pool per database, created on first use, and what to say when they fail.

:class:`Databases` owns every pool of the service. It knows whether PostgreSQL is reachable: after a
failed connection attempt, calls fail at once for a short cool-down (a clear ``ToolError``, not a hang)
and the next call or health probe after it tries again, so the service recovers by itself when
PostgreSQL returns. Every message that leaves this module goes through :meth:`Databases.scrub`,
which removes the password of ``DATABASE_URL`` in every spelling it may take.

Each pool is shared fairly: a call takes a slot of the pool's :class:`~libmcp.fairness.FairShare` before
a connection, so one client (``client_id``) holds at most its share (MCP_CLIENT_SHARE) of the
connections and another client's call still finds one; a call waits for a slot at most
MCP_QUEUE_TIMEOUT_S, then fails with a Busy error naming the pool and the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, quote_plus, unquote, urlsplit

import asyncpg

from libmcp import CheckResult, ToolError
from libmcp.fairness import FairShare, ShareTimeout, share_of
from services.postgres.connection_codecs import install_codecs
from services.postgres.settings import PostgresSettings

logger = logging.getLogger("services.postgres")

APPLICATION_NAME = "mcp-sse-postgres"
CONNECT_TIMEOUT_S = 5.0
RETRY_AFTER_S = 1.0  # cool-down after a failed connection attempt, during which calls fail at once
MAX_POOLS = 8  # databases with a live pool; the least recently used idle one is closed beyond that
MAX_IDLE_S = 60.0  # idle pooled connections are closed after this long

# Errors that mean "PostgreSQL cannot be reached or is going away", as opposed to an error in a statement.
UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    # The protocol state of a connection the server dropped mid-operation: it is lost as well.
    asyncpg.InternalClientError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)
REFUSED_LOGIN = (
    asyncpg.exceptions.InvalidPasswordError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.InsufficientPrivilegeError,
)
# Run after every use, before a connection goes back to the pool: asyncpg's reset (roll back, close
# cursors, UNLISTEN, unlock advisory locks, RESET ALL) misses the role and temporary objects.
EXTRA_RESET = "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DISCARD TEMP; DISCARD SEQUENCES;"


@dataclass(slots=True)
class Outage:
    reason: str
    since: float
    retry_at: float


class Databases:
    """The connection pools of the service, one per database, and the reachability of PostgreSQL."""

    def __init__(
        self, settings: PostgresSettings, *, client_share: float = 1.0, queue_timeout_s: float = 10.0
    ) -> None:
        self.settings = settings
        self.client_share = client_share
        self.queue_timeout_s = queue_timeout_s
        self.url = _normalise_url(settings.database_url)
        self._secrets = _secrets_of(settings.database_url)
        self.default_database = _default_database(self.url)
        self._pools: OrderedDict[str, asyncpg.Pool] = OrderedDict()
        self._shares: dict[str, FairShare] = {}  # by database, beside its pool
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        # Server PIDs of connections being released that were already reset by the call itself.
        self._clean: set[int] = set()
        self.outage: Outage | None = None

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def scrub(self, text: str) -> str:
        """``text`` with the password of ``DATABASE_URL`` replaced, whatever its encoding."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def database_name(self, database: str | None) -> str:
        return database or self.default_database

    # Pools --------------------------------------------------------------------------------------

    async def _pool(self, database: str) -> asyncpg.Pool:
        pool = self._pools.get(database)
        if pool is not None:  # the common case, without the lock: nothing awaits in between
            self._pools.move_to_end(database)
            return pool
        async with self._lock:
            pool = self._pools.get(database)
            if pool is not None:
                self._pools.move_to_end(database)
                return pool
            if len(self._pools) >= MAX_POOLS:
                self._retire_one()
            settings = self.settings
            server_settings = {
                "application_name": APPLICATION_NAME,
                "statement_timeout": str(max(1, round(settings.postgres_statement_timeout_s * 1000))),
                "standard_conforming_strings": "on",
            }
            if settings.read_only:
                server_settings["default_transaction_read_only"] = "on"
            try:
                pool = await asyncpg.create_pool(
                    dsn=self.url,
                    database=database,
                    min_size=0,
                    max_size=settings.postgres_pool_max_size,
                    max_inactive_connection_lifetime=MAX_IDLE_S,
                    timeout=CONNECT_TIMEOUT_S,
                    init=install_codecs,
                    reset=self._reset_session,
                    server_settings=server_settings,
                )
            except ValueError as exc:  # an unparsable URL: asyncpg's message may quote it
                raise ToolError(
                    f"DATABASE_URL is not a valid PostgreSQL URL: {self.scrub(str(exc))}"
                ) from None
            self._pools[database] = pool
            size = settings.postgres_pool_max_size
            self._shares[database] = FairShare(
                size,
                share_of(size, self.client_share),
                what=f"connections to database {database!r}",
                settings="POSTGRES_POOL_MAX_SIZE and MCP_CLIENT_SHARE, waited for up to MCP_QUEUE_TIMEOUT_S",
            )
            return pool

    def _retire_one(self) -> None:
        for name, pool in self._pools.items():
            if name != self.default_database:
                del self._pools[name]
                del self._shares[name]  # calls holding a slot of it release into it, then it is gone
                task = asyncio.create_task(pool.close())  # waits for connections in use to come back
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                return

    async def close(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, Exception):
                pool.terminate()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # Connections --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def connection(
        self, database: str | None = None, *, client_id: str
    ) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection to ``database`` (default: the URL's) within ``client_id``'s share of the
        pool, or a ``ToolError`` saying why not.

        When the block ends, a transaction it left open is committed (or rolled back, if the block
        raised) in the same round trip as the session reset, so the pool's own reset is skipped. That
        round trip ends before the block's caller goes on: once a call is answered, its connection is
        idle, reset and back in the pool.
        """
        if not self.configured:
            raise ToolError("DATABASE_URL is not set: configure the database this service queries.")
        name = self.database_name(database)
        outage = self.outage
        if outage is not None and time.monotonic() < outage.retry_at:
            raise ToolError(self._unavailable_message(outage))
        await self._pool(name)
        share = self._shares[name]
        try:
            await share.acquire(client_id, self.queue_timeout_s)
        except ShareTimeout as exc:
            busy = str(exc)
            if share.held.get(client_id, 0) >= share.per_identity:
                busy += f", once this client's statements running on {name!r} have ended"
            raise ToolError(busy + ".") from None
        try:
            try:
                # The pool may have been replaced while this call waited (a refused login drops it).
                pool = await self._pool(name)
                # No acquire timeout: the share leaves a connection for every slot (the health probe may
                # hold one for a moment), and a TimeoutError here can only be a new connection's.
                connection = await pool.acquire()
            except BaseException:
                share.release(client_id)
                raise
        except REFUSED_LOGIN as exc:
            if name != self.default_database:
                self._drop_pool(name)
            raise ToolError(
                f"PostgreSQL refused the connection to database {name!r}: {self.scrub(str(exc))}"
            ) from None
        except UNREACHABLE as exc:
            raise ToolError(self._unavailable_message(self._record_outage(exc))) from None
        except (ValueError, TypeError) as exc:  # asyncpg parses the URL when it first connects
            raise ToolError(f"DATABASE_URL is not a valid PostgreSQL URL: {self.scrub(str(exc))}") from None
        self.outage = None
        pid = connection.get_server_pid()
        try:
            try:
                yield connection
            except (Exception, asyncio.CancelledError):
                await self._end_quietly(connection, pid)
                raise
            await connection.execute(_end_sql(connection, commit=True))
            self._clean.add(pid)
        except UNREACHABLE as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise ToolError(self._unavailable_message(self._record_outage(exc), lost=True)) from None
        except asyncpg.PostgresError as exc:
            if (
                getattr(exc, "message", None) is None
            ):  # raised by asyncpg itself, e.g. a parameter it cannot encode
                raise ToolError(self.scrub(str(exc))) from None
            raise ToolError(self.scrub(describe_postgres_error(exc))) from None
        except asyncpg.InterfaceError as exc:
            raise ToolError(self.scrub(str(exc))) from None
        finally:
            try:
                await self._release(pool, connection, pid)
            finally:
                share.release(client_id)

    async def _release(self, pool: asyncpg.Pool, connection: asyncpg.Connection, pid: int) -> None:
        try:
            await pool.release(connection)
        except Exception as exc:
            # A connection the server dropped mid-call (shutdown, restart) cannot be reset: asyncpg has
            # already closed it, the pool opens a fresh one next time, and the clear error the call
            # reported must not be replaced by this one.
            logger.debug("released a broken connection: %s", type(exc).__name__)
        finally:
            self._clean.discard(pid)

    async def _end_quietly(self, connection: asyncpg.Connection, pid: int) -> None:
        """After a failed call: roll back and reset in one round trip if the connection can still take a
        query; otherwise (a cancelled query, a lost connection) the pool's release deals with it."""
        try:
            await connection.execute(_end_sql(connection, commit=False))
        except Exception:
            return
        self._clean.add(pid)

    async def _reset_session(self, connection: asyncpg.Connection) -> None:
        """The pool's reset on release (after asyncpg rolled back any open transaction): skipped when the
        call already ended with the reset (see :meth:`connection`)."""
        if connection.get_server_pid() in self._clean and not connection.is_in_transaction():
            return
        await connection.execute(connection.get_reset_query() + EXTRA_RESET)

    def _drop_pool(self, name: str) -> None:
        self._shares.pop(name, None)
        pool = self._pools.pop(name, None)
        if pool is not None:
            pool.terminate()

    def _record_outage(self, exc: BaseException) -> Outage:
        now = time.monotonic()
        reason = self.scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        since = self.outage.since if self.outage is not None else now
        self.outage = Outage(reason=reason, since=since, retry_at=now + RETRY_AFTER_S)
        logger.warning("PostgreSQL unreachable: %s", reason)
        return self.outage

    def _unavailable_message(self, outage: Outage, lost: bool = False) -> str:
        seconds = time.monotonic() - outage.since
        what = "The connection to PostgreSQL was lost" if lost else "PostgreSQL is unreachable"
        return (
            f"{what} ({outage.reason}; failing for {seconds:.0f} s). The service reconnects by itself: "
            "retry in a few seconds."
        )

    # Health -------------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Probe the default database through its pool: ``ok``, ``down`` with the reason, or unconfigured."""
        if not self.configured:
            return CheckResult("not_configured", "DATABASE_URL is not set")
        pool = self._pools.get(self.default_database)
        if (
            pool is not None
            and self.outage is None
            and pool.get_size() >= self.settings.postgres_pool_max_size
        ):
            if pool.get_idle_size() == 0:
                return CheckResult("ok", "every pooled connection is busy serving calls")
        try:
            pool = await self._pool(self.default_database)
            async with pool.acquire(timeout=3.0) as connection:
                version = await connection.fetchval("SHOW server_version", timeout=3.0)
        except UNREACHABLE as exc:
            outage = self._record_outage(exc)
            return CheckResult("down", f"PostgreSQL unreachable: {outage.reason}")
        except REFUSED_LOGIN as exc:
            return CheckResult("down", f"PostgreSQL refused the connection: {self.scrub(str(exc))}")
        except (ValueError, TypeError) as exc:
            return CheckResult("down", f"DATABASE_URL is not a valid PostgreSQL URL: {self.scrub(str(exc))}")
        except ToolError as exc:
            return CheckResult("down", exc.message)
        self.outage = None
        mode = self.settings.postgres_access_mode
        return CheckResult("ok", f"PostgreSQL {version}, database {self.default_database}, {mode}")


_CONDITION_NAMES = {"P0001": "raise_exception", "08000": "connection_exception", "58030": "io_error"}
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def describe_postgres_error(exc: asyncpg.PostgresError) -> str:
    """SQLSTATE, condition, message, detail, hint and position, one per line, as psql would show them."""
    class_name = type(exc).__name__
    # asyncpg names classes after the condition (UndefinedTableError: undefined_table), except a few
    # that would clash with Python's builtins (PostgresSyntaxError: syntax_error).
    if class_name.startswith("Postgres"):
        class_name = class_name.removeprefix("Postgres")
    else:
        class_name = class_name.removesuffix("Error")
    condition = _CONDITION_NAMES.get(exc.sqlstate or "", _CAMEL_BOUNDARY.sub("_", class_name).lower())
    named = f", {condition}" if condition and condition != "error" else ""
    lines = [f"PostgreSQL error (SQLSTATE {exc.sqlstate}{named}): {exc.message}"]
    for label, attribute in (
        ("Detail", "detail"),
        ("Hint", "hint"),
        ("Position", "position"),
        ("Where", "context"),
        ("Constraint", "constraint_name"),
    ):
        value = getattr(exc, attribute, None)
        if value:
            lines.append(f"{label}: {value}")
    if exc.sqlstate == "57014" and "statement timeout" in (exc.message or ""):
        lines.append(
            "Hint: the statement timeout is POSTGRES_STATEMENT_TIMEOUT_S; narrow the query or add a LIMIT."
        )
    return "\n".join(lines)


def _end_sql(connection: asyncpg.Connection, *, commit: bool) -> str:
    """What ends a call on ``connection``: its open transaction, if any, then the session reset."""
    end = ("COMMIT;" if commit else "ROLLBACK;") if connection.is_in_transaction() else ""
    reset: str = connection.get_reset_query()
    return end + reset + EXTRA_RESET


def _normalise_url(url: str) -> str:
    """Accept SQLAlchemy-style schemes (``postgresql+asyncpg://``) as plain libpq URLs."""
    scheme, sep, rest = url.strip().partition("://")
    if sep and "+" in scheme and scheme.split("+")[0] in {"postgres", "postgresql"}:
        return f"postgresql://{rest}"
    return url.strip()


def _secrets_of(url: str) -> list[str]:
    """Every way the password of ``url`` may be spelled in a message, longest first."""
    found: set[str] = set()
    try:
        parts = urlsplit(_normalise_url(url))
        passwords = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    except ValueError:
        passwords = []
    for password in passwords:
        if password:
            found.update(
                {
                    password,
                    unquote(password),
                    quote(unquote(password), safe=""),
                    quote_plus(unquote(password)),
                }
            )
    return sorted((secret for secret in found if len(secret) >= 3), key=len, reverse=True)


def _default_database(url: str) -> str:
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgres"
    path = unquote(parts.path.lstrip("/"))
    if path:
        return path
    query = parse_qs(parts.query)
    if query.get("dbname"):
        return query["dbname"][0]
    return unquote(parts.username or "") or "postgres"
