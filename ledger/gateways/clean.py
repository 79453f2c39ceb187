"""Text and JSON from outside, made safe to keep.

Every string kept from a gateway (``result_desc``, ``raw``, error messages) has its NUL and other
control characters and lone surrogates removed and is bounded, so nothing a gateway sends can break
a PostgreSQL ``text``/``jsonb``. JSON is read strictly: no NaN, Infinity or overflowing floats.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from console.kernel.plausible import clean_json, clean_text

MAX_DESC = 255  # ResultDesc and other free text

_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf without passing through parse_constant
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def strict_json_loads(text: str) -> Any:
    """``json.loads`` without Python's extensions: NaN, Infinity and overflowing floats are refused
    (ValueError); nesting too deep for the parser raises ValueError instead of RecursionError."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON is nested too deeply") from None


def _without_surrogates(value: Any, depth: int = 0) -> Any:
    """Lone surrogates (from ``\\ud800`` escapes) cannot be stored in PostgreSQL; drop them."""
    if depth > 25:  # clean_json cuts deeper structures anyway
        return value
    if isinstance(value, str):
        return _SURROGATE_RE.sub("", value)
    if isinstance(value, dict):
        return {
            _without_surrogates(k, depth + 1): _without_surrogates(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_without_surrogates(v, depth + 1) for v in value]
    return value


def clean_raw(value: Any) -> Any:
    """A gateway's raw answer, safe to keep in a JSONField (see `console.kernel.plausible.clean_json`)."""
    if value is None:
        return None
    return clean_json(_without_surrogates(value))


def safe_text(value: Any, max_length: int = MAX_DESC) -> str:
    """Free text from outside (ResultDesc, messages): cleaned and bounded; lists/objects give ""."""
    if value is None or isinstance(value, dict | list | tuple):
        return ""
    return clean_text(_SURROGATE_RE.sub("", str(value)), max_length).strip()
