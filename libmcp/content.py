"""Content blocks: what a prompt message or a tool result carries (text, image, audio, a resource).

The models serialize to the MCP wire shapes (``{"type": "image", "data": ..., "mimeType": ...}``);
binary data is given as bytes and sent as base64.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class TextContent(_Wire):
    type: Literal["text"] = "text"
    text: str


class ImageContent(_Wire):
    type: Literal["image"] = "image"
    data: str = Field(description="base64 of the image's bytes")
    mime_type: str = Field(alias="mimeType")

    @classmethod
    def of(cls, data: bytes, mime_type: str) -> ImageContent:
        return cls(data=base64.b64encode(data).decode("ascii"), mimeType=mime_type)


class AudioContent(_Wire):
    type: Literal["audio"] = "audio"
    data: str = Field(description="base64 of the audio's bytes")
    mime_type: str = Field(alias="mimeType")

    @classmethod
    def of(cls, data: bytes, mime_type: str) -> AudioContent:
        return cls(data=base64.b64encode(data).decode("ascii"), mimeType=mime_type)


class TextResourceContents(_Wire):
    uri: str
    mime_type: str | None = Field(default=None, alias="mimeType")
    text: str


class BlobResourceContents(_Wire):
    uri: str
    mime_type: str | None = Field(default=None, alias="mimeType")
    blob: str = Field(description="base64 of the resource's bytes")

    @classmethod
    def of(cls, uri: str, data: bytes, mime_type: str | None) -> BlobResourceContents:
        return cls(uri=uri, blob=base64.b64encode(data).decode("ascii"), mimeType=mime_type)


class EmbeddedResource(_Wire):
    type: Literal["resource"] = "resource"
    resource: TextResourceContents | BlobResourceContents


ContentBlock = Annotated[
    TextContent | ImageContent | AudioContent | EmbeddedResource, Field(discriminator="type")
]


def wire(block: BaseModel) -> dict[str, object]:
    """A block (or resource contents) as its MCP JSON object: camelCase keys, no absent optionals."""
    return block.model_dump(mode="json", by_alias=True, exclude_none=True)
