"""Reading the data operators' arguments: literal or not yet rendered, id lists, durations."""

from __future__ import annotations

import ast
import math
import re
from datetime import timedelta
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def is_literal(value: Any) -> bool:
    """True when ``value`` is known at parse time: not an XComArg and not a Jinja template."""
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    return isinstance(value, list | tuple | set | frozenset)


def as_id_list(value: Any) -> Any:
    """A rendered template of a list arrives as its text (``"['CN1', 'CN2']"``): read it back."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            return value
    return value


def as_duration(value: timedelta | float | str | None, name: str) -> timedelta | None:
    """A ``timedelta``, a number of seconds, or text such as ``"7d"``, ``"12h"`` or ``"1d 6h"``."""
    try:
        if value is None or isinstance(value, timedelta):
            duration = value
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            duration = timedelta(seconds=value)
        elif isinstance(value, str) and _DURATION_PART.sub("", value.strip().lower()).strip() == "":
            parts = _DURATION_PART.findall(value.strip().lower())
            duration = (
                timedelta(seconds=sum(float(n) * _UNIT_SECONDS[unit] for n, unit in parts)) if parts else None
            )
        else:  # a bool, NaN, an infinity, text that is not a duration
            duration = None
    except OverflowError:  # more days than a timedelta holds ("1e300", "99999999999d")
        duration = None
    if (duration is None and value is not None) or (duration is not None and duration <= timedelta(0)):
        raise ValueError(
            f"{name} must be a positive duration: a timedelta, seconds, or text such as '7d', '12h' or "
            f"'1d 6h'; got {value!r}"
        )
    return duration
