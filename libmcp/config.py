"""Settings: the environment plus an optional env file, validated once at start-up.

Every service has two settings objects: :class:`ServerSettings` (the ``MCP_*`` variables every
service shares) and its own :class:`ServiceSettings` subclass whose field names are the lower-cased
variable names (``postgres_access_mode`` reads ``POSTGRES_ACCESS_MODE``). Values come from the
process environment first, then from the env file named by ``MCP_ENV_FILE`` (default
``secrets/sse.env``, ignored when absent). A malformed value, or an unknown variable in the env file
or under the ``MCP_`` prefix, stops start-up with a :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ENV_FILE = "secrets/sse.env"

# Variables an env file may hold that belong to the wider platform rather than to one of our settings
# classes: OpenTelemetry's standard configuration, and Docker's.
PASSTHROUGH_PREFIXES = ("OTEL_",)


class SettingsError(Exception):
    """A setting is missing, malformed or unknown; the message names the variable."""


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]
"""A list setting written as ``a,b,c`` in the environment."""


class ServiceSettings(BaseSettings):
    """Base class of a service's own settings; field names are the lower-cased variable names."""

    # allow_inf_nan=False: "inf" or "nan" for a timeout or a limit is refused naming the variable.
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, env_prefix="", allow_inf_nan=False
    )


class ServerSettings(BaseSettings):
    """The ``MCP_*`` settings every service shares (transport, security, limits, logging)."""

    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, env_prefix="MCP_", allow_inf_nan=False
    )

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    auth_tokens: CommaList = Field(default_factory=list, repr=False)
    allowed_origins: CommaList = Field(default_factory=list)
    log_level: str = "INFO"
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=3600)
    sse_keepalive_s: float = Field(default=15.0, gt=0, le=3600)
    tool_timeout_s: float = Field(default=60.0, gt=0, le=86_400)
    env_file: str = DEFAULT_ENV_FILE

    # The HTTP edge, enforced before auth (see docs/API.md, "Limits").
    max_header_bytes: int = Field(default=32_768, ge=1024, le=1_048_576)
    max_headers: int = Field(default=100, ge=8, le=10_000)
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    keepalive_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    send_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    max_connections: int = Field(default=1024, ge=1, le=1_000_000)
    max_connections_per_client: int = Field(default=256, ge=1, le=1_000_000)
    trusted_proxies: CommaList = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    max_body_bytes_in_flight: int = Field(default=67_108_864, gt=0)
    health_cache_s: float = Field(default=0.0, ge=0, le=60)

    # Replies and batches.
    max_reply_bytes: int = Field(default=16_777_216, ge=4096)
    max_batch_messages: int = Field(default=64, ge=1, le=100_000)

    # Resources, prompts and completions: a page of resources/list, resources/templates/list and
    # prompts/list, and the longest resource URI or completion value taken.
    list_page_size: int = Field(default=100, ge=1, le=1000)
    max_uri_chars: int = Field(default=2048, ge=64, le=65_536)

    # Rate limit (every method counts), keyed by the authenticated identity, else the peer address.
    rate_limit_per_minute: int = Field(default=0, ge=0)
    rate_limit_burst: int = Field(default=0, ge=0)

    # Fairness: tool-call slots, and the share of any shared capacity (tool-call slots, worker threads,
    # database connections) one identity may hold at once.
    max_concurrent_calls: int = Field(default=64, ge=1, le=100_000)
    client_share: float = Field(default=0.5, gt=0, le=1)
    queue_timeout_s: float = Field(default=10.0, gt=0, le=3600)

    # The 2024-11-05 SSE transport.
    sse_max_sessions: int = Field(default=1024, ge=1, le=1_000_000)
    sse_max_sessions_per_client: int = Field(default=64, ge=1, le=1_000_000)
    sse_outbox_bytes: int = Field(default=4_194_304, ge=65_536)

    # The session bus (libmcp/session_bus.py): empty keeps every SSE session in its own replica.
    session_bus_url: str = Field(default="", repr=False)
    session_bus_password: str = Field(default="", repr=False)
    session_bus_ttl_s: float = Field(default=15.0, ge=1, le=3600)
    session_bus_queue_messages: int = Field(default=32, ge=1, le=100_000)
    session_bus_timeout_s: float = Field(default=2.0, gt=0, le=60)
    session_bus_ack_timeout_s: float = Field(default=5.0, gt=0, le=300)

    @field_validator("max_body_bytes_in_flight")
    @classmethod
    def _holds_one_body(cls, value: int, info: ValidationInfo) -> int:
        largest = info.data.get("max_body_bytes")
        if largest is not None and value < largest:
            raise ValueError(
                f"must be at least MCP_MAX_BODY_BYTES ({largest}), or no largest body is ever read"
            )
        return value

    @field_validator("session_bus_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://")):
            # The URL may hold a password: never echo it.
            raise ValueError(
                "must be a redis:// or rediss:// URL (Redis 7 or Valkey), or empty to turn the bus off"
            )
        return value

    @field_validator("auth_tokens", mode="before")
    @classmethod
    def _no_blank_tokens(cls, value: Any) -> Any:
        # "," or " " would otherwise leave the list empty, and an empty list means auth is off.
        if not isinstance(value, str) or value == "":
            return value
        if not _split_commas(value):
            raise ValueError("is set but holds no token (leave it empty to turn auth off)")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


