"""Benchmark: our fetch service vs the reference MCP fetch server, on the same loopback pages, same run.

    .venv/bin/python -m bench.fetch_bench [--quick] [--write-doc docs/fetch-comparison.md]

Pages of 200 KB and 2 MB (a news-style article with navigation, ads, scripts, tables and code) are
served from a loopback server. Each is fetched and converted to markdown at concurrency 1 and 8:

* ours: ``mcp-sse serve fetch`` as a child process, called over Streamable HTTP (``/mcp``) with the
  official SDK client, guard opened for 127.0.0.1 with FETCH_ALLOWED_HOSTS;
* the reference: PyPI ``mcp-server-fetch`` (installed into .tools/fetch-ref by
  scripts/setup.d/30-fetch-reference.sh), called over stdio with the same SDK, its private-address
  guard opened with ``--allow-private-ips``. With Node on the machine it extracts with Readability.js
  ("reference/node", its default here); with Node hidden from it, with readabilipy's Python
  extractor ("reference/python", what it runs where Node is absent, as in its container image).
  It takes tens of seconds per 200 KB page and minutes per 2 MB page here, so by default it runs
  only the cells it finishes in minutes (see PLAN); ``--full`` runs them all.

Both skip robots.txt (``--ignore-robots-txt`` / FETCH_IGNORE_ROBOTS=true) so the same work is timed.
Every cell is bounded in requests and in time. Output: req/s, p50/p95 latency, and our speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from harness.pages import BOILERPLATE_MARKERS, CONTENT_MARKERS, article_page
from harness.pageserver import PageServer, Reply
from harness.processes import REPO_ROOT, ServiceProcess

REFERENCE_PYTHON = REPO_ROOT / ".tools" / "fetch-ref" / "bin" / "python"
PAGES = {"200KB": 200_000, "2MB": 2_000_000}
CELL_TIME_LIMIT_S = 120.0  # no new request starts after this; calls in flight finish

# Requests per (page, concurrency) cell. The reference takes tens of seconds per 200 KB page and
# minutes per 2 MB page (Readability.js under jsdom, or readabilipy's Python extractor), so by default
# it runs one round per cell it can finish in minutes; --full runs every cell for it as well.
PLAN: dict[str, dict[tuple[str, int], int]] = {
    "ours": {("200KB", 1): 16, ("200KB", 8): 32, ("2MB", 1): 4, ("2MB", 8): 8},
    "reference/node": {("200KB", 1): 2},
    "reference/python": {("200KB", 1): 2, ("200KB", 8): 8, ("2MB", 1): 1},
}
PLAN_FULL: dict[str, dict[tuple[str, int], int]] = {
    "ours": PLAN["ours"],
    "reference/node": {("200KB", 1): 2, ("200KB", 8): 8, ("2MB", 1): 1, ("2MB", 8): 8},
    "reference/python": {("200KB", 1): 2, ("200KB", 8): 8, ("2MB", 1): 1, ("2MB", 8): 8},
}

Call = Callable[[str], Awaitable[str]]


@dataclass
class Cell:
    server: str
    page: str
    concurrency: int
    latencies: list[float]
    elapsed: float
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return (
            ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")
        )


async def run_cell(call: Call, url: str, concurrency: int, requests: int) -> tuple[list[float], float, int]:
    """``requests`` calls spread over ``concurrency`` workers; stops early past the cell's time limit."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0 and time.perf_counter() - started < CELL_TIME_LIMIT_S:
            remaining -= 1
            begin = time.perf_counter()
            try:
                await call(url)
            except Exception as exc:
                errors += 1
                print(f"    error: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            latencies.append(time.perf_counter() - begin)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


def _tool_text(result: Any) -> str:
    text = "".join(getattr(block, "text", "") for block in result.content)
    if result.is_error:
        raise RuntimeError(text[:300])
    return text


async def open_ours(stack: AsyncExitStack) -> Call:
    process = ServiceProcess(
        "fetch",
        env={"FETCH_ALLOWED_HOSTS": "127.0.0.1", "FETCH_IGNORE_ROBOTS": "true", "MCP_LOG_LEVEL": "WARNING",
             "MCP_TOOL_TIMEOUT_S": "300", "FETCH_TIMEOUT_S": "120"},
    )  # fmt: skip
    stack.callback(process.stop)
    process.start()
    client = await stack.enter_async_context(
        Client(f"{process.url}/mcp", mode="auto", read_timeout_seconds=300)
    )

    async def call(url: str, **arguments: Any) -> str:
        return _tool_text(await client.call_tool("fetch", {"url": url, **arguments}))

    return call


async def open_reference(stack: AsyncExitStack, *, with_node: bool) -> Call:
    env = {"PATH": os.environ.get("PATH", "") if with_node else str(REFERENCE_PYTHON.parent), "HOME": "/tmp"}
    parameters = StdioServerParameters(
        command=str(REFERENCE_PYTHON),
        args=["-m", "mcp_server_fetch", "--ignore-robots-txt", "--allow-private-ips"],
        env=env,
    )
    client = await stack.enter_async_context(Client(parameters, read_timeout_seconds=300))

    async def call(url: str, **arguments: Any) -> str:
        return _tool_text(await client.call_tool("fetch", {"url": url, **arguments}))

    return call


def quality(text: str) -> str:
    kept = sum(marker in text for marker in CONTENT_MARKERS)
    leaked = sum(marker in text for marker in BOILERPLATE_MARKERS)
    return (
        f"content markers {kept}/{len(CONTENT_MARKERS)}, "
        f"boilerplate leaked {leaked}/{len(BOILERPLATE_MARKERS)}"
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell")
    parser.add_argument(
        "--full", action="store_true", help="every cell for the reference too (about an hour)"
    )
    parser.add_argument("--write-doc", type=Path, help="write the side-by-side comparison page here")
    args = parser.parse_args(argv)
    if not REFERENCE_PYTHON.exists():
        print("reference not installed: run bash scripts/setup.d/30-fetch-reference.sh", file=sys.stderr)
        return 2
    plan = PLAN_FULL if args.full else PLAN
    if args.quick:
        plan = {server: {cell: max(1, n // 4) for cell, n in cells.items()} for server, cells in plan.items()}

    with PageServer("127.0.0.1").running() as site:
        html = {"Content-Type": "text/html; charset=utf-8"}
        site.routes["/article"] = Reply(headers=html, body=article_page().encode())
        for name, size in PAGES.items():
            site.routes[f"/{name}"] = Reply(headers=html, body=article_page(size).encode())
        async with AsyncExitStack() as stack:
            servers: dict[str, Call] = {"ours": await open_ours(stack)}
            servers["reference/node"] = await open_reference(stack, with_node=True)
            servers["reference/python"] = await open_reference(stack, with_node=False)

            article_url = site.url("/article")
            outputs = {name: await call(article_url, max_length=100_000) for name, call in servers.items()}
            for name, text in outputs.items():
                print(f"{name:>17}: article page: {quality(text)}")

            for page in PAGES:
                await servers["ours"](site.url(f"/{page}"))  # warm-up: imports, pooled connection
            cells: list[Cell] = []
            for page in PAGES:
                for concurrency in (1, 8):
                    for name, call in servers.items():
                        requests = plan[name].get((page, concurrency), 0)
                        if not requests:
                            continue
                        latencies, elapsed, errors = await run_cell(
                            call, site.url(f"/{page}"), concurrency, requests
                        )
                        cell = Cell(name, page, concurrency, latencies, elapsed, errors)
                        cells.append(cell)
                        print(
                            f"{page:>6} c={concurrency} {name:>17}: {len(latencies):3d} req "
                            f"in {elapsed:6.2f} s = {cell.rate:7.2f} req/s  "
                            f"p50 {cell.percentile(0.5) * 1000:8.1f} ms  "
                            f"p95 {cell.percentile(0.95) * 1000:8.1f} ms  errors {errors}"
                        )
    summary = print_summary(cells)
    if args.write_doc:
        write_doc(args.write_doc, article_url, outputs, summary)
    return 0


def print_summary(cells: list[Cell]) -> list[str]:
    """Print the figures as a markdown table, and return its lines."""
    lines = [
        "| page | concurrency | server | requests | req/s | p50 ms | p95 ms | ours ÷ this (req/s) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    ours = {(c.page, c.concurrency): c for c in cells if c.server == "ours"}
    for cell in cells:
        mine = ours[(cell.page, cell.concurrency)]
        ratio = "-" if cell.server == "ours" else (f"{mine.rate / cell.rate:.1f}x" if cell.rate else "n/a")
        lines.append(
            f"| {cell.page} | {cell.concurrency} | {cell.server} | {len(cell.latencies)} | {cell.rate:.2f} "
            f"| {cell.percentile(0.5) * 1000:.0f} | {cell.percentile(0.95) * 1000:.0f} | {ratio} |"
        )
    print("\n" + "\n".join(lines))
    print(f"\n{sum(c.errors for c in cells)} errors")
    return lines


def write_doc(path: Path, url: str, outputs: dict[str, str], figures: list[str]) -> None:
    """The article page's output from each server, one after the other, with quality counts and figures."""
    lines = [
        "# fetch: our output beside the reference server's",
        "",
        "The same page (`harness/pages.py: article_page()`, a news-style article with a",
        "navigation bar, cookie banner, ad slots, scripts, a sidebar, comments and a footer around an",
        "article holding headings, links, a code block, a table, a list, a quotation and a figure) fetched",
        "from a loopback server with `fetch(url, max_length=100000)` from our service and from the",
        "reference `mcp-server-fetch` (PyPI), with Readability.js under Node (its default where Node is",
        "installed) and with readabilipy's Python extractor (where Node is absent, as in its container",
        "image). Generated by `.venv/bin/python -m bench.fetch_bench --write-doc docs/fetch-comparison.md`;",
        "the loopback port in links is written as PORT.",
        "",
        "| server | article text kept | boilerplate leaked |",
        "| --- | --- | --- |",
    ]
    for name, text in outputs.items():
        kept = sum(marker in text for marker in CONTENT_MARKERS)
        leaked = [marker for marker in BOILERPLATE_MARKERS if marker in text]
        lines.append(
            f"| {name} | {kept}/{len(CONTENT_MARKERS)} markers | {len(leaked)}/{len(BOILERPLATE_MARKERS)}"
            + (f": {', '.join(repr(m) for m in leaked)}" if leaked else "")
            + " |"
        )
    lines += [
        "",
        "Differences to look for below: ours keeps the article's `# title` heading, makes links absolute",
        "(a model cannot resolve `/docs/...` on its own), labels the code fence (`sql`) and drops the",
        "in-article ad; Readability.js drops the title heading, keeps the sponsored paragraph and leaves",
        "links relative; readabilipy's Python extractor keeps the cookie banner, ads, comments, sidebar",
        "and footer, and loses the links, the inline code marks and the code block's line breaks.",
        "",
        "## Throughput (same run)",
        "",
        "200 KB and 2 MB versions of the page (its article sections repeated), converted to markdown",
        "(`fetch(url)`, default max_length), robots.txt off on both sides. Ours over Streamable HTTP,",
        "the reference over stdio, both with the official SDK client. The reference runs one round per",
        "cell it can finish in minutes (`--full` runs all).",
        "",
        *figures,
    ]
    for name, text in outputs.items():
        shown = text.replace(url.rsplit("/", 1)[0], "http://127.0.0.1:PORT")
        lines += ["", f"## Output: {name}", "", "````markdown", shown, "````"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    sys.exit(asyncio.run(main()))
