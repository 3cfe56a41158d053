"""JSON as RFC 8259 writes it, read from files and servers nobody here controls: `NaN`,
`Infinity` and nesting deeper than a record or listing ever has are invalid JSON (ValueError,
which every reader already turns into a clear error), never an OverflowError or
RecursionError traceback, nor a number that drops a record when compared."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Records nest four levels, listings two: 64 leaves room and stays far from the recursion
# limit of the code that walks the result.
MAX_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: valid syntax, no float
        raise ValueError(f"{text} is out of a float's range")
    return value


def _depth(data: bytes) -> int:
    deepest = depth = 0
    for byte in _NOT_BRACKET.sub(b"", _STRING.sub(b"", data)):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def loads(data: str | bytes) -> Any:
    """The JSON value in `data`; ValueError for anything RFC 8259 does not allow and for
    nesting deeper than MAX_DEPTH."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _depth(raw) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # only reached if the depth scan and the parser disagree
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
