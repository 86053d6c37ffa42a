"""A syntax check of CEL expressions (Telemetry `tagOverrides` values, `%CEL()%` in formats).

Envoy parses each CEL expression when it loads the config and refuses the listener for a
syntax error (`a b`: "extraneous input 'b'"), so shoal checks the syntax first with CEL's
grammar (cel-spec's langdef: ternary, `||`, `&&`, relations incl. `in`, arithmetic, `!` and
`-`, member selection, calls, indexing, list and map literals; int, uint, double, string,
bytes, bool and null literals with CEL's escapes; its reserved words). Envoy also resolves
every function when it loads the expression, and has comprehensions (`all`, `exists`, `map`,
...) turned off: a call must be one of the functions Envoy 1.40 registers (`FUNCTIONS`,
`METHODS`, each checked against it). `string()` is not one of them. Message construction
(`T{f: v}`) needs type information Envoy has only for some types, so it is refused. Attribute
names (`request.host`) are left to Envoy, which resolves them per request.
"""

from __future__ import annotations

import re

# one token at a time; order matters (longer operators and literals first)
_TOKEN = re.compile(
    r"""
    (?P<space>[\s]+)
  | (?P<string>[bB]?[rR]?(?:'''(?:[^\\]|\\.)*?'''|\"\"\"(?:[^\\]|\\.)*?\"\"\"
        |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*"))
  | (?P<string2>[rR][bB](?:'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?
        |(?:[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)
        |[0-9]+[uU]?)
  | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>!?:.,()\[\]{}+\-*/%])
    """,
    re.VERBOSE | re.DOTALL,
)
_RESERVED = frozenset(
    [
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)
_LITERAL_WORDS = frozenset({"true", "false", "null"})
_ESCAPE = re.compile(
    r"\\(?:[\\?\"'`abfnrtv]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2})"
)
_RELATIONS = frozenset({"<", "<=", ">=", ">", "==", "!=", "in"})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
MAX_LENGTH = 10_000
# functions Envoy's CEL resolves (`has` is a macro on a field selection)
FUNCTIONS = frozenset(
    [
        "size",
        "int",
        "uint",
        "double",
        "bytes",
        "bool",
        "timestamp",
        "duration",
        "type",
        "dyn",
        "has",
    ]
)
METHODS = frozenset(
    ["size", "matches", "startsWith", "endsWith", "contains", "getHours", "getMinutes",
     "getSeconds", "getMilliseconds", "getDate", "getDayOfMonth", "getDayOfWeek",
     "getDayOfYear", "getFullYear", "getMonth"]
)  # fmt: skip
_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})


