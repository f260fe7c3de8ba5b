from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.envfile import parse_env_text, read_env_file


def test_reads_a_typical_env_local(tmp_path: Path) -> None:
    path = tmp_path / ".env.local"
    path.write_text(
        "# database\n"
        "\n"
        "DATABASE_URL=postgres://u:p@localhost/db\n"
        "export NEXTAUTH_SECRET=abc123\n"
        "  SPACED = value with spaces   \n"
        "EMPTY=\n"
        "COMMENTED=visible # not part of the value\n"
        "HASH=a#b\n"
        "SINGLE='literal $HOME \\n # kept'\n"
        'DOUBLE="line1\\nline2 \\"quoted\\"" # comment\n'
        "next.public.key=dotted\n",
        encoding="utf-8",
    )
    assert read_env_file(path) == {
        "DATABASE_URL": "postgres://u:p@localhost/db",
        "NEXTAUTH_SECRET": "abc123",
        "SPACED": "value with spaces",
        "EMPTY": "",
        "COMMENTED": "visible",
        "HASH": "a#b",
        "SINGLE": "literal $HOME \\n # kept",
        "DOUBLE": 'line1\nline2 "quoted"',
        "next.public.key": "dotted",
    }


def test_byte_order_mark_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"\xef\xbb\xbfA=1\r\nB='two'\r\n")
    assert read_env_file(path) == {"A": "1", "B": "two"}


def test_quoted_values_may_span_lines() -> None:
    text = 'KEY="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1\n'
    assert parse_env_text(text) == {"KEY": "-----BEGIN-----\nabc\n-----END-----", "NEXT": "1"}


def test_later_definitions_win() -> None:
    assert parse_env_text("A=1\nA=2\n") == {"A": "2"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("A=1\njust words\n", 2, "expected KEY=VALUE"),
        ("A=1\n\n1BAD=x\n", 3, "expected KEY=VALUE"),
        ("A='open\nB=2\n", 1, "unterminated ' quote"),
        ('A="x" trailing\n', 1, "unexpected text after the closing quote"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^app\.env:{line}(:\d+)?: {message}"):
        parse_env_text(text, "app.env")


SECRET = "hunter2-xyz"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the example: a YAML-style line
        (f"A=1\nSECRET_TOKEN: {SECRET}\n", "app.env:2:13: expected KEY=VALUE (got a line with ':' and no '='), "
                                           "key SECRET_TOKEN"),
        (f"  export SECRET_TOKEN : {SECRET}\n", "app.env:1:23: expected KEY=VALUE (got a line with ':' and no '='), "
                                              "key SECRET_TOKEN"),
        # a line of one word names no key: the word may be the secret itself
        (f"{SECRET}\n", "app.env:1: expected KEY=VALUE (got a line with no '=')"),
        (f"{SECRET} {SECRET}\n", "app.env:1: expected KEY=VALUE (got a line of several words and no '=')"),
        (f"9{SECRET}=x\n", "app.env:1: expected KEY=VALUE (got a line whose text before '=' is not a variable name)"),
        # a stray character after the closing quote: where it is, never what
        (f"TOKEN='{SECRET}'x\n", "app.env:1:20: unexpected text after the closing quote (expected nothing or a "
                                "# comment), key TOKEN"),
        (f'TOKEN="{SECRET}\nmore" {SECRET}\n', "app.env:2:7: unexpected text after the closing quote (expected "
                                             "nothing or a # comment), key TOKEN"),
        (f"TOKEN='{SECRET}\n", "app.env:1:7: unterminated ' quote (opened here), key TOKEN"),
    ],
)
def test_errors_never_quote_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_env_text(text, "app.env")
    assert str(caught.value) == message
    assert SECRET not in str(caught.value) and "hunter" not in str(caught.value)


def test_read_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("# ok\nnope\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.env:2:"):
        read_env_file(path)
