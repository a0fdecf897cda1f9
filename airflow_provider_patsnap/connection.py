"""The PatSnap connection: its form fields, UI behaviour and the parsed settings the hook runs on.

Standard library only: ``get_provider_info()`` reads the field table on every Airflow start, and the hook's
form methods read the same table, so both connection forms (Airflow 2.11-3.1 and 3.2+) always agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from airflow_provider_patsnap.endpoints import MAX_BATCH

CONNECTION_TYPE = "patsnap"
DEFAULT_BASE_URL = "https://connect.patsnap.com"
DEFAULT_CONN_ID = "patsnap_default"
#: The vendor's worst documented latency per call (seconds): concurrency is sized from it.
MAX_VENDOR_LATENCY = 10.0
#: Calls in flight beyond ``qps x MAX_VENDOR_LATENCY``: room for the client's own time per call.
CONCURRENCY_HEADROOM = 1.2
#: Calls in flight when ``qps`` is 0 (no client-side limit): nothing to size from.
UNLIMITED_QPS_CONCURRENCY = 64
#: The most calls in flight, default or extra: one thread and one socket each (QPS 340 at 10 s).
MAX_CONCURRENCY = 4096
#: What Airflow 3 shows in place of a value it considers sensitive; never a real setting.
MASKED = "***"


class ConnectionField(NamedTuple):
    """One extra of the connection form, described once for both Airflow form systems."""

    label: str
    description: str
    json_type: str  # "number", "integer", "boolean" or "string" (JSON schema)
    default: Any  # None for any field whose name Airflow may treat as sensitive (it masks non-None)


CONN_FIELDS: dict[str, ConnectionField] = {
    "qps": ConnectionField(
        "Requests per second", "Client-side rate limit; ask PatSnap for your quota.", "number", 5
    ),
    "timeout": ConnectionField(
        "Timeout (s)", "Seconds one call may take in all: connect, headers and body.", "number", 30
    ),
    "max_retries": ConnectionField("Max retries", "Retries of a transient failure per call.", "integer", 5),
    "verify": ConnectionField("Verify TLS", "Keep on unless you know why.", "boolean", True),
    # Airflow 3 masks any field named like a proxy whenever its value is not None: a "" default was
    # shown and saved as "***". None keeps the form empty.
    "proxies": ConnectionField(
        "Proxies (JSON)", 'For example {"https": "http://proxy:3128"}.', "string", None
    ),
    # Opt-in: no default. Named so that no Airflow line takes it for a secret (it names a connection).
    "rate_limit_redis_conn_id": ConnectionField(
        "Shared rate limit: Redis connection id",
        "An Airflow Redis connection: every task, trigger and worker using this PatSnap connection then "
        "shares one QPS. Empty: each task process keeps to qps on its own.",
        "string",
        None,
    ),
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {
        "host": "Base URL",
        "login": "Client ID",
        "password": "Client secret or API key (sk-...)",
    },
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "login": "client id (leave empty when using an sk- API key)",
        "password": "client secret, or an sk- API key",
    },
}


def provider_connection_fields() -> dict[str, Any]:
    """The ``conn-fields`` entry of ``get_provider_info()`` (read by Airflow 3.2+)."""
    return {
        name: {
            "label": spec.label,
            "description": spec.description,
            "schema": {"type": [spec.json_type, "null"], "default": spec.default},
        }
        for name, spec in CONN_FIELDS.items()
    }


def connection_form_widgets() -> dict[str, Any]:
    """The extras as Flask form fields (Airflow 2.11-3.1; 3.2+ reads :func:`provider_connection_fields`)."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import NumberRange, Optional

    fields: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        label, description, default = lazy_gettext(spec.label), spec.description, spec.default
        if spec.json_type == "boolean":
            fields[name] = BooleanField(label, default=default, description=description)
        elif spec.json_type == "integer":
            fields[name] = IntegerField(
                label,
                widget=BS3TextFieldWidget(),
                validators=[Optional(), NumberRange(min=0)],
                default=default,
                description=description,
            )
        else:  # Airflow 2.11 drops a hook whose form has a FloatField: numbers are text fields
            fields[name] = StringField(
                label, widget=BS3TextFieldWidget(), default=default, description=description
            )
    return fields


