"""Large read_file answers through the official MCP SDK client: the text arrives byte for byte, twice.

read_file sends a file's text as its JSON encoding made straight from the file's bytes (EncodedText),
in the text block and in structuredContent; these tests pin that what a client decodes from either is
exactly the file, and that structuredContent still validates against the tool's outputSchema.
"""

from __future__ import annotations

import itertools

import jsonschema
import pytest
from mcp import Client

from tests.services.filesystem.conftest import FsClient, Tree
from tests.services.filesystem.test_sdk_clients import text_of

ONE_MIB = 1_048_576  # FILESYSTEM_MAX_READ_BYTES by default: the largest file read whole

# Every kind of character JSON treats differently: quotes and backslashes, newlines and tabs, other
# control characters (\u001b), DEL, two- and three-byte characters, U+2028 (which JavaScript once
# refused raw), and a character outside the BMP (four bytes in UTF-8, a surrogate pair in \u form).
MIXED_LINE = (
    'say("\\"hi\\"", path=r"C:\\tmp\\x")\t# caf\u00e9 \u2014 \u65e5\u672c \u2028 \x1b[0m \x7f \U0001f600'
)
ASCII_LINE = 'say("\\"hi\\"", path=r"C:\\tmp\\x")\t# plain ASCII, escaped all the same'


def text_of_size(line: str, size: int) -> str:
    """Lines of ``line`` numbered, cut to exactly ``size`` bytes of UTF-8 (padded with ASCII)."""
    text = "".join(f"{n}: {line}\n" for n in itertools.islice(itertools.count(), size // 40))
    data = text.encode()[: size - 1]
    kept = data.decode("utf-8", errors="ignore")
    return kept + "#" * (size - 1 - len(kept.encode())) + "\n"


@pytest.mark.parametrize("line", [MIXED_LINE, ASCII_LINE], ids=["mixed", "ascii"])
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_one_mib_file_reaches_the_sdk_client_byte_for_byte(
    fs: FsClient, tree: Tree, line: str, mode: str
) -> None:
    text = text_of_size(line, ONE_MIB)
    (tree.rw / "big.txt").write_bytes(text.encode())
    async with Client(f"{fs.url}/mcp", mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        read = await client.call_tool("read_file", {"path": "big.txt"})
    assert read.is_error is False
    assert text_of(read).encode() == text.encode()
    structured = read.structured_content
    assert structured is not None
    assert structured["content"].encode() == text.encode()
    assert structured["size_bytes"] == ONE_MIB
    assert structured["total_lines"] == text.count("\n") == structured["end_line"]
    jsonschema.validate(structured, tools["read_file"].output_schema)


async def test_lines_of_a_large_file_arrive_byte_for_byte(fs: FsClient, tree: Tree) -> None:
    text = text_of_size(MIXED_LINE, ONE_MIB)
    (tree.rw / "big.txt").write_bytes(text.encode())
    lines = [line + "\n" for line in text.split("\n")[:-1]]  # not splitlines: it also splits at U+2028
    async with Client(f"{fs.url}/mcp", mode="legacy") as client:
        middle = await client.call_tool("read_file", {"path": "big.txt", "start_line": 100, "end_line": 5000})
        tail = await client.call_tool("read_file", {"path": "big.txt", "tail": 3})
    assert text_of(middle) == "".join(lines[99:5000]) == middle.structured_content["content"]
    assert text_of(tail) == "".join(lines[-3:]) == tail.structured_content["content"]


def test_a_file_that_is_not_utf8_is_still_refused_with_the_offset(fs: FsClient, tree: Tree) -> None:
    (tree.rw / "broken.txt").write_bytes("caf\u00e9\n".encode() * 20_000 + b"\xff tail\n")
    assert "not UTF-8 text (invalid byte at offset 120000)" in fs.error("read_file", path="broken.txt")
    # A surrogate written as UTF-8 (CESU-8) is not UTF-8 either.
    (tree.rw / "cesu.txt").write_bytes(b"ok \xed\xa0\x80 no")
    assert "not UTF-8 text (invalid byte at offset 3)" in fs.error("read_file", path="cesu.txt")
