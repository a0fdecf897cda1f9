"""PatSnap's response envelope, read strictly: a payload, or the typed error it stands for.

Every answer is ``{"data": ..., "status": true|false, "error_code": int, "error_msg": str}``. Whether an
error also comes with a 4xx/5xx is undocumented, so the body decides first and the HTTP status second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

import msgspec
import requests

from airflow_provider_patsnap.exceptions import PatsnapError, build_error

DEFAULT_TOKEN_TTL = 1800.0


class Body(NamedTuple):
    """A response body as JSON: ``value`` when it parsed, else ``problem`` says why not."""

    value: Any
    problem: str | None


# msgspec (installed with every Airflow we support) reads a well-formed body about 2.5 times faster than
# json, and hands floats over as their text exactly as ``parse_float=str`` does.
_decode_fast = msgspec.json.Decoder(float_hook=str).decode


def parse_body(content: bytes) -> Body:
    """Parse JSON with floats kept as text (codes such as 1.10 stay "1.10", no id passes a float)."""
    try:
        return Body(_decode_fast(content), None)
    except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
        pass  # a BOM, NaN, a lone surrogate escape, or not JSON at all: json decides, and says why
    try:
        text = content.decode("utf-8-sig")  # a UTF-8 byte order mark is still UTF-8 JSON
    except UnicodeDecodeError:
        return Body(None, "a body that is not UTF-8")
    try:
        return Body(json.loads(text, parse_float=str), None)
    except RecursionError:
        return Body(None, "JSON nested too deeply to read")
    except ValueError:
        return Body(None, "a body that is not JSON" if text.strip() else "an empty body")


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def retry_after_seconds(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def error_from_response(
    response: requests.Response, body: Body, description: str, scrub: Callable[[str], str]
) -> PatsnapError:
    """The typed error for an answer that is not a success; its message carries no secret."""
    envelope = body.value if isinstance(body.value, Mapping) else None
    if envelope is None:
        content_type = response.headers.get("Content-Type", "no content type")
        shape = body.problem or f"JSON that is not an envelope (a {type(body.value).__name__})"
        message: str | None = f"{shape} ({content_type})"
    else:
        message = envelope.get("error_msg") or envelope.get("message")
    error = build_error(
        error_code=int_or_none(envelope.get("error_code")) if envelope else None,
        http_status=response.status_code,
        vendor_message=scrub(str(message)) if message else None,
        context=description,
        retry_after=retry_after_seconds(response),
    )
    # A 5xx without PatSnap's envelope came from something in front of it (a gateway, a proxy): the
    # request may have been served and billed behind it. An envelope is PatSnap saying it failed.
    error.answer_lost = envelope is None and response.status_code >= 500
    return error


def parse_token_response(body: Any) -> tuple[str, float] | None:
    """Token and lifetime, or None when there is no token. Public clients disagree on the shape:
    accept ``token``, ``access_token`` or ``data.token``."""
    if not isinstance(body, Mapping):
        return None
    nested = body.get("data")
    data: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    token = body.get("token") or body.get("access_token") or data.get("token") or data.get("access_token")
    if not token or not isinstance(token, str):
        return None
    raw_ttl = body.get("expires_in", data.get("expires_in"))
    try:
        ttl = float(raw_ttl) if raw_ttl not in (None, "") else DEFAULT_TOKEN_TTL
    except (TypeError, ValueError):
        ttl = DEFAULT_TOKEN_TTL
    return token, ttl if 0 < ttl < float("inf") else DEFAULT_TOKEN_TTL
