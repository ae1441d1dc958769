"""The DATABASE_URL password never shows in results, errors, /health or logs, in any spelling."""

from __future__ import annotations

import logging
from urllib.parse import quote, quote_plus

import httpx

from harness.postgres import APP_PASSWORD, APP_ROLE, Cluster
from services.postgres.local import database_url
from services.postgres.service import service
from services.postgres.settings import PostgresSettings
from tests.services.postgres.support import call, error, sql
from tests.support.servers import ServiceProcess, free_port

WRONG_PASSWORD = "wr0ng:p@ss/wörd%?#"


def spellings(password: str) -> list[str]:
    return [password, quote(password, safe=""), quote_plus(password), quote(password)]


def assert_hidden(text: str, password: str) -> None:
    for spelling in spellings(password):
        assert spelling not in text, f"password spelling {spelling!r} leaked in {text!r}"


async def everything_said(url: str) -> str:
    """Tool results for several failure paths plus the health body, as one text."""
    texts = []
    for arguments in ({"query": "SELECT 1"}, {"query": "SELECT 1", "database": "otherdb"}):
        texts.append(error(await call(url, "execute_sql", arguments)))
    texts.append(error(await call(url, "list_databases")))
    async with httpx.AsyncClient() as client:
        texts.append((await client.get(f"{url}/health")).text)
    return "\n".join(texts)


async def test_wrong_password_is_not_echoed(serve_service, pg: Cluster, caplog):
    caplog.set_level(logging.DEBUG)
    url_with_wrong = database_url("127.0.0.1", pg.server.port, "appdb", APP_ROLE, WRONG_PASSWORD)
    url, _ = serve_service(service, PostgresSettings.model_validate({"database_url": url_with_wrong}))
    said = await everything_said(url)
    assert "password authentication failed" in said
    assert_hidden(said, WRONG_PASSWORD)
    assert_hidden(caplog.text, WRONG_PASSWORD)


async def test_unreachable_server_errors_hide_the_password(serve_service, caplog):
    caplog.set_level(logging.DEBUG)
    settings = PostgresSettings.model_validate(
        {"database_url": database_url("127.0.0.1", free_port(), "appdb", APP_ROLE, APP_PASSWORD)}
    )
    url, _ = serve_service(service, settings)
    said = await everything_said(url)
    assert "unreachable" in said
    assert_hidden(said, APP_PASSWORD)
    assert_hidden(caplog.text, APP_PASSWORD)


async def test_malformed_url_errors_hide_the_password(serve_service):
    settings = PostgresSettings.model_validate(
        {"database_url": "postgresql://app:s3cret-Pa55@127.0.0.1:notaport/db"}
    )
    url, _ = serve_service(service, settings)
    text = error(await sql(url, "SELECT 1"))
    assert "DATABASE_URL" in text
    assert_hidden(text, "s3cret-Pa55")


async def test_successful_results_and_health_hide_the_password(read_only_url):
    text = (await sql(read_only_url, "SELECT current_user, current_database()"))["content"][0]["text"]
    async with httpx.AsyncClient() as client:
        text += (await client.get(f"{read_only_url}/health")).text
    assert_hidden(text, APP_PASSWORD)


def test_settings_repr_hides_the_url(pg: Cluster):
    settings = pg.settings()
    assert_hidden(repr(settings), APP_PASSWORD)
    assert "database_url" not in repr(settings)


def test_child_process_logs_never_contain_the_password(pg: Cluster):
    """`mcp-sse serve postgres` as a container runs it, at DEBUG, failing to log in and failing to connect."""
    wrong = database_url("127.0.0.1", pg.server.port, "appdb", APP_ROLE, WRONG_PASSWORD)
    child = ServiceProcess("postgres", env={"DATABASE_URL": wrong, "MCP_LOG_LEVEL": "DEBUG"}).start()
    try:
        rpc = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "execute_sql", "arguments": {"query": "SELECT 1"}},
        }
        answer = httpx.post(f"{child.url}/rpc", json=rpc, timeout=30).json()
        health = httpx.get(f"{child.url}/health", timeout=30)
    finally:
        stopped = child.stop()
    output = stopped[1] if stopped else ""
    assert answer["result"]["isError"] is True and health.status_code == 503
    assert "execute_sql" in output  # the call was logged...
    assert_hidden(output + answer["result"]["content"][0]["text"] + health.text, WRONG_PASSWORD)
