"""The fetch tool against real pages served from loopback (opened for the test with FETCH_ALLOWED_HOSTS)."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator

import pytest

from harness.pages import (
    ARTICLE_TITLE,
    BOILERPLATE_MARKERS,
    CONTENT_MARKERS,
    article_page,
    cyrillic_page,
    japanese_page,
)
from harness.pageserver import PageServer, Reply
from tests.services.fetch.conftest import FetchService, running_fetch_service, static_resolver, text_of
from tests.support.servers import free_port

HTML = {"Content-Type": "text/html; charset=utf-8"}


@pytest.fixture(scope="module")
def site() -> Iterator[PageServer]:
    """One loopback site for the module's conversion tests (no robots.txt: its 404 means no rules)."""
    with PageServer("127.0.0.1").running() as server:
        server.routes["/article"] = Reply(headers=HTML, body=article_page().encode())
        server.routes["/huge"] = Reply(headers=HTML, body=article_page(2_000_000).encode())
        server.routes["/long"] = Reply(headers=HTML, body=article_page(300_000).encode())
        yield server


@pytest.fixture(scope="module")
def opened() -> Iterator[FetchService]:
    """The service with the guard opened for 127.0.0.1 only."""
    with running_fetch_service(allowed_hosts=["127.0.0.1"]) as service:
        yield service


async def test_an_article_page_becomes_its_main_content_as_markdown(
    site: PageServer, opened: FetchService
) -> None:
    result = await opened.fetch(url=site.url("/article"), max_length=100_000)
    assert result["isError"] is False
    page = result["structuredContent"]
    markdown = page["content"]
    for marker in CONTENT_MARKERS:
        assert marker in markdown
    for marker in BOILERPLATE_MARKERS:
        assert marker not in markdown, marker
    assert markdown.startswith(f"# {ARTICLE_TITLE}")
    assert "## Measure before you tune" in markdown
    assert "```sql\nSELECT relname, n_live_tup, n_dead_tup, last_autovacuum\n" in markdown
    assert "WHERE n_dead_tup > 1000" in markdown  # entities decoded inside code
    assert re.search(r"^\| Setting +\| Default +\| Ours +\|$", markdown, re.MULTILINE)
    assert re.search(r"^\| autovacuum_naptime +\| 1min +\| 15s +\|$", markdown, re.MULTILINE)
    assert "1. Lower the scale factor on the hot tables only." in markdown
    assert "> Vacuum early, vacuum often." in markdown
    assert f"[routine vacuuming guide]({site.base}/docs/routine-vacuuming)" in markdown  # made absolute
    assert f"![Dead tuples over a week]({site.base}/img/dead-tuples.png)" in markdown
    assert "**thousands of updates a second**" in markdown
    assert page["title"] == f"{ARTICLE_TITLE} | Example Tech"
    assert (page["status"], page["kind"], page["content_type"]) == (200, "html", "text/html; charset=utf-8")
    assert page["final_url"] == site.url("/article")
    assert page["truncated"] is False and page["next_start_index"] is None
    assert text_of(result) == f"Contents of {site.url('/article')}:\n{markdown}"


async def test_raw_returns_the_html_source(site: PageServer, opened: FetchService) -> None:
    result = await opened.fetch(url=site.url("/article"), raw=True, max_length=1_000_000)
    assert result["structuredContent"]["content"] == article_page()


