"""Turn a response body into what a model reads: markdown for HTML, pretty JSON, text, or a description.

HTML goes through two steps. Extraction (lxml) drops what is not the page's content -- scripts,
styles, navigation, banners, ads, sidebars, comments, footers -- and picks the main content
(``<main>``, ``<article>``, ``role=main``, else the block holding the most paragraph text), with
links made absolute. Conversion (html-to-markdown, a compiled converter) turns that subtree into
markdown with ATX headings, fenced code blocks and pipe tables.

Both steps, and re-indenting JSON, cost time in proportion to the body (about half a second per MB of
HTML): with ``max_bytes``, HTML past that size is converted up to it and JSON past it is returned as
sent, and :attr:`Converted.limited` says so.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin

import charset_normalizer
import html_to_markdown
import lxml.html
from lxml import etree

Kind = Literal["html", "json", "text", "binary"]

_CHARSET_IN_CONTENT_TYPE = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_CHARSET_IN_META = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)

_TEXT_TYPES = (
    "application/xml",
    "application/javascript",
    "application/ecmascript",
    "application/x-javascript",
    "application/x-sh",
    "application/x-yaml",
    "application/yaml",
    "application/toml",
    "application/sql",
    "application/x-ndjson",
    "application/csv",
    "image/svg+xml",
)

# Whole elements that are never content.
_DROP_TAGS = (
    "script", "style", "noscript", "template", "iframe", "frame", "frameset", "object", "embed",
    "svg", "canvas", "form", "button", "input", "select", "textarea", "link", "meta", "dialog",
)  # fmt: skip
_DROP_ROLES = ("navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog")
# class/id words that mark page furniture; matched as whole words of the attribute.
_FURNITURE_WORDS = frozenset(
    """ad ads adv advert adverts advertisement advertising sponsor sponsored promo promoted banner
    cookie cookies consent gdpr newsletter subscribe subscription social share sharing sharebar
    related recommended recirculation sidebar comment comments disqus popup modal overlay breadcrumb
    breadcrumbs crumbs menu nav navbar navigation footer masthead skip skiplink outbrain taboola
    trending widget toolbar pagination pager""".split()
)
_WORD_SPLIT = re.compile(r"[\s_-]+")

_CONVERSION_OPTIONS = html_to_markdown.ConversionOptions(
    heading_style="atx",
    code_block_style="backticks",
    extract_metadata=False,
    autolinks=False,
    preprocessing=html_to_markdown.PreprocessingOptions(enabled=False),
)


@dataclass(frozen=True, slots=True)
class Converted:
    """A body ready for a model: its kind, title (HTML only) and text.

    ``limited`` is set when the body was larger than the conversion cap: HTML then holds the markdown
    of the body's first ``max_bytes`` only, JSON is the body as sent (not re-indented).
    """

    kind: Kind
    text: str
    title: str | None = None
    limited: bool = False


def media_type(content_type: str) -> str:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return content_type.split(";", 1)[0].strip().lower()


def classify(content_type: str, body: bytes) -> Kind:
    """What a body is, from its Content-Type, or from its first bytes when the type says nothing useful."""
    mtype = media_type(content_type)
    if mtype in ("text/html", "application/xhtml+xml"):
        return "html"
    if mtype == "application/json" or mtype.endswith("+json"):
        return "json"
    if mtype.startswith("text/") or mtype in _TEXT_TYPES or mtype.endswith("+xml"):
        return "text"
    if mtype and mtype not in ("application/octet-stream", "binary/octet-stream"):
        return "binary"
    head = body[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:256]:
        return "html"
    if b"\x00" in body[:8192]:
        return "binary"
    sample = body[:8192]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a multi-byte character cut at the sample's end is fine
            return "binary"
    return "json" if head[:1] in (b"{", b"[") and _is_json(body) else "text"


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def decode(body: bytes, content_type: str, kind: Kind) -> str:
    """Decode a body: BOM, then the header's charset, then an HTML meta tag, then UTF-8, then detection."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if body.startswith(bom):
            return body.decode(encoding, errors="replace")
    declared = _CHARSET_IN_CONTENT_TYPE.search(content_type)
    name = declared.group(1) if declared else None
    if name is None and kind == "html":
        meta = _CHARSET_IN_META.search(body[:4096])
        name = meta.group(1).decode("ascii", "ignore") if meta else None
    if name:
        try:
            return body.decode(_canonical_charset(name), errors="replace")
        except LookupError:
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":  # a body cut inside its last character
            return body[: exc.start].decode("utf-8")
    best = charset_normalizer.from_bytes(body[:65536]).best()
    return body.decode(best.encoding if best else "utf-8", errors="replace")


def _canonical_charset(name: str) -> str:
    encoding = codecs.lookup(name).name
    # What browsers do (WHATWG Encoding): latin-1 labels mean windows-1252, and so on.
    return {"latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252", "shift_jis": "cp932"}.get(
        encoding, encoding
    )


