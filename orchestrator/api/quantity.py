"""Kubernetes resource quantities ("100m", "1.5", "8Gi", "500M") as numbers: cpu in millicores,
everything else in base units (bytes, counts)."""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
            "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
            "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
            "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60}


class QuantityError(ValueError):
    pass


@functools.lru_cache(maxsize=4096)
def parse(text: str | int | float) -> Decimal:
    if isinstance(text, (int, float)):
        return Decimal(str(text))
    text = text.strip()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number, scale = text[:-len(suffix)], SUFFIXES[suffix]
            break
    else:
        number, scale = text, Decimal(1)
    try:
        return Decimal(number) * scale
    except InvalidOperation:
        raise QuantityError(f"not a quantity: {text!r}") from None


def milli_cpu(text: str | int | float) -> int:
    return int((parse(text) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def amount(text: str | int | float) -> int:
    return int(parse(text).to_integral_value(rounding="ROUND_CEILING"))


def resources(values: dict | None) -> dict[str, int]:
    """A requests/capacity map as numbers: cpu in millicores, others in base units."""
    out = {}
    for name, value in (values or {}).items():
        try:
            out[name] = milli_cpu(value) if name == "cpu" else amount(value)
        except QuantityError:
            continue
    return out