class _Parser:
    """Recursive descent over cel-spec's grammar; raises ValueError at the first error."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            found = _TOKEN.match(text, pos)
            if found is None:
                raise ValueError(f"CEL {text!r}: unexpected {text[pos]!r} at {pos}")
            kind = found.lastgroup or ""
            if kind != "space":
                value = found.group()
                if kind in ("string", "string2"):
                    self._check_string(value, pos)
                    kind = "literal"
                elif kind == "number":
                    kind = "literal"
                elif kind == "ident" and value == "in":
                    kind = "op"
                elif kind == "ident" and value in _LITERAL_WORDS:
                    kind = "literal"
                elif kind == "ident" and value in _RESERVED:
                    raise ValueError(f"CEL {text!r}: {value!r} is a reserved word")
                self.tokens.append((kind, value, pos))
            pos = found.end()
        self.i = 0

    def _check_string(self, value: str, pos: int) -> None:
        prefix = re.match(r"[bBrR]*", value)
        raw = prefix is not None and "r" in prefix.group().lower()
        if raw:
            return
        body = value[prefix.end() if prefix else 0 :]
        k = 0
        while (k := body.find("\\", k)) != -1:
            if not _ESCAPE.match(body, k):
                raise ValueError(f"CEL {self.text!r}: invalid escape {body[k : k + 2]!r}")
            k += 2 if body[k + 1] in "\\'\"" else 1

    # -- token helpers
    def _peek(self) -> str:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else ""

    def _kind(self) -> str:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else "end"

    def _fail(self, what: str) -> ValueError:
        if self.i < len(self.tokens):
            _, value, pos = self.tokens[self.i]
            return ValueError(f"CEL {self.text!r}: {what}, found {value!r} at {pos}")
        return ValueError(f"CEL {self.text!r}: {what} at the end")

    def _take(self, value: str) -> bool:
        if self._peek() == value and self._kind() == "op":
            self.i += 1
            return True
        return False

    def _expect(self, value: str) -> None:
        if not self._take(value):
            raise self._fail(f"expected {value!r}")

    # -- grammar
    def parse(self) -> None:
        if not self.tokens:
            raise ValueError("CEL expression is empty")
        self.expr()
        if self.i != len(self.tokens):
            raise self._fail("expected the end of the expression")

    def expr(self) -> None:
        self.binary(0)
        if self._take("?"):
            self.binary(0)
            self._expect(":")
            self.expr()

    # precedence levels: ||, &&, relations, + -, * / %
    _LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"||"}),
        frozenset({"&&"}),
        _RELATIONS,
        frozenset({"+", "-"}),
        frozenset({"*", "/", "%"}),
    )

    def binary(self, level: int) -> None:
        if level == len(self._LEVELS):
            self.unary()
            return
        self.binary(level + 1)
        ops = self._LEVELS[level]
        while self._peek() in ops and self._kind() == "op":
            self.i += 1
            self.binary(level + 1)

    def unary(self) -> None:
        while self._peek() in ("!", "-") and self._kind() == "op":
            self.i += 1
        self.member()

    def member(self) -> None:
        self.primary()
        while True:
            if self._take("."):
                if self._kind() != "ident":
                    raise self._fail("expected a field name after '.'")
                self.i += 1
                if self._peek() == "(" and self._kind() == "op":
                    self._check_call(self.tokens[self.i - 1], METHODS)
                    self.i += 1
                    self._arguments()
                elif self._peek() == "{" and self._kind() == "op":
                    raise self._fail("message construction (T{...}) is not supported")
            elif self._take("["):
                self.expr()
                self._expect("]")
            else:
                return

    def _list_until(self, close: str) -> None:
        if self._take(close):
            return
        self.expr()
        while self._take(","):
            if self._take(close):  # a trailing comma
                return
            self.expr()
        self._expect(close)

    def _check_call(self, name: tuple[str, str, int], known: frozenset[str]) -> None:
        _, value, pos = name
        if value in _COMPREHENSIONS:
            raise ValueError(
                f"CEL {self.text!r}: {value}() at {pos} is a comprehension, which Envoy has off"
            )
        if value not in known:
            raise ValueError(
                f"CEL {self.text!r}: Envoy has no function {value}() (at {pos}); it has "
                + ", ".join(sorted(known))
            )

    def _arguments(self) -> None:
        # a call's arguments: no trailing comma (unlike list and map literals)
        if self._take(")"):
            return
        self.expr()
        while self._take(","):
            self.expr()
        self._expect(")")

    def _has(self) -> None:
        # has(a.b): the argument must be a field selection
        start = self.i
        self.expr()
        shape = [(k, v) for k, v, _ in self.tokens[start : self.i]]
        names = shape[0::2]
        dots = shape[1::2]
        if len(shape) < 3 or any(k != "ident" for k, _ in names) or any(v != "." for _, v in dots):
            raise ValueError(f"CEL {self.text!r}: has() takes a field selection such as a.b")
        self._expect(")")

    def _map(self) -> None:
        while not self._take("}"):
            self.expr()
            self._expect(":")
            self.expr()
            if not self._take(","):
                self._expect("}")
                return

    def primary(self) -> None:
        kind, value = self._kind(), self._peek()
        if kind == "literal":
            self.i += 1
        elif kind == "ident" or (kind == "op" and value == "."):
            if value == ".":
                self.i += 1
                if self._kind() != "ident":
                    raise self._fail("expected a name after '.'")
            self.i += 1
            if self._peek() == "(" and self._kind() == "op":
                name = self.tokens[self.i - 1]
                self._check_call(name, FUNCTIONS)
                self.i += 1
                if name[1] == "has":
                    self._has()
                else:
                    self._arguments()
            elif self._peek() == "{" and self._kind() == "op":
                raise self._fail("message construction (T{...}) is not supported")
        elif self._take("("):
            self.expr()
            self._expect(")")
        elif self._take("["):
            self._list_until("]")
        elif self._take("{"):
            self._map()
        else:
            raise self._fail("expected a value, a name or '('")


def check_cel(expression: str) -> str:
    """A CEL expression whose syntax Envoy's parser accepts."""
    if len(expression) > MAX_LENGTH:
        raise ValueError(f"CEL expression is longer than {MAX_LENGTH} characters")
    _Parser(expression).parse()
    return expression
