"""Glob patterns over relative paths, matched in polynomial time (no regular-expression backtracking).

``*`` and ``?`` match within one name, ``**`` as a whole segment matches any number of directories
(at least one name when it ends the pattern),
``[abc]``, ``[a-z]`` and ``[!abc]`` choose one character, ``{a,b}`` chooses an alternative (not nested).
``*`` also matches names starting with a dot. A pattern is a model's input, so it may be hostile: its
length, segments, ``**`` segments, wildcards and alternatives are bounded by :class:`GlobLimits` (each a
FILESYSTEM_* setting), and matching is iterative, costing at most (segments times path depth) name
matches per alternative, each at most (pattern length times name length).
"""

from __future__ import annotations

from dataclasses import dataclass


class GlobError(ValueError):
    """A pattern that cannot be used; the message names the limit and the setting that raises it."""


@dataclass(frozen=True, slots=True)
class GlobLimits:
    """How complex one pattern may be (the FILESYSTEM_MAX_* settings; these defaults are theirs)."""

    max_length: int = 1024
    max_segments: int = 32
    max_double_stars: int = 8
    max_wildcards: int = 64
    max_alternatives: int = 64


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


def expand_braces(pattern: str, max_alternatives: int = GlobLimits().max_alternatives) -> list[str]:
    """``a{b,c}d`` → ``[abd, acd]``; raises GlobError past ``max_alternatives``.

    Groups are expanded from the left, one loop per group (a pattern of 1024 characters has at most
    341 groups, and the cap stops the product long before that).
    """
    results = [""]
    rest = pattern
    while True:
        start = rest.find("{")
        end = rest.find("}", start + 1)
        if start < 0 or end < 0 or "{" in rest[start + 1 : end]:
            return [done + rest for done in results]
        head, options = rest[:start], rest[start + 1 : end].split(",")
        if len(results) * len(options) > max_alternatives:
            raise GlobError(
                f"expands to more than {max_alternatives} alternatives "
                f"(FILESYSTEM_MAX_GLOB_ALTERNATIVES={max_alternatives}); use fewer {{a,b}} choices"
            )
        results = [done + head + option for option in options for done in results]
        rest = rest[end + 1 :]


Segments = tuple[tuple[Token, ...] | None, ...]  # None for a "**" segment


class Glob:
    """A compiled pattern: :meth:`matches` takes a relative path with ``/`` separators.

    Raises :class:`GlobError` when the pattern is more complex than ``limits`` allow.
    """

    def __init__(self, pattern: str, limits: GlobLimits = GlobLimits()) -> None:
        if len(pattern) > limits.max_length:
            raise GlobError(
                f"is {len(pattern)} characters long, more than FILESYSTEM_MAX_PATTERN_LENGTH="
                f"{limits.max_length}"
            )
        self.pattern = pattern
        self._alternatives: list[Segments] = [
            tuple(None if segment == "**" else _tokens(segment) for segment in _segments(alternative))
            for alternative in expand_braces(pattern, limits.max_alternatives)
        ]
        _check_complexity(self._alternatives, limits)

    def matches(self, path: str) -> bool:
        parts = tuple(part for part in path.split("/") if part)
        return any(_match_parts(segments, parts) for segments in self._alternatives)


def _segments(pattern: str) -> list[str]:
    return [segment for segment in pattern.split("/") if segment not in ("", ".")]


def _check_complexity(alternatives: list[Segments], limits: GlobLimits) -> None:
    double_stars = max((segments.count(None) for segments in alternatives), default=0)
    if double_stars > limits.max_double_stars:
        raise GlobError(
            f"has {double_stars} '**' segments, more than FILESYSTEM_MAX_GLOB_DOUBLE_STARS="
            f"{limits.max_double_stars}; one '**' already spans any number of directories"
        )
    longest = max((len(segments) for segments in alternatives), default=0)
    if longest > limits.max_segments:
        raise GlobError(
            f"has {longest} path segments, more than FILESYSTEM_MAX_GLOB_SEGMENTS={limits.max_segments}; "
            "search from a deeper directory, or use '**' for the directories in between"
        )
    wildcards = sum(
        1
        for segments in alternatives
        for segment in segments
        if segment is not None
        for token in segment
        if not isinstance(token, str)
    )
    if wildcards > limits.max_wildcards:
        raise GlobError(
            f"has {wildcards} wildcards (*, ? and [...], counted in every {{a,b}} alternative), more "
            f"than FILESYSTEM_MAX_GLOB_WILDCARDS={limits.max_wildcards}"
        )


def _match_parts(segments: Segments, parts: tuple[str, ...]) -> bool:
    """Whether ``segments`` match ``parts`` exactly: a table filled from the last segment back, no recursion.

    ``rest[p]`` says whether the segments after the current one match ``parts[p:]``.
    """
    depth = len(parts)
    rest = [False] * depth + [True]
    for index in range(len(segments) - 1, -1, -1):
        segment = segments[index]
        here = [False] * (depth + 1)
        if segment is None:  # "**": zero or more whole names; one or more when it ends the pattern
            skip = 1 if index == len(segments) - 1 else 0
            found = False
            for p in range(depth - skip, -1, -1):
                found = found or rest[p + skip]
                here[p] = found
        else:
            for p in range(depth):
                here[p] = rest[p + 1] and _match_name(segment, parts[p])
        if not any(here):
            return False
        rest = here
    return rest[0]
