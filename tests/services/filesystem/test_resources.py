"""Files as resources: the file:// template reads a file under a root as text or bytes, inside the same
sandbox and read cap as read_file."""

from __future__ import annotations

import base64

from tests.services.filesystem.conftest import FsClient, Tree


def read(fs: FsClient, uri: str) -> dict:
    body = fs.http.post(
        "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}}
    )
    return body.json()


def test_template_is_listed(fs: FsClient):
    body = fs.http.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "resources/templates/list"}).json()
    assert [entry["uriTemplate"] for entry in body["result"]["resourceTemplates"]] == ["file://{+path}"]


def test_text_file_reads_as_text_with_its_mime_type(fs: FsClient, tree: Tree):
    (tree.rw / "notes.md").write_text("# hello\n")
    contents = read(fs, f"file://{tree.rw}/notes.md")["result"]["contents"]
    assert contents == [
        {"uri": f"file://{tree.rw}/notes.md", "mimeType": "text/markdown", "text": "# hello\n"}
    ]


def test_binary_file_reads_as_blob(fs: FsClient, tree: Tree):
    (tree.rw / "pixel.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    content = read(fs, f"file://{tree.rw}/pixel.png")["result"]["contents"][0]
    assert content["mimeType"] == "image/png"
    assert base64.b64decode(content["blob"]) == b"\x89PNG\r\n\x1a\n\xff\xfe"


def test_a_file_outside_the_roots_is_refused(fs: FsClient, tree: Tree):
    (tree.outside / "secret.txt").write_text("no")
    error = read(fs, f"file://{tree.outside}/secret.txt")["error"]
    assert error["code"] == -32602
    assert "Refused path" in error["message"]


def test_a_file_over_the_read_cap_is_refused_naming_the_setting(serve_fs, tree: Tree):
    small = serve_fs(filesystem_max_read_bytes=1024)
    (tree.rw / "big.txt").write_text("x" * 2000)
    error = read(small, f"file://{tree.rw}/big.txt")["error"]
    assert "FILESYSTEM_MAX_READ_BYTES=1024" in error["message"]