async def test_pagination_by_start_index_loses_and_repeats_nothing(
    site: PageServer, opened: FetchService
) -> None:
    whole = (await opened.fetch(url=site.url("/long"), max_length=1_000_000))["structuredContent"]
    assert whole["truncated"] is False and whole["total_length"] > 200_000
    chunks, start, calls = [], 0, 0
    while True:
        result = await opened.fetch(url=site.url("/long"), start_index=start, max_length=60_000)
        page = result["structuredContent"]
        chunks.append(page["content"])
        calls += 1
        if page["next_start_index"] is None:
            assert "Content truncated" not in text_of(result)
            break
        assert page["truncated"] is True
        assert len(page["content"]) == 60_000
        assert text_of(result).endswith(
            f"\n\n<error>Content truncated. Call the fetch tool with a start_index of "
            f"{page['next_start_index']} to get more content.</error>"
        )
        start = page["next_start_index"]
    assert calls == -(-whole["total_length"] // 60_000)
    assert "".join(chunks) == whole["content"]


async def test_a_start_index_past_the_end_says_no_more_content(
    site: PageServer, opened: FetchService
) -> None:
    result = await opened.fetch(url=site.url("/article"), start_index=10_000_000)
    assert result["isError"] is False
    assert text_of(result).endswith("<error>No more content available.</error>")


async def test_a_huge_page_is_converted_whole(site: PageServer, opened: FetchService) -> None:
    page = (await opened.fetch(url=site.url("/huge"), max_length=1_000_000))["structuredContent"]
    assert page["response_bytes"] >= 2_000_000
    assert page["body_truncated"] is False
    tail = (await opened.fetch(url=site.url("/huge"), start_index=page["total_length"] - 3000))[
        "structuredContent"
    ]
    assert "*Dead tuples fell by 90%.*" in tail["content"]
    assert "Trending now" not in tail["content"]


async def test_windows_1251_named_in_a_meta_tag_is_decoded(site: PageServer, opened: FetchService) -> None:
    site.routes["/ru"] = Reply(
        headers={"Content-Type": "text/html"}, body=cyrillic_page().encode("windows-1251")
    )
    page = (await opened.fetch(url=site.url("/ru")))["structuredContent"]
    assert "# Привет, мир" in page["content"]
    assert "Съешь же ещё этих мягких французских булок" in page["content"]
    assert "Меню" not in page["content"]
    assert page["title"] == "Новости"


async def test_shift_jis_named_in_the_header_is_decoded(site: PageServer, opened: FetchService) -> None:
    site.routes["/ja"] = Reply(headers={"Content-Type": "text/html; charset=Shift_JIS"},
                               body=japanese_page().encode("shift_jis"))  # fmt: skip
    page = (await opened.fetch(url=site.url("/ja")))["structuredContent"]
    assert "# 今日の天気" in page["content"]
    assert "東京は晴れ、最高気温は二十度です。" in page["content"]
    assert page["title"] == "天気予報"


async def test_an_undeclared_legacy_charset_is_detected(site: PageServer, opened: FetchService) -> None:
    text = "Съешь же ещё этих мягких французских булок, да выпей же чаю. " * 20
    site.routes["/plain-ru"] = Reply(headers={"Content-Type": "text/plain"}, body=text.encode("windows-1251"))
    page = (await opened.fetch(url=site.url("/plain-ru"), max_length=100_000))["structuredContent"]
    assert page["content"] == text


async def test_json_is_pretty_printed(site: PageServer, opened: FetchService) -> None:
    data = {"name": "mcp-sse", "tags": ["fetch", "json"], "nested": {"ok": True, "n": 3}, "text": "ünïcode"}
    site.routes["/api"] = Reply(headers={"Content-Type": "application/json"}, body=json.dumps(data).encode())
    page = (await opened.fetch(url=site.url("/api")))["structuredContent"]
    assert page["kind"] == "json"
    assert page["content"] == json.dumps(data, indent=2, ensure_ascii=False)


async def test_text_passes_through_unchanged(site: PageServer, opened: FetchService) -> None:
    text = "line one\n  indented <b>not html</b>\n\n# not a heading conversion\n"
    site.routes["/notes.txt"] = Reply(
        headers={"Content-Type": "text/plain; charset=utf-8"}, body=text.encode()
    )
    page = (await opened.fetch(url=site.url("/notes.txt")))["structuredContent"]
    assert (page["kind"], page["content"]) == ("text", text)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40),
        ("application/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"\x00\x01" * 3000),
        ("application/zip", b"PK\x03\x04" + bytes(5000)),
        ("", b"\x00\x01\x02\x03" * 1000),
    ],
)
async def test_binary_content_is_described_not_dumped(
    content_type: str, body: bytes, site: PageServer, opened: FetchService
) -> None:
    site.routes["/blob"] = Reply(headers={"Content-Type": content_type} if content_type else {}, body=body)
    result = await opened.fetch(url=site.url("/blob"))
    page = result["structuredContent"]
    assert page["kind"] == "binary"
    shown = content_type or "application/octet-stream"
    assert page["content"] == f"Binary content ({shown}, {len(body):,} bytes) is not shown as text."
    assert page["response_bytes"] == len(body)


