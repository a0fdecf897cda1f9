"""Credentials out of every text we build or log: the secret, the token, the key, the Basic value."""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable

_APIKEY_IN_TEXT = re.compile(r"(apikey=)[^&\s'\"]+", re.IGNORECASE)
_AUTHORIZATION_IN_TEXT = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
MASK = "***"


class Scrubber:
    """Replaces every known credential in a text by ``***``; learns tokens as they are issued."""

    def __init__(self, secrets: Iterable[str], basic_pair: tuple[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)
        if basic_pair and all(basic_pair):
            self.add(base64.b64encode(f"{basic_pair[0]}:{basic_pair[1]}".encode()).decode())

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        from airflow_provider_patsnap._compat import mask_secret

        mask_secret(secret)
        with self._lock:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        text = _AUTHORIZATION_IN_TEXT.sub(rf"\1 {MASK}", _APIKEY_IN_TEXT.sub(rf"\1{MASK}", text))
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)  # a longer secret may contain a shorter
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text


class ScrubQueryFilter(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string included: the ``apikey``, and a presigned
    report link's signature (a credential for the file). Every query value is masked; names stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message and "=" in message:
            record.msg, record.args = _QUERY_VALUE.sub(rf"\1={MASK}", message), ()
        return True


_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&\s\"?]+)=[^&\s\"]*")
logging.getLogger("urllib3.connectionpool").addFilter(ScrubQueryFilter())
