"""A hostile vendor over real loopback HTTP: trickling peers, cut bodies, echoed credentials, bad links.

Each answer is written byte by byte by :class:`tests.helpers.RawServer`.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import (
    PatsnapAuthError,
    PatsnapError,
    PatsnapReportError,
    PatsnapTransientError,
)
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.report import CREATE_PATH, STATUS_PATH, ReportStatus
from tests.helpers import RawRequest, RawServer, envelope, http_response

PATH = AWARD.path
TOKEN = http_response(200, json.dumps({"token": "tok-secret-value", "expires_in": 1799}).encode())


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RawServer]:
    peer = RawServer()
    peer.script("/oauth/token", TOKEN)
    connection = peer.connection_json("hostile-secret", "hostile-client", qps=0, max_retries=0, timeout=1)
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", connection)
    yield peer
    peer.close()


class Trickle:
    """Sends ``payload`` one byte at a time, ``gap`` seconds apart, until done or the client hangs up."""

    def __init__(self, payload: bytes, gap: float = 0.1) -> None:
        self.payload = payload
        self.gap = gap
        self.sent = 0
        self.client_hung_up = threading.Event()

    def __call__(self, connection: socket.socket, request: RawRequest) -> None:
        pause = threading.Event()
        try:
            for byte in self.payload:
                connection.sendall(bytes([byte]))
                self.sent += 1
                pause.wait(self.gap)
        except OSError:
            self.client_hung_up.set()
            return
        # Sent it all: the client read to the end (an assertion below says that must not happen).


@pytest.mark.parametrize("part", ["headers", "body"])
def test_timeout_bounds_the_whole_call_against_a_trickling_peer(server: RawServer, part: str) -> None:
    """requests' read timeout is per socket read: one byte every 0.1 s never trips timeout=1. The
    deadline cuts the call; the peer sees the client hang up long before its 40 s of bytes were sent."""
    body = envelope([]) + b" " * 400
    answer = http_response(200, body)
    trickle = Trickle(answer if part == "headers" else answer[-400:])
    if part == "body":
        head = answer[:-400]

        def answer_fn(connection: socket.socket, request: RawRequest) -> None:
            connection.sendall(head)
            trickle(connection, request)

        server.script(PATH, answer_fn)
    else:
        server.script(PATH, trickle)
    with pytest.raises(PatsnapTransientError, match=r"no complete answer within timeout=1 s"):
        PatsnapHook().call("GET", PATH)
    assert trickle.client_hung_up.wait(10)  # the server notices on its next byte
    assert trickle.sent < 100


def test_timeout_bounds_a_proxy_trickling_its_connect_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTPS call through an HTTP proxy: the proxy's answer to CONNECT is read before any TLS, and a
    proxy that trickles it (one byte every 0.1 s, 40 s of bytes) must not outlast timeout=1 either."""
    trickle = Trickle(b"HTTP/1.1 200 Connection established\r\nX-Pad: " + b"p" * 400 + b"\r\n\r\n")
    proxy = RawServer(default=trickle)
    connection = {
        "conn_type": "patsnap",
        "host": "https://connect.patsnap.com",
        "password": "sk-proxied-key",
        "extra": {"proxies": {"https": proxy.base_url}, "timeout": 1, "max_retries": 0, "qps": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps(connection))
    try:
        with pytest.raises(PatsnapTransientError, match=r"no complete answer within timeout=1 s"):
            PatsnapHook().call("GET", PATH)
        assert trickle.client_hung_up.wait(10)  # the proxy notices on its next byte
        [connect] = proxy.seen
    finally:
        proxy.close()
    assert connect.method == "CONNECT" and trickle.sent < 100


def test_a_body_cut_short_is_transient_and_retried(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = envelope([{"pn": "CN1"}])
    cut = http_response(200, full[:10], Content_Length=str(len(full)))
    server.script(PATH, cut, http_response(200, full))
    hook = PatsnapHook(max_retries=1)
    assert hook.call("GET", PATH) == [{"pn": "CN1"}]
    assert hook.stats.retries == 1


def test_a_bearer_token_echoed_in_error_msg_is_scrubbed(server: RawServer) -> None:
    echoed = envelope(status=False, error_code=68300007, error_msg="bad request with Bearer tok-secret-value")
    server.script(PATH, http_response(400, echoed))
    with pytest.raises(PatsnapError) as raised:
        PatsnapHook().call("GET", PATH)
    assert "tok-secret-value" not in str(raised.value)
    assert "bad request" in str(raised.value)


def test_a_basic_header_echoed_by_the_token_endpoint_is_scrubbed(server: RawServer) -> None:
    basic = base64.b64encode(b"hostile-client:hostile-secret").decode()
    echoed = envelope(status=False, error_code=67200003, error_msg=f"rejected Authorization: Basic {basic}")
    server.script("/oauth/token", http_response(401, echoed))
    hook = PatsnapHook()
    with pytest.raises(PatsnapAuthError) as raised:
        hook.call("GET", PATH)
    ok, message = PatsnapHook().test_connection()
    assert not ok
    for text in (str(raised.value), message):
        assert basic not in text and "hostile-secret" not in text
        assert "rejected" in text


def test_no_secret_in_logs_or_errors(server: RawServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(
        PATH,
        lambda connection, request: None,
        http_response(503, envelope(status=False, error_code=67200100)),
    )
    hook = PatsnapHook(max_retries=1)
    with pytest.raises(PatsnapTransientError) as raised:
        hook.call("GET", PATH, params={"patent_number": "CN1"})
    texts = [caplog.text, str(raised.value), repr(raised.value), str(raised.value.__cause__)]
    for secret in ("hostile-secret", "tok-secret-value", "hostile-client"):
        assert not any(secret in text for text in texts), secret
    assert "apikey=***" in caplog.text  # urllib3's request lines were seen, and scrubbed


def test_no_api_key_in_logs_or_errors(
    server: RawServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps(
            {
                "conn_type": "patsnap",
                "host": server.base_url,
                "password": "sk-very-secret-key",
                "extra": {"max_retries": 1},
            }
        ),
    )
    server.script(
        PATH,
        lambda connection, request: None,
        http_response(503, envelope(status=False, error_code=67200100)),
    )
    with pytest.raises(PatsnapTransientError) as raised:
        PatsnapHook().call("GET", PATH, params={"patent_number": "CN1"})
    assert server.requests_to(PATH)[0].query["apikey"] == "sk-very-secret-key"  # it was really sent
    for text in (caplog.text, str(raised.value), repr(raised.value)):
        assert "sk-very-secret-key" not in text


def test_the_token_endpoint_down_is_asked_once_for_many_waiting_threads(server: RawServer) -> None:
    server.script("/oauth/token", http_response(503, b"<html>down</html>"))
    hook = PatsnapHook()
    failures: list[BaseException] = []

    def call() -> None:
        try:
            hook.call("GET", PATH)
        except PatsnapError as err:
            failures.append(err)

    threads = [threading.Thread(target=call) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(failures) == 32
    assert len(server.requests_to("/oauth/token")) == 1


# --- downloads -------------------------------------------------------------------------------------------


def download(url: str) -> tuple[int, int | None, bytes]:
    target = io.BytesIO()
    written, length = PatsnapHook().download(url, target)
    return written, length, target.getvalue()


def test_a_gzip_encoded_download_is_complete(server: RawServer) -> None:
    report = b"%PDF-1.4 report " * 100
    packed = gzip.compress(report)
    server.script("/file.pdf", http_response(200, packed, Content_Encoding="gzip"))
    written, length, data = download(f"{server.base_url}/file.pdf")
    assert data == report and written == len(report) and length == len(packed)


def test_a_download_shorter_than_its_length_is_a_clear_error(server: RawServer) -> None:
    server.script("/file.pdf", http_response(200, b"%PDF-1.4 half", Content_Length="1000"))
    with pytest.raises(PatsnapTransientError, match="rerun the task"):
        download(f"{server.base_url}/file.pdf")


def test_a_trickling_download_is_cut_per_chunk(server: RawServer) -> None:
    trickle = Trickle(b"x" * 400)

    def answer(connection: socket.socket, request: RawRequest) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\nConnection: close\r\n\r\n")
        trickle(connection, request)

    server.script("/file.pdf", answer)
    with pytest.raises(PatsnapTransientError, match="broke off"):
        download(f"{server.base_url}/file.pdf")
    assert trickle.client_hung_up.wait(10)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/r.pdf"])
def test_a_link_that_is_not_http_is_refused_for_good(server: RawServer, url: str) -> None:
    with pytest.raises(PatsnapReportError, match="not an http"):
        download(url)


def test_a_link_to_a_private_address_is_refused_for_a_public_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = {"conn_type": "patsnap", "host": "https://connect.patsnap.com", "login": "a", "password": "b"}
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps(conn))
    for url in (
        "http://127.0.0.1:9/r.pdf",
        "http://10.1.2.3/r.pdf",
        "http://[::1]/r.pdf",
        "http://169.254.169.254/x",
        "http://100.64.0.1/r.pdf",  # carrier-grade NAT: inside a provider's network, not the internet
        "http://100.127.255.254/r.pdf",
        "http://[::ffff:10.1.2.3]/r.pdf",  # IPv4-mapped
        "http://0.0.0.0/r.pdf",
        "http://224.0.0.1/r.pdf",  # multicast
    ):
        with pytest.raises(PatsnapReportError, match="private or loopback"):
            download(url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"allow_private_downloads": True}})
    )
    with pytest.raises(PatsnapTransientError):  # allowed: it is fetched (nothing listens on port 9)
        download("http://127.0.0.1:9/r.pdf")


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"\xef\xbb\xbf" + envelope([{"pn": "CN1"}]), None),
        (b"[1, 2]", "JSON that is not an envelope (a list)"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply to read"),
    ],
    ids=["bom", "array", "deep"],
)
def test_bodies_are_read_strictly_over_the_wire(server: RawServer, body: bytes, expected: str | None) -> None:
    server.script(PATH, http_response(200, body, Content_Type="application/json"))
    if expected is None:
        assert PatsnapHook().call("GET", PATH) == [{"pn": "CN1"}]
        return
    with pytest.raises(PatsnapError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        PatsnapHook().call("GET", PATH)


# --- redirects of a download link: every hop is checked like the link -------------------------------------

PUBLIC = "http://8.8.8.8"  # a public address: reached only through the proxy below, never for real


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RawServer]:
    """A public deployment whose worker reaches the internet through an HTTP proxy: this server answers
    for every host, so a link on a public address can redirect to an internal one."""
    peer = RawServer()
    conn = {
        "conn_type": "patsnap",
        "host": "https://connect.patsnap.com",
        "login": "proxied-client",
        "password": "proxied-secret",
        "extra": {"proxies": {"http": peer.base_url}, "timeout": 5},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps(conn))
    yield peer
    peer.close()


