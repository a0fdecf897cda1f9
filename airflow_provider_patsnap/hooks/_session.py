"""The requests Session under the transport."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests


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
