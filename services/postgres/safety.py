"""What a statement is allowed to do before it reaches PostgreSQL.

The authoritative checks are PostgreSQL's own (see ``statements.py``): the extended protocol refuses
several commands in one string, ``PREPARE _ AS <query>`` only parses for SELECT/VALUES/TABLE/WITH,
INSERT/UPDATE/DELETE/MERGE, and a READ ONLY transaction refuses writes. This module adds what
PostgreSQL cannot refuse in a read-only transaction — calls to functions with side effects outside the
data (terminating backends, notifications, large-object import, dblink, changing settings) — and
names the statement's verb. It lexes SQL the way PostgreSQL does (nested comments, dollar quoting,
E'' strings, quoted identifiers), so text inside literals and comments is never mistaken for a call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Functions a read-only caller must not run: they act outside the transaction, so PostgreSQL allows them.
DENIED_FUNCTIONS = frozenset(
    {
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_promote",
        "pg_log_backend_memory_contexts",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        "set_config",
        "pg_notify",
        "pg_import_system_collations",
        "pg_drop_replication_slot",
        "pg_create_physical_replication_slot",
        "pg_create_logical_replication_slot",
        "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot",
        "pg_logical_emit_message",
        "ts_stat",
        "pg_stat_statements_reset",
    }
)
# Whole families: large objects (lo_import reads server files into the database), dblink (a second
# session that is not read-only), statistics resets, replication origins, server-side file writes,
# and the xml helpers that run a query given as text.
DENIED_PREFIXES = (
    "lo_",
    "dblink",
    "pg_stat_reset",
    "pg_replication_origin_",
    "pg_file_",
    "pg_wal_replay_",
    "query_to_xml",
    "cursor_to_xml",
    "pg_logical_slot_",
)
TRANSACTION_CONTROL = frozenset(
    {"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release"}
)
VERBS = frozenset({"select", "insert", "update", "delete", "merge", "values", "table"})


class LexError(ValueError):
    """The SQL text ends inside a comment, string or quoted identifier."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # word, ident (quoted identifier), string, number, param, op, punct
    text: str  # words lower-cased, quoted identifiers unquoted
    depth: int  # parenthesis depth at the token


