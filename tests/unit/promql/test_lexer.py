"""Lexer: token kinds, byte positions, numbers/durations, strings and lexical errors."""

from __future__ import annotations

import pytest

from signalfire.promql.parser.lexer import go_quote, go_quote_rune, lex


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.val) for t in lex(text)]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("foo", [("IDENT", "foo"), ("EOF", "")]),
        ("a:b:c", [("METRIC_IDENT", "a:b:c"), ("EOF", "")]),
        ("5m", [("DURATION", "5m"), ("EOF", "")]),
        ("1h30m", [("DURATION", "1h30m"), ("EOF", "")]),
        ("250ms", [("DURATION", "250ms"), ("EOF", "")]),
        ("1.5", [("NUMBER", "1.5"), ("EOF", "")]),
        (".5", [("NUMBER", ".5"), ("EOF", "")]),
        ("5.", [("NUMBER", "5."), ("EOF", "")]),
        ("1e-3", [("NUMBER", "1e-3"), ("EOF", "")]),
        ("0x1F", [("NUMBER", "0x1F"), ("EOF", "")]),
        ("1_000", [("NUMBER", "1_000"), ("EOF", "")]),
        ("InF", [("NUMBER", "InF"), ("EOF", "")]),
        ("nan", [("NUMBER", "nan"), ("EOF", "")]),
        ("a</b", [("IDENT", "a"), ("</", "</"), ("IDENT", "b"), ("EOF", "")]),
        ("a>=b", [("IDENT", "a"), (">=", ">="), ("IDENT", "b"), ("EOF", "")]),
        ("x # comment\n+ y", [("IDENT", "x"), ("+", "+"), ("IDENT", "y"), ("EOF", "")]),
        ('{by="x"}', [("{", "{"), ("IDENT", "by"), ("=", "="), ("STRING", '"x"'), ("}", "}"), ("EOF", "")]),
        ("[5m:]", [("[", "["), ("DURATION", "5m"), (":", ":"), ("]", "]"), ("EOF", "")]),
        ("[step()]", [("[", "["), ("IDENT", "step"), ("(", "("), (")", ")"), ("]", "]"), ("EOF", "")]),
    ],
)
def test_tokens(text: str, want: list[tuple[str, str]]) -> None:
    assert kinds(text) == want


def test_positions_are_bytes() -> None:
    toks = lex('{a="é"} + b')
    b = next(t for t in toks if t.val == "b")
    assert b.pos == len('{a="é"} + '.encode())


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        (r'"a\nb"', "a\nb"),
        (r"'it\'s'", "it's"),
        ("`raw\\n`", "raw\\n"),
        (r'"\u00e9\x41\101"', "éAA"),
        (r'"\xc3\xa9"', "é"),
        (r'"a\xc5z"', "a\udcc5z"),  # invalid UTF-8 kept as a surrogate escape
    ],
)
def test_strings(text: str, decoded: str) -> None:
    tok = lex(text)[0]
    assert tok.kind == "STRING"
    assert tok.text == decoded


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ('"abc', "unterminated quoted string", 0),
        ("`abc", "unterminated raw string", 0),
        (r'x + "\q"', "unknown escape sequence U+0071 'q'", 4),
        (r'"\xZZ"', "illegal character U+005A 'Z' in escape sequence", 0),
        (r'"\uD800"', "escape sequence is an invalid Unicode code point", 0),
        ("foo $", "unexpected character: '$'", 4),
        ("(foo", "unclosed left parenthesis", 4),
        ("foo)", "unexpected right parenthesis ')'", 4),
        ("foo[5m", "unclosed left bracket", 6),
        ("foo[", "unexpected end of input in duration expression", 4),
        ("foo[[", "unexpected left bracket '['", 4),
        ("foo]", "unexpected right bracket ']'", 3),
        ("{a=", "unexpected end of input inside braces", 3),
        ("{a{", "unexpected left brace '{'", 2),
        ("{a!b}", "unexpected character after '!' inside braces: 'b'", 2),
        ("a =~ b", "unexpected character after '=': '~'", 2),
        ("1.2.3", 'bad number or duration syntax: "1.2."', 0),
        ("5mm", 'bad number or duration syntax: "5mm"', 0),
    ],
)
def test_errors(text: str, message: str, pos: int) -> None:
    last = lex(text)[-1]
    assert last.kind == "ERROR"
    assert last.val == message
    assert last.pos == pos


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert go_quote("\x00é\udcff") == '"\\x00é\\xff"'
    assert go_quote_rune("'") == "'\\''"
    assert go_quote_rune("x") == "'x'"