def convert(
    body: bytes, content_type: str, base_url: str, *, raw: bool = False, max_bytes: int | None = None
) -> Converted:
    """Convert a body for a model; ``raw`` keeps HTML (and JSON) as the server sent it.

    ``max_bytes`` bounds the work: HTML beyond it is not converted, JSON beyond it is not re-indented.
    """
    kind = classify(content_type, body)
    if kind == "binary":
        return Converted(kind, describe_binary(content_type, len(body)))
    limited = not raw and kind in ("html", "json") and max_bytes is not None and len(body) > max_bytes
    if limited and kind == "html":
        body = body[:max_bytes]
    text = decode(body, content_type, kind)
    if raw:
        return Converted(kind, text, html_title(text) if kind == "html" else None)
    if kind == "html":
        title, markdown = html_to_markdown_text(text, base_url)
        return Converted(kind, markdown, title, limited=limited)
    if kind == "json":
        return Converted(kind, text if limited else pretty_json(text), limited=limited)
    return Converted(kind, text)


def describe_binary(content_type: str, size: int) -> str:
    """One line saying what a binary body is, instead of the bytes."""
    mtype = media_type(content_type) or "application/octet-stream"
    return f"Binary content ({mtype}, {size:,} bytes) is not shown as text."


def pretty_json(text: str) -> str:
    """JSON indented by two spaces; text that does not parse (a body cut at the size cap) is kept as is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def html_title(text: str) -> str | None:
    """The ``<title>`` of an HTML document, if it has one."""
    match = re.search(r"<title[^>]*>(.*?)</title>", text[:65536], re.IGNORECASE | re.DOTALL)
    if not match:
        return None
    return " ".join(lxml.html.fromstring(f"<p>{match.group(1)}</p>").text_content().split()) or None


def html_to_markdown_text(text: str, base_url: str) -> tuple[str | None, str]:
    """The title and the main content of an HTML document, as markdown."""
    root = _parse(text)
    if root is None:
        return None, ""
    title = _title(root)
    main = extract_main(root)
    fragment = lxml.html.tostring(main, encoding="unicode")
    options = dataclasses.replace(_CONVERSION_OPTIONS, base_url=_base_href(root, base_url))
    markdown = html_to_markdown.convert(fragment, options).content or ""
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip()
    return title, markdown


def _base_href(root: lxml.html.HtmlElement, url: str) -> str:
    """The URL relative links resolve against: the page's ``<base href>`` if any, else its own URL."""
    found = root.xpath("//base/@href")
    return urljoin(url, str(found[0]).strip()) if found else url


def _parse(text: str) -> lxml.html.HtmlElement | None:
    # lxml refuses str input that carries an XML encoding declaration.
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text)
    try:
        return lxml.html.document_fromstring(text) if text.strip() else None
    except (etree.ParserError, ValueError):
        return None


def _title(root: lxml.html.HtmlElement) -> str | None:
    for path in ("//head/title", "//title", "//meta[@property='og:title']/@content", "//h1"):
        found = root.xpath(path)
        if found:
            node = found[0]
            value = node if isinstance(node, str) else node.text_content()
            value = " ".join(str(value).split())
            if value:
                return value
    return None


def extract_main(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """The element holding the page's main content, with page furniture removed from it."""
    _drop(list(root.iter(etree.Comment, etree.ProcessingInstruction, *_DROP_TAGS)))
    main = _pick_main(root)
    furniture = list(main.iter("nav", "aside"))
    # Page-level header/footer are furniture; an article's own header holds its title and byline.
    furniture += [
        el for el in main.iter("header", "footer") if next(el.iterancestors("article"), None) is None
    ]
    marked = main.xpath("descendant::*[@class or @id or @role or @hidden or @aria-hidden or @style]")
    furniture += [el for el in marked if _is_furniture(el)]
    # A wrapper whose class merely mentions a furniture word ("content-with-sidebar") may hold the
    # article itself: never drop an element that carries most of the main content's text.
    main_text = len(main.text_content())
    _drop(el for el in furniture if len(el.text_content()) * 2 <= main_text)
    return main


def _pick_main(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    body = root.find("body")
    if body is None:
        body = root
    candidates = body.xpath(".//main | .//*[@role='main'] | .//article")
    candidates = [el for el in candidates if not _is_furniture(el)]
    if candidates:
        return max(candidates, key=_text_score)
    # No semantic markup: the block whose own paragraphs hold the most text (readability's idea).
    scores: dict[lxml.html.HtmlElement, int] = {}
    for para in body.iter("p", "pre", "td", "li"):
        parent = para.getparent()
        if parent is not None and not _is_furniture(parent):
            scores[parent] = scores.get(parent, 0) + len(para.text_content())
    if not scores:
        return body
    best = max(scores, key=lambda el: scores[el])
    if scores[best] < len(body.text_content()) / 5:
        return body
    return best


def _text_score(element: lxml.html.HtmlElement) -> int:
    return len(element.text_content())


def _is_furniture(element: lxml.html.HtmlElement) -> bool:
    attrib = element.attrib
    if attrib.get("role", "").lower() in _DROP_ROLES:
        return True
    if "hidden" in attrib or attrib.get("aria-hidden", "").lower() == "true":
        return True
    if "display:none" in attrib.get("style", "").replace(" ", "").lower():
        return True
    names = f"{attrib.get('class', '')} {attrib.get('id', '')}".lower()
    return bool(names.strip()) and not _FURNITURE_WORDS.isdisjoint(_WORD_SPLIT.split(names))


def _drop(elements: object) -> None:
    for element in list(elements):  # type: ignore[call-overload]
        parent = element.getparent()
        if parent is None:
            continue
        # Keep the text that follows the element (its tail): it belongs to the parent.
        tail = element.tail
        if tail:
            previous = element.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail
        parent.remove(element)
