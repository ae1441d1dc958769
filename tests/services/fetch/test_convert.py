"""Conversion of bodies, checked on the converter directly (the service tests cover it end to end)."""

from __future__ import annotations

import pytest

from services.fetch.convert import classify, convert, decode

BASE = "https://example.org/blog/post"


def test_a_page_without_semantic_markup_keeps_its_densest_block() -> None:
    html = (
        "<html><body><div id='top'><a href='/'>Home</a> <a href='/x'>X</a></div>"
        "<div class='wrap'><div class='text'>"
        + "".join(f"<p>Paragraph {i} of the story, long enough to count as real prose.</p>" for i in range(8))
        + "</div><div class='links'><p>Share</p></div></div>"
        "<div class='footer-ish'>Contact us</div></body></html>"
    )
    converted = convert(html.encode(), "text/html", BASE)
    assert "Paragraph 0 of the story" in converted.text and "Paragraph 7 of the story" in converted.text
    assert "Contact us" not in converted.text
    assert "Home" not in converted.text


def test_a_content_wrapper_named_like_furniture_is_kept() -> None:
    html = (
        "<html><body><main><div class='content-with-sidebar'>"
        + "<p>The whole article lives in a wrapper whose class says sidebar.</p>" * 5
        + "</div><div class='share'>Share this</div></main></body></html>"
    )
    text = convert(html.encode(), "text/html", BASE).text
    assert text.count("The whole article lives in a wrapper") == 5
    assert "Share this" not in text


def test_relative_links_resolve_against_the_base_element() -> None:
    html = "<html><head><base href='/docs/'></head><body><main><a href='guide'>Guide</a></main></body></html>"
    assert "[Guide](https://example.org/docs/guide)" in convert(html.encode(), "text/html", BASE).text


def test_hidden_elements_are_dropped() -> None:
    html = (
        "<html><body><main><p>Visible</p><p hidden>Hidden attr</p><p style='display: none'>Hidden style</p>"
        "<p aria-hidden='true'>Hidden aria</p></main></body></html>"
    )
    assert convert(html.encode(), "text/html", BASE).text == "Visible"


def test_an_xml_declared_xhtml_page_parses() -> None:
    page = '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><body><p>ok</p></body></html>'
    assert convert(page.encode(), "application/xhtml+xml", BASE).text == "ok"


@pytest.mark.parametrize(
    ("content_type", "body", "kind"),
    [
        ("text/html; charset=utf-8", b"<p>x</p>", "html"),
        ("application/problem+json", b'{"a": 1}', "json"),
        ("application/xml", b"<a/>", "text"),
        ("text/csv", b"a,b\n1,2\n", "text"),
        ("image/svg+xml", b"<svg/>", "text"),
        ("image/webp", b"RIFF....WEBP", "binary"),
        ("", b"<!DOCTYPE html><html><body>x</body></html>", "html"),
        ("", b'{"sniffed": true}', "json"),
        ("application/octet-stream", b"plain words", "text"),
        ("application/octet-stream", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    ],
)
def test_bodies_are_classified_by_type_then_by_content(content_type: str, body: bytes, kind: str) -> None:
    assert classify(content_type, body) == kind


def test_a_byte_order_mark_wins_over_a_wrong_header() -> None:
    body = "\ufeffÜber".encode("utf-16-le")
    assert decode(b"\xff\xfe" + body[2:], "text/plain; charset=iso-8859-1", "text") == "Über"


def test_latin1_labels_decode_as_windows_1252() -> None:
    text = "\u201cquoted\u201d \u2013 \u20ac"  # curly quotes, en dash, euro: cp1252 only, not latin-1
    assert decode(text.encode("cp1252"), "text/plain; charset=ISO-8859-1", "text") == text