#: The connection's numeric extras: (int or float, lowest, highest). A hook's overrides of them
#: (``PatsnapHook(qps=...)``) keep to the same bounds.
NUMERIC_EXTRAS: dict[str, tuple[type, float, float]] = {
    "qps": (float, 0, 10_000),  # 0: no client-side limit
    "timeout": (float, 0.001, 3600),
    "max_retries": (int, 0, 100),
    "concurrency": (int, 1, MAX_CONCURRENCY),
}


class InvalidSettings(ValueError):
    """A connection's host, credentials or extras are unusable; the message names the bad value.

    Not public: the hook raises it again as :class:`~airflow_provider_patsnap.exceptions.PatsnapConnectionError`
    (this module loads the standard library only, so it cannot define that Airflow exception itself)."""


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the hook needs from an Airflow connection, validated. ``repr`` shows no secret."""

    base_url: str
    client_id: str | None = field(repr=False)
    client_secret: str | None = field(repr=False)
    api_key: str | None = field(repr=False)
    qps: float
    timeout: float
    max_retries: int
    concurrency: int
    verify: bool | str
    proxies: dict[str, str] | None = field(repr=False)
    allow_private_downloads: bool = False
    #: An Airflow Redis connection holding one rate limit for every process using this identity and qps.
    rate_limit_redis_conn_id: str | None = None

    def __repr__(self) -> str:
        """The fields a repr may show, the base URL without its user info (which may hold a password)."""
        from airflow_provider_patsnap.lineage import public_url

        shown = {item.name: getattr(self, item.name) for item in fields(self) if item.repr}
        shown["base_url"] = public_url(self.base_url)
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    @property
    def apikey(self) -> str:
        """The ``apikey`` query value: the client id, or the key itself in the sk- model."""
        return self.api_key or self.client_id or ""

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed: the secret, the sk- key, the client id (the apikey), and a
        password in the base URL's user info (``https://user:password@host``), as written and decoded."""
        in_url = urlsplit(self.base_url).password
        values = (self.client_secret, self.api_key, self.client_id, in_url, unquote(in_url or ""))
        return tuple(dict.fromkeys(value for value in values if value))

    @property
    def identity(self) -> tuple[str, str]:
        """Who PatSnap counts calls against: token cache and rate limiter are shared per identity."""
        return (self.base_url, self.apikey)


def _as_bool(name: str, value: Any, default: bool, conn_id: str) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    # "y" is what a ticked WTForms checkbox posts: Airflow 2.11's connection form sends it as is to the
    # connection test (its Test button), where "Verify TLS" would otherwise be refused.
    if text in ("true", "1", "yes", "y", "on"):
        return True
    if text in ("false", "0", "no", "n", "off"):
        return False
    raise InvalidSettings(f"connection {conn_id!r}: extra {name!r} must be true or false, got {value!r}")


def default_concurrency(qps: float) -> int:
    """Enough calls in flight to use the whole QPS at the vendor's worst documented latency (10 s),
    with headroom; at most :data:`MAX_CONCURRENCY` (the hook logs when that binds)."""
    if qps <= 0:
        return UNLIMITED_QPS_CONCURRENCY
    in_flight = round(qps * MAX_VENDOR_LATENCY * CONCURRENCY_HEADROOM, 6)  # 60.00000000000001 is 60
    return min(MAX_CONCURRENCY, max(2, math.ceil(in_flight)))


def concurrency_shortfall(settings: ConnectionSettings) -> str | None:
    """Why ``concurrency`` calls in flight cannot carry ``qps`` at the vendor's worst latency, or None."""
    allowed = settings.concurrency / MAX_VENDOR_LATENCY
    if settings.qps <= 0 or allowed >= settings.qps:
        return None
    return (
        f"concurrency={settings.concurrency} allows at most {allowed:.1f} calls/s "
        f"({allowed * MAX_BATCH:.0f} patents/s) when PatSnap takes {MAX_VENDOR_LATENCY:g} s a call, "
        f"below qps={settings.qps:g}; raise the connection's concurrency extra to "
        f"{default_concurrency(settings.qps)} to use the whole QPS"
    )


