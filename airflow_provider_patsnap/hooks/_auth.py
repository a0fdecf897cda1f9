"""Credentials on a PatSnap call: the bearer token (fetched once per identity) or the ``sk-`` key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import requests

from airflow_provider_patsnap.connection import ConnectionSettings

if TYPE_CHECKING:
    from airflow_provider_patsnap.hooks._shared import TokenCache


class PatsnapAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer``: a cached token, or the sk- key (:meth:`Transport.call` adds the
    ``apikey`` query value, with the other parameters, so the long URL is encoded once)."""

    def __init__(
        self, settings: ConnectionSettings, tokens: TokenCache, fetch: Callable[[], tuple[str, float]]
    ):
        self.settings = settings
        self.tokens = tokens
        self.fetch = fetch

    def bearer(self) -> str:
        return self.settings.api_key or self.tokens.get(self.fetch)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.bearer()}"
        return request

    def renew(self, request: requests.PreparedRequest) -> bool:
        """PatSnap rejected the token ``request`` carried: drop it; False when no renewal can help."""
        if self.settings.api_key:
            return False
        sent = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        self.tokens.invalidate(sent)
        return True