def redirect(location: str, status: int = 302) -> bytes:
    return http_response(status, b"", Location=location)


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:{port}/internal", "http://169.254.169.254/internal", "http://10.0.0.1/internal"],
    ids=["loopback", "metadata", "private"],
)
def test_a_redirect_to_a_private_address_is_refused(proxy: RawServer, location: str) -> None:
    port = proxy.base_url.rsplit(":", 1)[1]
    proxy.script("/r.pdf", redirect(location.format(port=port)))
    with pytest.raises(PatsnapReportError, match="redirected to a private or loopback address"):
        download(f"{PUBLIC}/r.pdf")
    assert proxy.requests_to("/internal") == []  # refused before anything was asked of it


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://8.8.8.8/r.pdf"])
def test_a_redirect_that_is_not_http_is_refused_for_good(proxy: RawServer, location: str) -> None:
    proxy.script("/r.pdf", redirect(location))
    with pytest.raises(PatsnapReportError, match="redirected to a URL that is not http") as raised:
        download(f"{PUBLIC}/r.pdf")
    assert not isinstance(raised.value, PatsnapTransientError)


def test_redirects_are_capped(proxy: RawServer) -> None:
    proxy.script("/loop", redirect("/loop"))
    with pytest.raises(PatsnapReportError, match="redirected more than 5 times"):
        download(f"{PUBLIC}/loop")
    assert len(proxy.requests_to("/loop")) == 6


