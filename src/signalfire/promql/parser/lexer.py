"""PromQL lexer: query text -> tokens with byte positions.

The lexer follows Prometheus's ``promql/parser/lex.go`` in what it accepts and in its
error wording, but it is written as one pass over the text that produces a token list.
It keeps the three pieces of state that change how characters are read:

- inside ``{...}`` keywords are plain identifiers and ``:`` is not a name character;
- inside ``[...]`` a ``:`` separates range and step, and identifiers are duration
  functions such as ``step()``;
- the parenthesis depth, to report ``unclosed left parenthesis`` at the end.

A lexical error does not raise: it becomes a final ``ERROR`` token whose value is the
message, so the parser reports the first problem in reading order, as Prometheus does.
Positions are byte offsets into the UTF-8 encoding of the query.
"""

from __future__ import annotations

from dataclasses import dataclass

from signalfire.util.gofmt import go_quote

__all__ = ["Token", "go_quote", "go_quote_rune", "lex"]

# Token kinds. Punctuation and operators use their own text as kind.
NUMBER = "NUMBER"
DURATION = "DURATION"
STRING = "STRING"
IDENT = "IDENT"  # [a-zA-Z_][a-zA-Z0-9_]*, keywords included (the parser classifies)
METRIC_IDENT = "METRIC_IDENT"  # an identifier containing ':'
EOF = "EOF"
ERROR = "ERROR"


@dataclass(slots=True)
class Token:
    """One token. ``val`` is the source text (for STRING the decoded value is ``text``)."""

    kind: str
    val: str
    pos: int  # byte offset of the first character
    end: int  # byte offset just past the token
    text: str = ""  # decoded string value for STRING tokens
    in_braces: bool = False  # read inside {...}, where keywords are plain names


_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_ALNUM = _ALPHA | _DIGITS
_SPACE = frozenset(" \t\n\r")
_DURATION_WORDS = frozenset({"step", "range", "min", "max", "min_of", "max_of"})
_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def go_quote_rune(c: str) -> str:
    """A rune as Go's ``%q`` prints it: ``'x'``, ``'\\n'``, ``'\\x00'``."""
    if c == "'":
        return "'\\''"
    return "'" + go_quote(c)[1:-1].replace('\\"', '"') + "'"


class _LexError(Exception):
    def __init__(self, msg: str, cpos: int) -> None:
        self.msg = msg
        self.cpos = cpos


