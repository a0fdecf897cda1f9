"""Streaming a presigned report link: another host, no credentials, every hop checked, a chunk budget."""

from __future__ import annotations

import ipaddress
import socket
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests

from airflow_provider_patsnap.connection import ConnectionSettings
from airflow_provider_patsnap.exceptions import PatsnapReportError, PatsnapTransientError
from airflow_provider_patsnap.hooks._deadline import deadline
from airflow_provider_patsnap.hooks._shared import Cancellation
from airflow_provider_patsnap.hooks._transport import CONNECT_TIMEOUT, Transport, int_or_none

#: Redirects a download link may take (S3-style hosts take none or one): more is a loop or a trick.
MAX_REDIRECTS = 5


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Not a public internet address: loopback, private, link-local, carrier-grade NAT (100.64.0.0/10),
    reserved, unspecified or multicast; an IPv4-mapped IPv6 address is judged as its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast or address.is_reserved


def _is_private(host: str) -> bool:
    """True when ``host`` is or resolves to an address that is not public (:func:`_is_internal`)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False  # unresolvable: the request itself will fail and say so
    return any(_is_internal(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos)


def check_download_url(url: str, settings: ConnectionSettings, redirected: bool = False) -> None:
    """Refuse a link (or a hop it ``redirected`` to) we must not follow: not http(s), or an internal
    address of a public deployment.

    A vendor's link to a loopback or private address could make the worker read internal services.
    Private addresses are allowed when the PatSnap base URL is itself private (a private deployment or
    the sandbox) or the connection's ``allow_private_downloads`` extra is true. No message quotes the
    URL: a presigned link is a credential for the file.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        what = "redirected to a URL that is not http(s)" if redirected else "is not an http(s) URL"
        raise PatsnapReportError(f"the report's download link {what} (scheme {parts.scheme!r})")
    if settings.allow_private_downloads or _is_private(urlsplit(settings.base_url).hostname or ""):
        return
    if _is_private(parts.hostname):
        what = "redirected to" if redirected else "points at"
        raise PatsnapReportError(
            f"the report's download link {what} a private or loopback address ({parts.hostname}); "
            "set the connection extra allow_private_downloads=true if your deployment serves reports there"
        )


class _NoCredentials(requests.auth.AuthBase):
    """No ``Authorization`` on any hop: given as the request's auth, it also keeps requests from
    adding one from a netrc file for the download host."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


def _open(
    session: requests.Session,
    url: str,
    settings: ConnectionSettings,
    cancellation: Cancellation,
    tls_and_proxies: dict[str, Any],
) -> requests.Response:
    """GET the link, following at most :data:`MAX_REDIRECTS` redirects ourselves: each hop is checked
    like the link, within its own deadline, and carries no credentials."""
    timeouts = (min(CONNECT_TIMEOUT, settings.timeout), settings.timeout)
    for hop in range(MAX_REDIRECTS + 1):
        check_download_url(url, settings, redirected=hop > 0)
        cancellation.check()
        try:
            with deadline(settings.timeout, cancellation.watch):
                response = session.get(
                    url,
                    stream=True,
                    timeout=timeouts,
                    headers={"Accept-Encoding": "identity"},
                    allow_redirects=False,
                    auth=_NoCredentials(),
                    **tls_and_proxies,
                )
        except requests.RequestException as err:
            raise PatsnapTransientError(f"report download failed: {type(err).__name__}") from None
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers["Location"])
    raise PatsnapReportError(
        f"the report's download link redirected more than {MAX_REDIRECTS} times: ask PatSnap support"
    )


def stream_download(
    transport: Transport, url: str, target: IO[bytes], chunk_size: int
) -> tuple[int, int | None]:
    """Write the link's body to ``target``; return (bytes written, Content-Length). A session of its own
    carries no credentials; each chunk has the connection's timeout to arrive; the transport's
    cancellation stops it between or within chunks."""
    with transport.new_session() as session:
        return _stream(session, url, target, transport, chunk_size)


def _stream(
    session: requests.Session, url: str, target: IO[bytes], transport: Transport, chunk_size: int
) -> tuple[int, int | None]:
    settings, cancellation = transport.settings, transport.cancellation
    response = _open(session, url, settings, cancellation, transport.tls_and_proxies())
    with response:
        if not 200 <= response.status_code < 300:  # a 3xx here had no Location to follow
            with deadline(settings.timeout, cancellation.watch):
                head = response.raw.read(4096, decode_content=True) or b""
            if response.status_code in (400, 403) and b"expired" in head.lower():
                raise PatsnapReportError(
                    "the report's download link has expired (links live 7 days): create a new report"
                )
            raise PatsnapReportError(f"report download failed with HTTP {response.status_code}")
        written = 0
        chunks = response.iter_content(chunk_size)
        try:
            while True:
                with deadline(settings.timeout, cancellation.watch):
                    chunk = next(chunks, None)
                if chunk is None:
                    break
                cancellation.check()
                target.write(chunk)
                written += len(chunk)
        except requests.RequestException as err:
            raise PatsnapTransientError(
                f"report download broke off after {written} bytes ({type(err).__name__}): rerun the task"
            ) from None
        length = int_or_none(response.headers.get("Content-Length"))
        received = response.raw.tell()  # bytes on the wire: a gzip body is longer once decoded
        if length is not None and received != length:
            raise PatsnapTransientError(
                f"report download is incomplete: {received} of {length} bytes arrived; rerun the task"
            )
        return written, length