def test_a_redirected_download_sends_no_credentials_on_any_hop(
    proxy: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests would add credentials from a netrc file for the host of any hop: none may leave.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 8.8.4.4 login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    report = b"%PDF-1.4 redirected"
    proxy.script("/r.pdf", redirect("/next", 301))
    proxy.script("/next", redirect("http://8.8.4.4/final.pdf", 307))
    proxy.script("/final.pdf", http_response(200, report))
    assert download(f"{PUBLIC}/r.pdf") == (len(report), len(report), report)
    hops = [proxy.requests_to(path)[0] for path in ("/r.pdf", "/next", "/final.pdf")]
    for hop in hops:
        assert "authorization" not in {name.lower() for name in hop.headers}, hop
        assert "apikey" not in hop.query
    assert hops[2].headers["Host"] == "8.8.4.4"


def test_a_private_deployment_follows_redirects_on_its_own_network(server: RawServer) -> None:
    report = b"%PDF-1.4 private"
    server.script("/file.pdf", redirect(f"{server.base_url}/stored/file.pdf"))
    server.script("/stored/file.pdf", http_response(200, report))
    assert download(f"{server.base_url}/file.pdf")[2] == report


# --- value report answers that echo credentials --------------------------------------------------------

JOB = "1579434053399036123"
SECRETS = ("tok-secret-value", "hostile-secret")


def leaks(text: str) -> list[str]:
    """The credentials in ``text``, whole or cut short (a message shortened before it was scrubbed)."""
    return [secret for secret in SECRETS if secret[:6] in text]


@pytest.mark.parametrize(
    "data, expected",
    [
        (["x" * 190 + "tok-secret-value hostile-secret"], "sent no status"),
        ({"job_id": JOB, "job_status": "Bearer tok-secret-value"}, "unreadable job_status"),
        (
            {"job_id": "tok-secret-value", "job_status": int(ReportStatus.EXPORTING)},
            "job_id must be an integer",
        ),
        (
            {
                "job_id": JOB,
                "job_status": int(ReportStatus.FAILED),
                "abnormal_cause": "hostile-secret rejected",
            },
            "failed: *** rejected",
        ),
    ],
    ids=["no-mapping", "status", "job-id", "cause"],
)
def test_a_status_answer_echoing_credentials_is_scrubbed(
    server: RawServer, data: object, expected: str
) -> None:
    server.script(STATUS_PATH, http_response(200, envelope(data)))
    with pytest.raises(PatsnapReportError, match=re.escape(expected)) as raised:
        PatsnapHook().wait_for_report(JOB, poll_interval=0, timeout=0)
    assert leaks(str(raised.value)) == []


@pytest.mark.parametrize(
    "data, expected",
    [
        ("x" * 186 + " tok-secret-value hostile-secret", "sent no job_id"),
        ({"job_id": "Bearer tok-secret-value"}, "job_id must be an integer"),
    ],
    ids=["no-mapping", "job-id"],
)
def test_a_create_answer_echoing_credentials_is_scrubbed(
    server: RawServer, data: object, expected: str
) -> None:
    server.script(CREATE_PATH, http_response(200, envelope(data)))
    with pytest.raises(PatsnapError, match=expected) as raised:
        PatsnapHook().create_value_report(patent_number="CN1")
    assert leaks(str(raised.value)) == []


def test_a_data_answer_echoing_credentials_is_scrubbed_before_it_is_shortened(server: RawServer) -> None:
    server.script(PATH, http_response(200, envelope({"echo": "x" * 182 + " tok-secret-value"})))
    with pytest.raises(PatsnapError, match="unexpected shape") as raised:
        PatsnapHook().fetch_batch(AWARD, ["CN1"], "patent_number")
    assert leaks(str(raised.value)) == []


def test_an_api_key_echoed_in_a_status_answer_is_scrubbed(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", server.connection_json("sk-very-secret-key", qps=0))
    server.script(STATUS_PATH, http_response(200, envelope(["your key sk-very-secret-key"])))
    with pytest.raises(PatsnapReportError, match="sent no status") as raised:
        PatsnapHook().get_report_state(JOB)
    assert "sk-very-secret-key" not in str(raised.value)
