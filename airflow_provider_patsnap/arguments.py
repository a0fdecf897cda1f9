"""How a numeric argument of the public API is checked: one rule and one message for every hook method,
operator, sensor and trigger, applied before anything is called.

A count is an ``int``; a quantity (seconds, a rate) an ``int`` or a ``float``. A ``bool`` is neither (``True``
would be 1), nor is text (``"5"``), and NaN and the infinities are refused: they would fail mid-run,
never end a wait, or never trigger a limit. The error is a
:class:`~airflow_provider_patsnap.exceptions.PatsnapInputError` (a ``ValueError``) naming the parameter
and the value.
"""

from __future__ import annotations

import math
from typing import Any

from airflow_provider_patsnap.exceptions import PatsnapInputError


def _bounds(minimum: float | None, maximum: float | None, above: bool) -> str:
    low = "" if minimum is None else f"{'>' if above else '>='} {minimum:g}"
    high = "" if maximum is None else f"<= {maximum:g}"
    return " and ".join(part for part in (low, high) if part)


def whole_number(name: str, value: Any, *, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a bool) between ``minimum`` and ``maximum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise PatsnapInputError(
            f"{name} must be a whole number {_bounds(minimum, maximum, False)} (an int), got {value!r}"
        )
    return value


def number(
    name: str,
    value: Any,
    *,
    minimum: float = 0.0,
    maximum: float | None = None,
    above_minimum: bool = False,
    unit: str = "",
) -> float:
    """``value`` as a float if it is a finite ``int`` or ``float`` (not a bool) of at least ``minimum``
    (more than it with ``above_minimum``) and at most ``maximum``; ``unit`` names what it counts."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < minimum
        or (above_minimum and value == minimum)
        or (maximum is not None and value > maximum)
    ):
        what = f"a number of {unit}" if unit else "a number"
        raise PatsnapInputError(
            f"{name} must be {what} {_bounds(minimum, maximum, above_minimum)} (an int or a float, finite), "
            f"got {value!r}"
        )
    return float(value)


def seconds(name: str, value: Any, *, minimum: float = 0.0, above_minimum: bool = False) -> float:
    """A finite duration or moment in seconds, at least ``minimum``."""
    return number(name, value, minimum=minimum, above_minimum=above_minimum, unit="seconds")
