"""Glob patterns over relative paths, matched in polynomial time (no regular-expression backtracking).

``*`` and ``?`` match within one name, ``**`` as a whole segment matches any number of directories
(at least one name when it ends the pattern),
``[abc]``, ``[a-z]`` and ``[!abc]`` choose one character, ``{a,b}`` chooses an alternative (not nested).
``*`` also matches names starting with a dot. A pattern is a model's input, so it may be hostile:
matching costs at most (pattern length times name length) per name and alternatives are capped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

MAX_ALTERNATIVES = 64


class GlobError(ValueError):
    """A pattern that cannot be used (too many alternatives)."""


@dataclass(frozen=True)
class _Class:
    negate: bool
    ranges: tuple[tuple[str, str], ...]

    def matches(self, char: str) -> bool:
        inside = any(low <= char <= high for low, high in self.ranges)
        return inside != self.negate


class _Star:
    """``*``: any run of characters within one name."""


_STAR = _Star()
Token = str | _Class | _Star | None  # a literal character, a class, a star, or None for "?"


def _tokens(segment: str) -> tuple[Token, ...]:
    tokens: list[Token] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            if not tokens or tokens[-1] is not _STAR:
                tokens.append(_STAR)
        elif char == "?":
            tokens.append(None)
        elif char == "[" and (end := segment.find("]", index + 2)) > 0:
            body = segment[index + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            ranges = []
            position = 0
            while position < len(body):
                if position + 2 < len(body) and body[position + 1] == "-":
                    ranges.append((body[position], body[position + 2]))
                    position += 3
                else:
                    ranges.append((body[position], body[position]))
                    position += 1
            tokens.append(_Class(negate, tuple(ranges)))
            index = end
        else:
            tokens.append(char)
        index += 1
    return tuple(tokens)


def _match_name(tokens: tuple[Token, ...], name: str) -> bool:
    """Wildcard match of one name, greedy with a single backtrack point (linear-times-pattern worst case)."""
    t = n = 0
    star_t, star_n = -1, 0
    while n < len(name):
        if t < len(tokens) and tokens[t] is _STAR:
            star_t, star_n = t, n
            t += 1
            continue
        if t < len(tokens) and _one(tokens[t], name[n]):
            t += 1
            n += 1
            continue
        if star_t < 0:
            return False
        star_n += 1
        t, n = star_t + 1, star_n
    while t < len(tokens) and tokens[t] is _STAR:
        t += 1
    return t == len(tokens)


def _one(token: Token, char: str) -> bool:
    if token is None:
        return True
    if isinstance(token, _Class):
        return token.matches(char)
    return token == char  # _Star never reaches here: _match_name handles it first


def expand_braces(pattern: str) -> list[str]:
    """``a{b,c}d`` → ``[abd, acd]``; raises GlobError past MAX_ALTERNATIVES."""
    start = pattern.find("{")
    end = pattern.find("}", start + 1)
    if start < 0 or end < 0 or "{" in pattern[start + 1 : end]:
        return [pattern]
    head, options, tail = pattern[:start], pattern[start + 1 : end].split(","), pattern[end + 1 :]
    results: list[str] = []
    for rest in expand_braces(tail):
        for option in options:
            results.append(head + option + rest)
            if len(results) > MAX_ALTERNATIVES:
                raise GlobError(f"expands to more than {MAX_ALTERNATIVES} alternatives")
    return results


class Glob:
    """A compiled pattern: :meth:`matches` takes a relative path with ``/`` separators."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._alternatives = [
            tuple(None if segment == "**" else _tokens(segment) for segment in _segments(alternative))
            for alternative in expand_braces(pattern)
        ]

    def matches(self, path: str) -> bool:
        parts = tuple(part for part in path.split("/") if part)
        return any(_match_parts(segments, parts) for segments in self._alternatives)


def _segments(pattern: str) -> list[str]:
    return [segment for segment in pattern.split("/") if segment not in ("", ".")]


def _match_parts(segments: tuple[tuple[Token, ...] | None, ...], parts: tuple[str, ...]) -> bool:
    @cache
    def match(s: int, p: int) -> bool:
        if s == len(segments):
            return p == len(parts)
        segment = segments[s]
        if segment is None:  # "**": zero or more whole names; one or more when it ends the pattern
            first = p + 1 if s == len(segments) - 1 else p
            return any(match(s + 1, q) for q in range(first, len(parts) + 1))
        return p < len(parts) and _match_name(segment, parts[p]) and match(s + 1, p + 1)

    return match(0, 0)