def _extras(conn: Any, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    extra = conn.extra_dejson or {}
    if not isinstance(extra, Mapping):
        raise InvalidSettings(f"connection {conn.conn_id!r}: extra must be a JSON object")
    # A masked placeholder saved by a UI is not a value: it means "not set".
    merged = {key: value for key, value in extra.items() if value != MASKED}
    merged.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return merged


def _number(conn_id: str, extra: Mapping[str, Any], name: str, cast: type, low: float, high: float) -> Any:
    raw = extra.get(name)
    if (raw is None or raw == "") and name in CONN_FIELDS:
        raw = CONN_FIELDS[name].default
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidSettings(
            f"connection {conn_id!r}: extra {name!r} must be a number, got {raw!r}"
        ) from None
    if not math.isfinite(value):
        raise InvalidSettings(f"connection {conn_id!r}: extra {name!r} must be finite, got {raw!r}")
    if cast is int:
        if not value.is_integer():
            raise InvalidSettings(
                f"connection {conn_id!r}: extra {name!r} must be a whole number, got {raw!r}"
            )
        value = int(value)
    if not low <= value <= high:
        raise InvalidSettings(
            f"connection {conn_id!r}: extra {name!r} must be >= {low} and <= {high}, got {raw!r}"
        )
    return value


def _proxies(conn_id: str, raw: Any) -> dict[str, str] | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidSettings(f"connection {conn_id!r}: extra 'proxies' is not JSON") from None
    if not isinstance(raw, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in raw.items()
    ):
        raise InvalidSettings(
            f"connection {conn_id!r}: extra 'proxies' must be a JSON object of scheme to proxy URL, "
            f'for example {{"https": "http://proxy:3128"}}; got a {type(raw).__name__}'
        )
    return dict(raw) or None


#: Longer than any connection id Airflow stores (250 characters).
MAX_CONN_ID_LENGTH = 250


def _conn_id(conn_id: str, name: str, raw: Any) -> str | None:
    """The id of another Airflow connection named by an extra, or None when it is not set."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidSettings(
            f"connection {conn_id!r}: extra {name!r} must be the id of an Airflow connection, "
            f"got a {type(raw).__name__}"
        )
    text = raw.strip()
    if not text:
        return None
    if len(text) > MAX_CONN_ID_LENGTH or not all(char.isprintable() and not char.isspace() for char in text):
        raise InvalidSettings(
            f"connection {conn_id!r}: extra {name!r} must be the id of an Airflow connection "
            f"(no spaces, at most {MAX_CONN_ID_LENGTH} characters), got {text[:60]!r}"
        )
    return text


def parse_connection(conn: Any, overrides: Mapping[str, Any] | None = None) -> ConnectionSettings:
    """Read host, credentials and extras of an Airflow connection; every bad value is named."""
    conn_id = conn.conn_id
    extra = _extras(conn, overrides)
    host = (conn.host or "").strip() or DEFAULT_BASE_URL
    if "://" not in host:
        host = f"https://{host}"
    if conn.port:
        host = f"{host.rstrip('/')}:{conn.port}"
    password = conn.password or None
    if password == MASKED:
        password = None
    api_key = extra.get("api_key") or (password if password and password.startswith("sk-") else None)
    client_id = conn.login or None
    if not api_key and not (client_id and password):
        raise InvalidSettings(
            f"connection {conn_id!r} needs a client id (login) and client secret (password), "
            "or an sk- API key (password)"
        )
    qps = _number(conn_id, extra, "qps", *NUMERIC_EXTRAS["qps"])
    concurrency = (
        _number(conn_id, extra, "concurrency", *NUMERIC_EXTRAS["concurrency"])
        if extra.get("concurrency") not in (None, "")
        else default_concurrency(qps)
    )
    verify = extra.get("verify", True)
    if not (isinstance(verify, str) and "/" in verify):  # a CA bundle path stays a path
        verify = _as_bool("verify", verify, True, conn_id)
    return ConnectionSettings(
        base_url=host.rstrip("/"),
        client_id=None if api_key else client_id,
        client_secret=None if api_key else password,
        api_key=api_key,
        qps=qps,
        timeout=_number(conn_id, extra, "timeout", *NUMERIC_EXTRAS["timeout"]),
        max_retries=_number(conn_id, extra, "max_retries", *NUMERIC_EXTRAS["max_retries"]),
        concurrency=concurrency,
        verify=verify,
        proxies=_proxies(conn_id, extra.get("proxies")),
        allow_private_downloads=_as_bool(
            "allow_private_downloads", extra.get("allow_private_downloads"), False, conn_id
        ),
        rate_limit_redis_conn_id=_conn_id(
            conn_id, "rate_limit_redis_conn_id", extra.get("rate_limit_redis_conn_id")
        ),
    )