class _Lexer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        if text.isascii():
            self.bpos: list[int] | None = None
        else:
            acc = [0]
            for c in text:
                acc.append(acc[-1] + len(c.encode("utf-8", "surrogatepass")))
            self.bpos = acc
        self.tokens: list[Token] = []
        self.brace_open = False
        self.bracket_open = False
        self.paren_depth = 0

    def b(self, i: int) -> int:
        return i if self.bpos is None else self.bpos[i]

    def emit(self, kind: str, start: int, end: int, text: str = "") -> None:
        self.tokens.append(Token(kind, self.s[start:end], self.b(start), self.b(end), text))

    def run(self) -> list[Token]:
        i = 0
        try:
            while True:
                i = self.step(i)
                if i < 0:
                    break
        except _LexError as err:
            p = self.b(err.cpos)
            self.tokens.append(Token(ERROR, err.msg, p, self.b(self.n)))
        return self.tokens

    # -- the main switch --------------------------------------------------------

    def step(self, i: int) -> int:
        s = self.s
        while i < self.n and s[i] in _SPACE:
            i += 1
        if i >= self.n:
            if self.brace_open:
                raise _LexError("unexpected end of input inside braces", i)
            if self.paren_depth != 0:
                raise _LexError("unclosed left parenthesis", i)
            if self.bracket_open:
                if self.in_duration_state():
                    raise _LexError("unexpected end of input in duration expression", i)
                raise _LexError("unclosed left bracket", i)
            self.emit(EOF, i, i)
            return -1
        c = s[i]
        if c == "#":
            j = i
            while j < self.n and s[j] not in "\r\n":
                j += 1
            return j
        if self.brace_open:
            return self.inside_braces(i, c)
        if self.bracket_open:
            return self.inside_brackets(i, c)
        if c in "\"'":
            return self.string(i, c)
        if c == "`":
            return self.raw_string(i)
        if c in _DIGITS or (c == "." and i + 1 < self.n and s[i + 1] in _DIGITS):
            return self.number_or_duration(i)
        if c in _ALPHA or (c == ":" and not self.bracket_open):
            return self.identifier(i, allow_colon=not self.bracket_open)
        return self.punctuation(i, c)

    def in_duration_state(self) -> bool:
        """Whether Prometheus's lexer would be in its duration-expression state: inside
        ``[...]`` and not right after a number or duration."""
        return not self.tokens or self.tokens[-1].kind not in (NUMBER, DURATION)

    def inside_brackets(self, i: int, c: str) -> int:
        """Inside ``[...]`` only duration arithmetic is allowed: numbers, durations, the
        duration functions, operators, parentheses, ``,`` and the range/step ``:``."""
        s = self.s
        if c in _DIGITS or (c == "." and i + 1 < self.n and s[i + 1] in _DIGITS):
            return self.number_or_duration(i)
        if c in _ALPHA:
            j = i + 1
            while j < self.n and s[j] in _ALNUM:
                j += 1
            if s[i:j].lower() in _DURATION_WORDS:
                self.emit(IDENT, i, j)
                return j
            if self.in_duration_state():
                raise _LexError(f"unexpected character in duration expression: {go_quote_rune(c)}", i)
            raise _LexError(f"unexpected character: {go_quote_rune(c)}, expected ':'", i)
        if c in "[]():,+-*/%^":
            return self.punctuation(i, c)
        raise _LexError(f"unexpected character in duration expression: {go_quote_rune(c)}", i)

    def punctuation(self, i: int, c: str) -> int:
        s = self.s
        nxt = s[i + 1] if i + 1 < self.n else ""
        if c in ",*/%+-^@":
            self.emit(c, i, i + 1)
            return i + 1
        if c == "=":
            if nxt == "=":
                self.emit("==", i, i + 2)
                return i + 2
            if nxt == "~":
                raise _LexError(f"unexpected character after '=': {go_quote_rune(nxt)}", i)
            self.emit("=", i, i + 1)
            return i + 1
        if c == "!":
            if nxt != "=":
                raise _LexError(f"unexpected character after '!': {go_quote_rune(nxt or chr(0xFFFD))}", i)
            self.emit("!=", i, i + 2)
            return i + 2
        if c in "<>":
            if nxt == "=":
                self.emit(c + "=", i, i + 2)
                return i + 2
            if nxt == "/":  # native-histogram trimming operators </ and >/
                self.emit(c + "/", i, i + 2)
                return i + 2
            self.emit(c, i, i + 1)
            return i + 1
        if c == ":" and self.bracket_open:
            self.emit(":", i, i + 1)
            return i + 1
        if c == "(":
            self.paren_depth += 1
            self.emit("(", i, i + 1)
            return i + 1
        if c == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                raise _LexError("unexpected right parenthesis ')'", i + 1)
            self.emit(")", i, i + 1)
            return i + 1
        if c == "{":
            self.brace_open = True
            self.emit("{", i, i + 1)
            return i + 1
        if c == "[":
            if self.bracket_open:
                raise _LexError("unexpected left bracket '['", i)
            self.bracket_open = True
            self.emit("[", i, i + 1)
            return i + 1
        if c == "]":
            if not self.bracket_open:
                raise _LexError("unexpected right bracket ']'", i)
            self.bracket_open = False
            self.emit("]", i, i + 1)
            return i + 1
        if c == "}":
            raise _LexError("unexpected character: '}'", i)
        raise _LexError(f"unexpected character: {go_quote_rune(c)}", i)

    def inside_braces(self, i: int, c: str) -> int:
        s = self.s
        if c in _ALPHA:
            j = i + 1
            while j < self.n and s[j] in _ALNUM:
                j += 1
            self.emit(IDENT, i, j)
            self.tokens[-1].in_braces = True
            return j
        if c == ",":
            self.emit(",", i, i + 1)
            return i + 1
        if c in "\"'":
            return self.string(i, c)
        if c == "`":
            return self.raw_string(i)
        nxt = s[i + 1] if i + 1 < self.n else ""
        if c == "=":
            if nxt == "~":
                self.emit("=~", i, i + 2)
                return i + 2
            self.emit("=", i, i + 1)
            return i + 1
        if c == "!":
            if nxt in ("~", "="):
                self.emit("!" + nxt, i, i + 2)
                return i + 2
            shown = go_quote_rune(nxt or chr(0xFFFD))
            raise _LexError(f"unexpected character after '!' inside braces: {shown}", i)
        if c == "{":
            raise _LexError("unexpected left brace '{'", i)
        if c == "}":
            self.brace_open = False
            self.emit("}", i, i + 1)
            return i + 1
        raise _LexError(f"unexpected character inside braces: {go_quote_rune(c)}", i)

    # -- names ------------------------------------------------------------------

    def identifier(self, i: int, allow_colon: bool) -> int:
        s = self.s
        j = i + 1
        while j < self.n and (s[j] in _ALNUM or (allow_colon and s[j] == ":")):
            j += 1
        word = s[i:j]
        low = word.lower()
        if low in ("inf", "nan"):
            self.emit(NUMBER, i, j)
        elif ":" in word:
            self.emit(METRIC_IDENT, i, j)
        else:
            self.emit(IDENT, i, j)
        return j

    # -- numbers and durations --------------------------------------------------

    def scan_number(self, i: int) -> tuple[bool, int]:
        """Scan a number starting at ``i``: (well formed and not followed by a letter, end)."""
        s, n = self.s, self.n
        j = i
        digits = _DIGITS
        if s.startswith(("0x", "0X"), j):
            j += 2
            if j < n and s[j] == "_":
                j += 1
            digits = _HEX
        if j < n and s[j] == ".":
            j += 1
        if j < n and s[j] in digits:
            j += 1
        dot = exp = False
        while j < n and (s[j] in digits or s[j] in "._eE"):
            c = s[j]
            if c == "." and dot:
                return False, j + 1
            if c in "eE" and digits is _DIGITS and exp:
                return False, j + 1
            if c == ".":
                dot = True
                j += 1
                if j < n and s[j] in "_.":
                    return False, j + 1
                if digits is _HEX:
                    return False, j
                continue
            if c in "eE" and digits is _DIGITS:
                exp = True
                j += 1
                if j < n and s[j] in "+-":
                    j += 1
                if j >= n or s[j] in "._eE":
                    return False, min(j + 1, n)
                continue
            if c == "_":
                j += 1
                if j >= n or s[j] in "._eE":
                    return False, min(j + 1, n)
                continue
            while j < n and s[j] in digits:
                j += 1
        if j == i:
            return False, j
        if j < n and s[j] in _ALNUM:
            return False, j
        return True, j

    def number_or_duration(self, i: int) -> int:
        ok, j = self.scan_number(i)
        if ok:
            self.emit(NUMBER, i, j)
            return j
        ok, j = self.remaining_duration(j)
        if ok:
            self.emit(DURATION, i, j)
            return j
        raise _LexError(f"bad number or duration syntax: {go_quote(self.s[i:j])}", i)

    def remaining_duration(self, j: int) -> tuple[bool, int]:
        """After the digits of a duration, accept ``unit ( digits unit )*``.

        Returns (ok, end); on failure ``end`` is how far Prometheus's lexer had read, which
        its error message quotes.
        """
        s, n = self.s, self.n
        if j >= n or s[j] not in "smhdwy":
            return False, j
        j += 1
        if j < n and s[j] == "s":
            j += 1
        while j < n and s[j] in _DIGITS:
            while j < n and s[j] in _DIGITS:
                j += 1
            if j >= n or s[j] not in "smhdw":
                return False, j
            j += 1
            if j < n and s[j] == "s":
                j += 1
        if j < n and s[j] in _ALNUM:
            return False, j + 1
        return True, j

    # -- strings ----------------------------------------------------------------

    def string(self, i: int, quote: str) -> int:
        s, n = self.s, self.n
        buf = bytearray()
        j = i + 1
        while True:
            if j >= n or s[j] == "\n":
                raise _LexError("unterminated quoted string", i)
            c = s[j]
            if c == quote:
                break
            if c == "\\":
                j = self.escape(j + 1, quote, buf, i)
                continue
            if "\ud800" <= c <= "\udfff":  # undecodable input bytes
                raise _LexError("invalid UTF-8 rune", i)
            buf += c.encode("utf-8")
            j += 1
        self.emit(STRING, i, j + 1, buf.decode("utf-8", "surrogateescape"))
        return j + 1

    def escape(self, j: int, quote: str, buf: bytearray, start: int) -> int:
        s, n = self.s, self.n
        if j >= n:
            raise _LexError("escape sequence not terminated", start)
        c = s[j]
        if c in _SIMPLE_ESCAPES:
            buf.append(_SIMPLE_ESCAPES[c])
            return j + 1
        if c == quote:
            buf += c.encode()
            return j + 1
        if c in "01234567":
            count, base, limit, first = 3, 8, 255, j
        elif c == "x":
            count, base, limit, first = 2, 16, 255, j + 1
        elif c == "u":
            count, base, limit, first = 4, 16, 0x10FFFF, j + 1
        elif c == "U":
            count, base, limit, first = 8, 16, 0x10FFFF, j + 1
        else:
            raise _LexError(f"unknown escape sequence {_go_sharp_u(c)}", start)
        value = 0
        k = first
        for _ in range(count):
            if k >= n:
                raise _LexError("escape sequence not terminated", start)
            d = int(s[k], 16) if s[k] in _HEX else 16
            if d >= base:
                raise _LexError(f"illegal character {_go_sharp_u(s[k])} in escape sequence", start)
            value = value * base + d
            k += 1
        if value > limit or 0xD800 <= value < 0xE000:
            raise _LexError("escape sequence is an invalid Unicode code point", start)
        if c in "01234567x":
            buf.append(value)  # a raw byte, possibly not valid UTF-8 on its own
        else:
            buf += chr(value).encode("utf-8")
        return k

    def raw_string(self, i: int) -> int:
        j = self.s.find("`", i + 1)
        if j < 0:
            raise _LexError("unterminated raw string", i)
        if any("\ud800" <= c <= "\udfff" for c in self.s[i + 1 : j]):
            raise _LexError("invalid UTF-8 rune", i)
        self.emit(STRING, i, j + 1, self.s[i + 1 : j])
        return j + 1


def _go_sharp_u(c: str) -> str:
    """Go's ``%#U``: ``U+0071 'q'``."""
    o = ord(c)
    if c.isprintable():
        return f"U+{o:04X} '{c}'"
    return f"U+{o:04X}"


def lex(text: str) -> list[Token]:
    """Tokenize ``text``. The list ends with an ``EOF`` token, or an ``ERROR`` token
    whose ``val`` is the message and ``pos`` the byte offset of the offending item."""
    return _Lexer(text).run()
