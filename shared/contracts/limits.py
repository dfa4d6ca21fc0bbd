"""What any caller may send, over HTTP or AMQP (docs/architecture.md, "Security"): one JSON
reader for both edges, so the same hostile body is refused the same way, naming the problem
(a 422 at intake; dead-lettered at once, never retried, on the broker).

The limits sit far above any real application (the deepest is four levels, the longest
string a 254-character e-mail address) and far below what breaks a parser or a database:
Python's JSON reader recurses once per level, `int()` refuses more than 4,300 digits, and
Postgres text cannot hold NUL.
"""
from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 16
MAX_NUMBER_CHARS = 32  # digits, sign, point and exponent of one JSON number
MAX_STRING = 4096
MAX_ITEMS = 1000  # elements of an array, members of an object
_NUL = "\x00"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LimitExceeded(ValueError):
    """A JSON document past one of the limits above; the message names the problem and where."""


class DuplicateKey(ValueError):
    """A JSON object that names a member twice. RFC 8259 leaves the meaning open and readers differ (the first
    value, the last, an error): a body one reader checks and another acts on must not mean two things."""

    PROBLEM = "named more than once in its object"

    def __init__(self, path: list[str | int]):
        self.field = ".".join(printable(str(part)) for part in path)
        super().__init__(f"{self.field}: {self.PROBLEM}")


class _Repeated(Exception):
    pass


class _Repeats(dict[str, Any]):
    """An object that named `repeated` twice (the second reading, to say where)."""

    repeated = ""


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def no_control_characters(text: str) -> str:
    """A pydantic validator for names and identifiers: one line of printable text (a CR/LF
    in a name would forge lines in a log, a mail header or a CSV export)."""
    if has_control_characters(text):
        raise ValueError("must not contain control characters (NUL, CR, LF, tab and the like)")
    return text


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise LimitExceeded(f"a number of {len(text)} characters; the limit is {MAX_NUMBER_CHARS}")
    return float(text) if any(c in text for c in ".eE") else int(text)


def _constant(name: str) -> Any:
    raise LimitExceeded(f"{name} is not a JSON number")


def loads(body: bytes | str) -> Any:
    """Parse JSON within every limit; raise json.JSONDecodeError (UnicodeDecodeError) for
    what is not JSON, LimitExceeded for JSON past a limit."""
    document = parse(body)
    check(document)
    return document


def parse(body: bytes | str) -> Any:
    """Parse JSON, refusing what would break the parser (numbers past MAX_NUMBER_CHARS, NaN
    and Infinity, nesting the parser cannot follow) and a member named twice in one object
    (DuplicateKey); the rest of the limits is `check`'s."""
    try:
        return json.loads(body, parse_int=_number, parse_float=_number, parse_constant=_constant,
                          object_pairs_hook=_unique)
    except RecursionError:
        raise LimitExceeded(f"nested deeper than {MAX_DEPTH} levels") from None
    except _Repeated:
        raise DuplicateKey(_where_repeated(body)) from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Repeated
    return found


def _marking(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked = _Repeats(pairs)
            marked.repeated = key
            return marked
        seen.add(key)
    return dict(pairs)


def _where_repeated(body: bytes | str) -> list[str | int]:
    """The path of a member named twice: the body read again, marking the objects that repeat a name (only for
    a body refused anyway). The first reading stopped there, so the rest is still read within the limits."""
    try:
        document = json.loads(body, parse_int=_number, parse_float=_number, parse_constant=_constant,
                              object_pairs_hook=_marking)
    except RecursionError:
        raise LimitExceeded(f"nested deeper than {MAX_DEPTH} levels") from None
    pending: list[tuple[Any, list[str | int]]] = [(document, [])]
    while pending:
        value, path = pending.pop()
        if isinstance(value, _Repeats):
            return [*path, value.repeated]
        if isinstance(value, dict):
            pending.extend((member, [*path, key]) for key, member in value.items())
        elif isinstance(value, list):
            pending.extend((item, [*path, i]) for i, item in enumerate(value))
    raise AssertionError("the second reading found no repeated name")


def check(document: Any, where: str = "$") -> None:
    """Depth, sizes and NUL, walked without recursion (the document may be hostile)."""
    pending: list[tuple[Any, int, str]] = [(document, 1, where)]
    while pending:
        value, depth, where = pending.pop()
        if isinstance(value, str):
            _check_string(value, where)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"nested deeper than {MAX_DEPTH} levels at {where}")
        if len(value) > MAX_ITEMS:
            raise LimitExceeded(f"{len(value)} items at {where}; the limit is {MAX_ITEMS}")
        if isinstance(value, dict):
            for key, member in value.items():
                _check_string(key, f"{where} (a member name)")
                pending.append((member, depth + 1, f"{where}.{printable(key)}"))
        else:
            pending.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))


def _check_string(text: str, where: str) -> None:
    if len(text) > MAX_STRING:
        raise LimitExceeded(f"a string of {len(text)} characters at {where}; the limit is {MAX_STRING}")
    if _NUL in text:
        raise LimitExceeded(f"a NUL character at {where}")


def printable(text: str) -> str:
    """A name from the input as it may appear in an error message: control characters escaped, cut short."""
    shown = text if not has_control_characters(text) else text.encode("unicode_escape").decode()
    return shown if len(shown) <= 64 else shown[:61] + "..."