_WHITESPACE = frozenset(" \t\n\r\f\v")  # PostgreSQL's; other Unicode spaces are identifier characters
_WORD = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_DIGITS = frozenset("0123456789")
_NUMBER = re.compile(r"(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_PARAM = re.compile(r"\$\d+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
_OPERATOR_CHARS = set("+-*/<>=~!@#%^&|`?")


def tokenize(sql: str) -> list[Token]:
    """Split SQL into tokens, dropping whitespace and comments; raises :class:`LexError` if unterminated."""
    return _scan(sql)[0]


def statement_body(sql: str) -> str:
    """``sql`` without the semicolons, comments and whitespace after its last token (so that it can be
    nested in another statement); raises :class:`LexError` if unterminated."""
    return sql[: _scan(sql)[1]]


def _scan(sql: str) -> tuple[list[Token], int]:
    """The tokens of ``sql``, and where its last token other than ``;`` ends."""
    tokens: list[Token] = []
    depth = 0
    i, n = 0, len(sql)
    seen, body_end = 0, 0
    while i < n:
        if len(tokens) > seen:  # the previous step added a token and ``i`` is just past it
            seen = len(tokens)
            if tokens[-1].text != ";" or tokens[-1].kind != "punct":
                body_end = i
        char = sql[i]
        if char in _WHITESPACE:
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif char == "'":
            i = _skip_string(sql, i, backslashes=False)
            tokens.append(Token("string", "", depth))
        elif char in "eE" and sql.startswith("'", i + 1):
            i = _skip_string(sql, i + 1, backslashes=True)
            tokens.append(Token("string", "", depth))
        elif char in "bBxXnN" and sql.startswith("'", i + 1):
            i = _skip_string(sql, i + 1, backslashes=False)
            tokens.append(Token("string", "", depth))
        elif char in "uU" and sql.startswith("&'", i + 1):
            i = _skip_string(sql, i + 2, backslashes=False)
            tokens.append(Token("string", "", depth))
        elif char in "uU" and sql.startswith('&"', i + 1):
            # A Unicode-escaped identifier: its real name is only known after unescaping.
            end = _skip_quoted_identifier(sql, i + 2)
            tokens.append(Token("uident", sql[i:end], depth))
            i = end
        elif char == '"':
            end = _skip_quoted_identifier(sql, i)
            tokens.append(Token("ident", sql[i + 1 : end - 1].replace('""', '"'), depth))
            i = end
        elif char == "$":
            param = _PARAM.match(sql, i)
            if param:
                tokens.append(Token("param", param.group(), depth))
                i = param.end()
                continue
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is None:
                tokens.append(Token("op", "$", depth))
                i += 1
                continue
            close = sql.find(tag.group(), tag.end())
            if close < 0:
                raise LexError("unterminated dollar-quoted string")
            tokens.append(Token("string", "", depth))
            i = close + len(tag.group())
        elif char in _DIGITS or (char == "." and i + 1 < n and sql[i + 1] in _DIGITS):
            number = _NUMBER.match(sql, i)
            assert number is not None
            tokens.append(Token("number", number.group(), depth))
            i = number.end()
        elif _WORD.match(sql, i):
            word = _WORD.match(sql, i)
            assert word is not None
            tokens.append(Token("word", word.group().lower(), depth))
            i = word.end()
        elif char == "(":
            tokens.append(Token("punct", "(", depth))
            depth += 1
            i += 1
        elif char == ")":
            depth = max(0, depth - 1)
            tokens.append(Token("punct", ")", depth))
            i += 1
        elif char in ",;[].:":
            tokens.append(Token("punct", char, depth))
            i += 1
        else:
            start = i
            while i < n and sql[i] in _OPERATOR_CHARS and not sql.startswith(("--", "/*"), i):
                i += 1
            if i == start:
                i += 1
            tokens.append(Token("op", sql[start:i], depth))
    if len(tokens) > seen and (tokens[-1].text != ";" or tokens[-1].kind != "punct"):
        body_end = i
    return tokens, body_end


def _skip_block_comment(sql: str, start: int) -> int:
    nesting, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            nesting += 1
            i += 2
        elif sql.startswith("*/", i):
            nesting -= 1
            i += 2
            if nesting == 0:
                return i
        else:
            i += 1
    raise LexError("unterminated /* comment")


def _skip_string(sql: str, quote_at: int, *, backslashes: bool) -> int:
    i = quote_at + 1
    while i < len(sql):
        char = sql[i]
        if backslashes and char == "\\":
            i += 2
        elif char == "'":
            if sql.startswith("''", i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise LexError("unterminated quoted string")


def _skip_quoted_identifier(sql: str, quote_at: int) -> int:
    i = quote_at + 1
    while i < len(sql):
        if sql[i] == '"':
            if sql.startswith('""', i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise LexError("unterminated quoted identifier")


# Verdicts -----------------------------------------------------------------------------------------


def first_word(tokens: list[Token]) -> str:
    """The statement's first keyword (``select`` for ``(SELECT ...)``), or ``""`` when there is none."""
    for token in tokens:
        if token.kind == "word":
            return token.text
        if token.kind != "punct" or token.text != "(":
            return ""
    return ""


def statement_verb(tokens: list[Token]) -> str:
    """The main verb: ``insert`` for ``WITH x AS (...) INSERT ...``; otherwise the first keyword."""
    word = first_word(tokens)
    if word != "with":
        return word
    previous = ""
    for token in tokens:
        if (
            token.depth == 0
            and token.kind == "word"
            and token.text in VERBS
            and previous not in {"with", "recursive", ","}
        ):
            return token.text
        if token.depth == 0:
            previous = token.text
    return word


def denied_call(tokens: list[Token]) -> str | None:
    """The first call to a function read-only mode refuses, or a reason the text cannot be vetted."""
    for index, token in enumerate(tokens):
        if token.kind == "uident":
            return 'a Unicode-escaped identifier (U&"...")'
        if token.kind not in {"word", "ident"}:
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if following is None or following.text != "(" or following.kind != "punct":
            continue
        name = token.text.lower()
        if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
            return f"{name}()"
    return None


def has_content(tokens: list[Token]) -> bool:
    return any(not (token.kind == "punct" and token.text == ";") for token in tokens)


def rows_affected(command_tag: str | None) -> int | None:
    """The row count of a command tag (``UPDATE 3`` -> 3, ``INSERT 0 5`` -> 5), ``None`` for DDL."""
    if not command_tag:
        return None
    parts = command_tag.split()
    if (
        parts[0] in {"INSERT", "UPDATE", "DELETE", "MERGE", "SELECT", "COPY", "MOVE", "FETCH"}
        and parts[-1].isdigit()
    ):
        return int(parts[-1])
    return None


def synthesized_tag(verb: str, rows: int) -> str:
    """The command tag PostgreSQL would send for a row-returning statement of ``verb``."""
    upper = (verb or "select").upper()
    if upper in {"VALUES", "TABLE"}:
        upper = "SELECT"
    return f"INSERT 0 {rows}" if upper == "INSERT" else f"{upper} {rows}"
