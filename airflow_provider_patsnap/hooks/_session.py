"""The requests Session under the transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, urlsplit

import requests
from requests.hooks import default_hooks


class EnvironmentOnceSession(requests.Session):
    """A Session that reads the environment (proxy variables, CA bundle) once per host and per-request
    settings, not once per call: the answer depends on nothing else, and a task's environment is fixed."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:  # requests' own type differs between its versions
        parts = urlsplit(url)
        given = tuple(sorted(proxies.items())) if proxies else ()
        key = (parts.scheme, parts.netloc, given, stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            merged = super().merge_environment_settings(url, dict(proxies or {}), stream, verify, cert)
            settings = self._environment[key] = dict(merged)
        return {**settings, "proxies": dict(settings["proxies"])}  # requests may change what it gets

    def prepare_get(self, url: str, params: Mapping[str, str], auth: Any) -> requests.PreparedRequest:
        """What ``prepare_request(Request("GET", url, params=params, auth=auth))`` gives for text
        parameters, without requests' general preparation: it percent-encodes a batch's 1,500-character
        query character by character, twice, about a fifth of a call's instructions. Same method, URL
        (byte for byte), headers, cookies and authorization."""
        prepared = requests.PreparedRequest()
        prepared.method = "GET"
        prepared.url = f"{url}?{query_string(params)}" if params else url
        prepared.prepare_headers(self.headers)
        prepared.body = None
        prepared.hooks = default_hooks()
        prepared.prepare_cookies(self.cookies)
        return auth(prepared) if auth is not None else prepared

    def get_with_params(
        self, url: str, params: Mapping[str, str], auth: Any, **settings: Any
    ) -> requests.Response:
        """``request("GET", url, params=params, auth=auth, **settings)`` through :meth:`prepare_get`:
        the environment's proxies and CA bundle apply as they do there."""
        prepared = self.prepare_get(url, params, auth)
        timeout, verify, proxies = (
            settings.pop("timeout"),
            settings.pop("verify"),
            settings.pop("proxies", {}),
        )
        environment = self.merge_environment_settings(prepared.url, proxies, None, verify, None)
        return self.send(prepared, timeout=timeout, allow_redirects=True, **environment)


def query_string(params: Mapping[str, str]) -> str:
    """What requests makes of text parameters (``urlencode`` with ``quote_plus``), quoted with the comma
    safe and then escaped alone: a batch's ids need no other escape, which ``quote_plus`` then decides at
    once instead of character by character (no escape it writes contains a comma)."""
    return "&".join(
        f"{quote_plus(name)}={quote_plus(value, safe=',').replace(',', '%2C')}"
        for name, value in params.items()
    )
