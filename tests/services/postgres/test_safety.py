"""The SQL lexer reads text the way PostgreSQL does, so side-effect calls are found and literals are not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.postgres.safety import (
    LexError,
    denied_call,
    first_word,
    statement_body,
    statement_verb,
    tokenize,
)


@pytest.mark.parametrize(
    ("sql", "verb"),
    [
        ("select 1", "select"),
        ("  /* lead */ -- line\n UPDATE t SET a = 1", "update"),
        ("(SELECT 1) UNION (SELECT 2)", "select"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "select"),
        ("WITH s AS (SELECT 1) INSERT INTO t SELECT * FROM s", "insert"),
        ("WITH insert AS (SELECT 1), update AS (SELECT 2) DELETE FROM t", "delete"),
        ("WITH RECURSIVE r(n) AS (VALUES (1)) TABLE r", "table"),
    ],
)
def test_statement_verb(sql, verb):
    assert statement_verb(tokenize(sql)) == verb


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_terminate_backend(1)",
        "SELECT PG_TERMINATE_BACKEND (1)",
        'SELECT "pg_terminate_backend"(1)',
        "SELECT pg_catalog . pg_terminate_backend /* x */ (1)",
        "SELECT x FROM t WHERE f(dblink_exec('x', 'y'))",
        "SELECT lo_import($1)",
        "SELECT 1 FROM t, LATERAL set_config('a', 'b', false)",
    ],
)
def test_side_effect_calls_are_found_however_written(sql):
    assert denied_call(tokenize(sql)) is not None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'pg_terminate_backend(1)'",
        "SELECT $$pg_terminate_backend(1)$$",
        "SELECT $fn$ set_config('a','b',false) $fn$",
        "SELECT E'\\' pg_notify(1) '",
        "SELECT 1 -- pg_notify(1)",
        "SELECT /* /* nested */ pg_notify(1) */ 1",
        'SELECT 1 AS "set_config("',
        "SELECT pg_terminate_backend FROM t",
        "SELECT lo_size_column FROM t",
    ],
)
def test_literals_comments_and_plain_names_are_not_calls(sql):
    assert denied_call(tokenize(sql)) is None


def test_unicode_escaped_identifiers_cannot_be_vetted():
    assert "Unicode-escaped" in denied_call(tokenize('SELECT U&"\\0070g_notify"(1)'))


@pytest.mark.parametrize(
    "sql", ["SELECT 'open", "SELECT $$open", "/* open /* */", 'SELECT "open', "SELECT E'\\'"]
)
def test_unterminated_text_is_a_lex_error(sql):
    with pytest.raises(LexError):
        tokenize(sql)


def test_nested_comments_hide_what_postgresql_hides():
    assert first_word(tokenize("/* a /* b */ DROP TABLE t; */ SELECT 1")) == "select"
    assert first_word(tokenize("/* a /* b */ SELECT 1 */ DROP TABLE t")) == "drop"


@given(st.text(max_size=200))
def test_any_text_lexes_or_is_refused_as_unterminated(text):
    try:
        tokens = tokenize(text)
    except LexError:
        return
    assert all(token.depth >= 0 for token in tokens)


@pytest.mark.parametrize(
    ("sql", "body"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT 1;", "SELECT 1"),
        ("SELECT 1 ; ;  -- done; really\n /* c; */ ", "SELECT 1"),
        ("SELECT ';' -- x", "SELECT ';'"),
        ("SELECT $$a;$$;", "SELECT $$a;$$"),
        ("SELECT $1 /* trailing */", "SELECT $1"),
        ("SELECT 1 -- last line has no newline", "SELECT 1"),
    ],
)
def test_statement_body_drops_what_follows_the_last_token(sql, body):
    assert statement_body(sql) == body