S = TypeVar("S", bound=BaseSettings)


def variable_names(settings_class: type[BaseSettings]) -> set[str]:
    """The environment variable names a settings class reads."""
    prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
    return {f"{prefix}{name.upper()}" for name in settings_class.model_fields}


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a dotenv file (``KEY=value``, ``export KEY=value``, quotes, comments) into a dict.

    A missing file is an empty dict; a line that is not an assignment is a :class:`SettingsError`.
    """
    file = Path(path)
    if not file.is_file():
        return {}
    values: dict[str, str] = {}
    for number, raw_line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum() or key[0].isdigit():
            raise SettingsError(f"{file}:{number}: not a KEY=value line")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.upper()] = value
    return values


def load_settings(
    settings_class: type[S],
    *,
    environ: Mapping[str, str] | None = None,
    env_file_values: Mapping[str, str] | None = None,
) -> S:
    """Build one settings object from the environment (first) and the env file (second)."""
    source = dict(env_file_values or {})
    source.update(
        {key.upper(): value for key, value in (environ if environ is not None else os.environ).items()}
    )
    wanted = variable_names(settings_class)
    prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
    values = {key[len(prefix) :].lower(): value for key, value in source.items() if key in wanted}
    try:
        # model_validate, not the constructor: this loader already merged both sources, and the
        # constructor would read os.environ a second time.
        return settings_class.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field_name = str(error["loc"][0]) if error["loc"] else "?"
            variable = f"{prefix}{field_name.upper()}"
            shown = "<secret>" if _is_secret(settings_class, field_name) else repr(values.get(field_name))
            problems.append(f"{variable}={shown}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _is_secret(settings_class: type[BaseSettings], field_name: str) -> bool:
    field = settings_class.model_fields.get(field_name)
    return field is not None and field.repr is False


def check_unknown(
    known_variables: Iterable[str],
    *,
    environ: Mapping[str, str],
    env_file_values: Mapping[str, str],
    env_file: str,
) -> None:
    """Refuse variables nobody reads: any key in the env file, and ``MCP_*`` keys in the environment."""
    known = set(known_variables)
    unknown_in_file = sorted(
        key for key in env_file_values if key not in known and not key.startswith(PASSTHROUGH_PREFIXES)
    )
    if unknown_in_file:
        raise SettingsError(f"unknown setting(s) in {env_file}: {', '.join(unknown_in_file)}")
    unknown_in_env = sorted(
        key for key in environ if key.upper().startswith("MCP_") and key.upper() not in known
    )
    if unknown_in_env:
        raise SettingsError(f"unknown setting(s) in the environment: {', '.join(unknown_in_env)}")