async def test_redirects_are_followed_and_the_final_url_reported(
    site: PageServer, opened: FetchService
) -> None:
    site.routes["/old"] = Reply(301, {"Location": "/older"})
    site.routes["/older"] = Reply(302, {"Location": site.url("/article")})
    page = (await opened.fetch(url=site.url("/old"), max_length=50))["structuredContent"]
    assert page["url"] == site.url("/old")
    assert page["final_url"] == site.url("/article")
    assert page["title"].startswith(ARTICLE_TITLE)


async def test_redirects_are_bounded(
    fetch_service: Callable[..., FetchService], page_server: PageServer
) -> None:
    for hop in range(4):
        page_server.routes[f"/r{hop}"] = Reply(302, {"Location": f"/r{hop + 1}"})
    page_server.routes["/r4"] = Reply(headers=HTML, body=b"<p>end</p>")
    service = fetch_service(allowed_hosts=["127.0.0.1"], max_redirects=3, ignore_robots=True)
    result = await service.fetch(url=page_server.url("/r0"))
    assert result["isError"] is True
    assert "Too many redirects" in text_of(result)
    assert page_server.paths() == ["/r0", "/r1", "/r2", "/r3"]


async def test_an_http_error_status_is_an_error_result(site: PageServer, opened: FetchService) -> None:
    result = await opened.fetch(url=site.url("/missing"))
    assert result["isError"] is True
    assert text_of(result) == f"Failed to fetch {site.url('/missing')} - status code 404"


async def test_a_slow_server_times_out(
    fetch_service: Callable[..., FetchService], page_server: PageServer
) -> None:
    page_server.routes["/slow"] = Reply(headers=HTML, body=b"<p>late</p>", delay_s=5)
    service = fetch_service(allowed_hosts=["127.0.0.1"], timeout_s=0.5, ignore_robots=True)
    result = await service.fetch(url=page_server.url("/slow"))
    assert result["isError"] is True
    assert "Timed out" in text_of(result)


async def test_a_body_that_trickles_in_hits_the_total_timeout(
    fetch_service: Callable[..., FetchService], page_server: PageServer
) -> None:
    page_server.routes["/drip"] = Reply(headers=HTML, chunks=[b"<p>drip</p>"] * 30, chunk_delay_s=0.1)
    service = fetch_service(allowed_hosts=["127.0.0.1"], timeout_s=1, ignore_robots=True)
    result = await service.fetch(url=page_server.url("/drip"))
    assert result["isError"] is True
    assert "Timed out" in text_of(result) and "within 1 s" in text_of(result)


async def test_a_response_over_the_size_cap_is_cut_with_a_note(
    fetch_service: Callable[..., FetchService], page_server: PageServer
) -> None:
    page_server.routes["/big.txt"] = Reply(headers={"Content-Type": "text/plain"}, body=b"x" * 50_000)
    service = fetch_service(allowed_hosts=["127.0.0.1"], max_response_bytes=10_000, ignore_robots=True)
    result = await service.fetch(url=page_server.url("/big.txt"), max_length=100_000)
    page = result["structuredContent"]
    assert result["isError"] is False
    assert page["content"] == "x" * 10_000
    assert page["body_truncated"] is True and page["response_bytes"] == 10_000
    assert text_of(result).endswith(
        "<error>The response was larger than 10,000 bytes and was cut there: "
        "the content ends at the cut.</error>"
    )


async def test_gzip_and_deflate_bodies_are_decoded(site: PageServer, opened: FetchService) -> None:
    body = article_page().encode()
    site.routes["/gz"] = Reply(headers={**HTML, "Content-Encoding": "gzip"}, body=gzip.compress(body))
    site.routes["/deflate"] = Reply(headers={**HTML, "Content-Encoding": "deflate"}, body=zlib.compress(body))
    for path in ("/gz", "/deflate"):
        page = (await opened.fetch(url=site.url(path)))["structuredContent"]
        assert page["response_bytes"] == len(body)
        assert "Autovacuum keeps dead tuples in check" in page["content"]


