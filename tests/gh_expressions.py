"""A small evaluator of GitHub Actions expressions (the `if:` of a job), for the subset the
generated workflow uses: string literals, context paths (github.ref, ...), `!`, `==`, `!=`,
`&&`, `||`, parentheses, and the functions startsWith, endsWith, contains, cancelled, always,
success. As GitHub's, string comparison ignores case, and `&&`/`||` return an operand.

No CI provider runs here, so this stands in for GitHub's evaluator; it follows GitHub's
documentation ("Evaluate expressions in workflows and actions") and refuses what it does not
know rather than guessing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||[!()\,])|(?P<word>[A-Za-z_][\w.-]*))"
)
FUNCTIONS = {"startswith", "endswith", "contains", "cancelled", "always", "success"}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read {text[pos:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return bool(a == b)


class _Parser:
    def __init__(self, text: str, context: Mapping[str, Any], status: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.context = context
        self.status = status

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ValueError(f"expected {value!r} at token {self.pos}, found {token!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value or right
        return value

    def and_(self) -> Any:
        value = self.compare()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.compare()
            value = value and right
        return value

    def compare(self) -> Any:
        value = self.unary()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            right = self.unary()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not self.unary()
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if (kind, text) == ("op", "("):
            value = self.or_()
            self.take(")")
            return value
        if kind != "word":
            raise ValueError(f"unexpected {text!r}")
        if self.peek() == ("op", "("):
            return self.call(text.lower())
        if text in ("true", "false"):
            return text == "true"
        found: Any = self.context
        for part in text.split("."):
            if not isinstance(found, Mapping) or part not in found:
                raise ValueError(f"unknown context value {text!r}")
            found = found[part]
        return found

    def call(self, name: str) -> Any:
        if name not in FUNCTIONS:
            raise ValueError(f"unknown function {name}()")
        self.take("(")
        args = []
        while self.peek() != ("op", ")"):
            args.append(self.or_())
            if self.peek() == ("op", ","):
                self.take()
        self.take(")")
        if name == "cancelled":
            return self.status == "cancelled"
        if name == "always":
            return True
        if name == "success":
            return self.status == "success"
        a, b = (str(x).casefold() for x in args)
        return {"startswith": a.startswith, "endswith": a.endswith, "contains": a.__contains__}[
            name
        ](b)


def evaluate(expression: str, context: Mapping[str, Any], status: str = "success") -> bool:
    """The truth of a job's `if:` (an expression without `${{ }}`) in `context`; `status` is
    what the needed jobs ended with (success, failure, cancelled)."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return bool(_Parser(text, context, status).parse())
