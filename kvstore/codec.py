"""msgpack encoding shared by commands, results, snapshots and (later) the wire protocol.

Bytes stay bytes (bin type) and strings stay strings, so keys and values round-trip exactly.
A frame that does not decode is INVALID_ARGUMENT, never an exception of msgpack's.
"""

from __future__ import annotations

from typing import Any

import msgpack

from kvstore.errors import invalid


def encode(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def decode(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as err:
        raise invalid(f"malformed msgpack: {err.__class__.__name__}") from None
