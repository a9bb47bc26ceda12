"""JSON for the API server's hot paths, through orjson (several times faster than the standard
library, and the API server's CPU is spent largely on JSON). A value orjson refuses (an
integer wider than 64 bits) falls back to the standard library, so behaviour never differs."""

from __future__ import annotations

import json
from typing import Any

import orjson

OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=OPTIONS)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), default=str).encode()


def loads(data: bytes | str) -> Any:
    """Raises ValueError (orjson.JSONDecodeError is one) on malformed input."""
    return orjson.loads(data)


def copy(value: Any) -> Any:
    """A deep copy of a JSON value, through orjson (several times copy.deepcopy's speed on the
    objects every write copies); anything orjson cannot carry exactly is deep-copied instead."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONDecodeError):
        import copy as copying
        return copying.deepcopy(value)
