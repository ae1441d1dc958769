"""A tool result's JSON: a text encoded once (an EncodedText field, a shared text block) gives the same
JSON as encoding every text where it stands."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import Field, ValidationError, computed_field

from libmcp.tools import SHARED_TEXT_MIN_CHARS, EncodedText, ToolOutput, call_result, object_schema

# Every character JSON escapes, and non-ASCII of one to four bytes in UTF-8.
ALL_KINDS = "".join(chr(code) for code in range(0x80)) + 'caf\u00e9 \u2014 \u65e5\u672c \u2028 \U0001f600 "\\'


class FileText(ToolOutput):
    path: str
    content: EncodedText = Field(alias="text")
    size: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lines(self) -> int:
        return str(self.content).count("\n")

    def mcp_text(self) -> EncodedText:
        return self.content


class PlainText(ToolOutput):
    path: str
    content: str

    def mcp_text(self) -> str:
        return self.content


def ordinary_json(output: ToolOutput) -> bytes:
    """The answer as it is built without sharing: every text decoded to a str and encoded where it stands."""
    return orjson.dumps(
        {
            "content": [{"type": "text", "text": str(output.mcp_text())}],
            "structuredContent": output.model_dump(mode="json", by_alias=True),
            "isError": False,
        }
    )


@pytest.mark.parametrize("repeat", [1, 200, 20_000])
def test_an_encoded_text_field_gives_the_json_of_the_decoded_text(repeat: int) -> None:
    text = ALL_KINDS * repeat
    output = FileText(path="/a/b.txt", text=EncodedText.from_utf8(text.encode()), size=len(text.encode()))

    result = call_result(output)

    assert orjson.dumps(result) == ordinary_json(output)
    assert list(result["structuredContent"]) == ["path", "text", "size", "lines"]
    assert isinstance(result["content"][0]["text"], orjson.Fragment)


def test_a_long_str_text_block_that_is_a_field_is_encoded_once() -> None:
    output = PlainText(path="/a/b.txt", content=ALL_KINDS * (SHARED_TEXT_MIN_CHARS // 100 + 1))

    result = call_result(output)

    assert orjson.dumps(result) == ordinary_json(output)
    fragment = result["content"][0]["text"]
    assert isinstance(fragment, orjson.Fragment)
    assert result["structuredContent"]["content"] is fragment


def test_a_short_str_text_block_is_left_as_it_is() -> None:
    output = PlainText(path="/a/b.txt", content="short\n")

    result = call_result(output)

    assert result["content"][0]["text"] == "short\n"
    assert orjson.dumps(result) == ordinary_json(output)


def test_from_utf8_encodes_like_orjson_every_code_point_but_surrogates() -> None:
    text = "".join(chr(code) for code in range(0x110000) if not 0xD800 <= code < 0xE000)

    assert EncodedText.from_utf8(text.encode()).json == orjson.dumps(text)
    assert EncodedText.from_utf8(ALL_KINDS[:0x80].encode()).json == orjson.dumps(ALL_KINDS[:0x80])  # ASCII


@pytest.mark.parametrize("data", [b"\xff", b"caf\xe9", b"\xed\xa0\x80", b"ok \xf0\x9f\x98"])
def test_from_utf8_refuses_bytes_that_are_not_utf8(data: bytes) -> None:
    with pytest.raises(ValueError):
        EncodedText.from_utf8(data)


def test_an_encoded_text_field_is_a_string_to_schemas_validation_and_python() -> None:
    schema: dict[str, Any] = object_schema(FileText)
    from_str = FileText.model_validate({"path": "p", "text": 'say "hi"\n', "size": 9})
    from_json = FileText.model_validate_json('{"path": "p", "text": "say \\"hi\\"\\n", "size": 9}')

    assert schema["properties"]["text"]["type"] == "string"
    assert from_str.content == from_json.content == 'say "hi"\n'
    assert str(from_str.content) == 'say "hi"\n'
    assert from_str.model_dump(by_alias=True)["text"] == 'say "hi"\n'
    dumped = from_str.model_dump_json(by_alias=True)
    assert dumped == '{"path":"p","text":"say \\"hi\\"\\n","size":9,"lines":1}'
    with pytest.raises(ValidationError):
        FileText.model_validate({"path": "p", "text": 5, "size": 5})