async def test_a_gzip_bomb_is_refused_without_inflating_it(site: PageServer, opened: FetchService) -> None:
    bomb = gzip.compress(bytes(40_000_000), compresslevel=6)  # 40 MB of zeros in ~40 KB
    site.routes["/bomb"] = Reply(headers={**HTML, "Content-Encoding": "gzip"}, body=bomb)
    result = await opened.fetch(url=site.url("/bomb"))
    assert result["isError"] is True
    assert text_of(result).startswith("Too large:")
    assert "decompression bomb" in text_of(result)


async def test_robots_txt_is_honoured(
    fetch_service: Callable[..., FetchService], page_server: PageServer
) -> None:
    page_server.routes["/robots.txt"] = Reply(
        headers={"Content-Type": "text/plain"},
        body=b"User-agent: mcp-sse-fetch\nDisallow: /private\n\nUser-agent: *\nDisallow:\n",
    )
    page_server.routes["/private/page"] = Reply(headers=HTML, body=b"<p>secret</p>")
    page_server.routes["/public"] = Reply(headers=HTML, body=b"<p>hello</p>")
    service = fetch_service(allowed_hosts=["127.0.0.1"])
    refused = await service.fetch(url=page_server.url("/private/page"))
    allowed = await service.fetch(url=page_server.url("/public"))
    assert refused["isError"] is True
    assert text_of(refused).startswith("robots.txt refused")
    assert allowed["isError"] is False
    assert "/private/page" not in page_server.paths()
    assert (
        page_server.requests[0].headers["user-agent"]
        == "mcp-sse-fetch/0.1 (+https://modelcontextprotocol.io)"
    )


async def test_robots_txt_is_checked_on_every_redirect_hop(
    fetch_service: Callable[..., FetchService], page_server: PageServer
) -> None:
    page_server.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /private\n")
    page_server.routes["/go"] = Reply(302, {"Location": "/private/x"})
    result = await fetch_service(allowed_hosts=["127.0.0.1"]).fetch(url=page_server.url("/go"))
    assert result["isError"] is True and "robots.txt refused" in text_of(result)
    assert "/private/x" not in page_server.paths()


async def test_robots_txt_answering_403_means_not_allowed(
    fetch_service: Callable[..., FetchService], page_server: PageServer
) -> None:
    page_server.routes["/robots.txt"] = Reply(403)
    page_server.routes["/page"] = Reply(headers=HTML, body=b"<p>x</p>")
    result = await fetch_service(allowed_hosts=["127.0.0.1"]).fetch(url=page_server.url("/page"))
    assert result["isError"] is True and "answered 403" in text_of(result)


async def test_ignore_robots_turns_the_check_off(
    fetch_service: Callable[..., FetchService], page_server: PageServer
) -> None:
    page_server.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /\n")
    page_server.routes["/page"] = Reply(headers=HTML, body=b"<p>fine</p>")
    service = fetch_service(allowed_hosts=["127.0.0.1"], ignore_robots=True, user_agent="test-agent/2")
    result = await service.fetch(url=page_server.url("/page"))
    assert result["isError"] is False
    assert page_server.paths() == ["/page"]
    assert page_server.requests[0].headers["user-agent"] == "test-agent/2"


async def test_connection_refused_is_reported_as_such(opened: FetchService) -> None:
    result = await opened.call("http_request", {"url": f"http://127.0.0.1:{free_port()}/"})
    assert result["isError"] is True
    assert text_of(result).startswith("Connection refused by 127.0.0.1:")


async def test_dns_failure_is_reported_as_such(fetch_service: Callable[..., FetchService]) -> None:
    service = fetch_service()
    service.use_resolver(static_resolver({}))
    result = await service.fetch(url="http://no-such-host.example/")
    assert result["isError"] is True
    assert text_of(result).startswith("DNS failure: DNS lookup of no-such-host.example failed")


async def test_tls_failures_are_reported_as_such(
    fetch_service: Callable[..., FetchService], tls_server: PageServer
) -> None:
    tls_server.routes["/"] = Reply(headers=HTML, body=b"<p>secure</p>")
    service = fetch_service(allowed_hosts=["127.0.0.1"], ignore_robots=True)
    result = await service.fetch(url=tls_server.url("/"))
    assert result["isError"] is True
    assert text_of(result).startswith("TLS error with 127.0.0.1:")
    assert "certificate verify failed" in text_of(result) or "self-signed" in text_of(result)
