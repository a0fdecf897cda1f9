"""``python -m airflow_provider_patsnap.sandbox``: run the PatSnap emulator until SIGINT/SIGTERM.

Every flag can also come from ``PATSNAP_SANDBOX_<FLAG_IN_UPPER_SNAKE>`` (the flag wins). On start it
prints exactly one "listening" line, then an ``export AIRFLOW_CONN_PATSNAP_DEFAULT=...`` line, and
flushes, so scripts can wait for the first line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig
from airflow_provider_patsnap.sandbox.contract import EXTRA_FAULT_KINDS, FAULT_KINDS

ENV_PREFIX = "PATSNAP_SANDBOX_"
CLI_DEFAULT_PORT = 8085


def _faults(text: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in (*FAULT_KINDS, *EXTRA_FAULT_KINDS)]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {', '.join(unknown)}")
    return kinds


def _optional_float(text: str) -> float | None:
    return None if text.strip().lower() in ("", "none") else float(text)


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


@dataclass(frozen=True)
class Option:
    flag: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str = "S"

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


_DEFAULTS = SandboxConfig()
OPTIONS: tuple[Option, ...] = (
    Option("--port", int, CLI_DEFAULT_PORT, "API port (0 = any free port)", "N"),
    Option("--host", str, _DEFAULTS.host, "address to bind (0.0.0.0 to serve containers)", "HOST"),
    Option("--download-port", int, _DEFAULTS.download_port, "report download port (0 = any free port)", "N"),
    Option("--latency", float, _DEFAULTS.latency, "seconds every business call takes"),
    Option("--latency-jitter", float, _DEFAULTS.latency_jitter, "extra uniform(0, S) seconds per call"),
    Option("--qps", float, _DEFAULTS.qps, "server-side calls per second (0 = unlimited)", "N"),
    Option("--burst", _optional_float, _DEFAULTS.burst, "token-bucket capacity (default: = qps)", "N"),
    Option(
        "--qps-tolerance",
        float,
        _DEFAULTS.qps_tolerance,
        "how early a call may come for its token and still pass (arrival jitter)",
    ),
    Option("--token-ttl", float, _DEFAULTS.token_ttl, "OAuth token lifetime in seconds"),
    Option("--fault-rate", float, _DEFAULTS.fault_rate, "probability that a business call fails", "F"),
    Option(
        "--faults",
        _faults,
        _DEFAULTS.faults,
        f"comma-separated kinds from {','.join(FAULT_KINDS + EXTRA_FAULT_KINDS)}",
        "K,K",
    ),
    Option("--slow-seconds", float, _DEFAULTS.slow_seconds, "how long a 'slow' fault stalls"),
    Option("--report-delay", float, _DEFAULTS.report_delay, "seconds from report create to done"),
    Option("--link-ttl", float, _DEFAULTS.link_ttl, "seconds a report download link stays valid"),
    Option("--seed", int, _DEFAULTS.seed, "seed of the fault and latency generators", "N"),
    Option("--client-id", str, _DEFAULTS.client_id, "accepted client id", "ID"),
    Option("--client-secret", str, _DEFAULTS.client_secret, "accepted client secret", "SECRET"),
    Option("--api-key", str, _DEFAULTS.api_key, "accepted sk- API key", "KEY"),
)
ERRORS_AS_200 = Option("--errors-as-http-200", _boolean, False, "send every error envelope with HTTP 200")


def _env_defaults(environ: Mapping[str, str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Defaults taken from PATSNAP_SANDBOX_* variables; flags given on the command line still win."""
    defaults: dict[str, Any] = {}
    for option in (*OPTIONS, ERRORS_AS_200):
        raw = environ.get(option.env)
        if raw is None:
            continue
        try:
            defaults[option.dest] = option.parse(raw)
        except ValueError as error:
            parser.error(f"{option.env}={raw!r}: {error}")
    return defaults


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_patsnap.sandbox",
        description="Run a local PatSnap Open API emulator. Every flag can also be set with "
        f"{ENV_PREFIX}<FLAG_IN_UPPER_SNAKE>, e.g. {ENV_PREFIX}FAULT_RATE=0.1; the flag wins.",
    )
    for option in OPTIONS:
        parser.add_argument(
            option.flag,
            type=_argparse_type(option.parse),
            default=option.default,
            metavar=option.metavar,
            help=f"{option.help} [env {option.env}]",
        )
    parser.add_argument(
        ERRORS_AS_200.flag,
        action=argparse.BooleanOptionalAction,
        default=ERRORS_AS_200.default,
        help=f"{ERRORS_AS_200.help} instead of 4xx/5xx [env {ERRORS_AS_200.env}]",
    )
    parser.set_defaults(**_env_defaults(environ, parser))
    return parser


def config_from_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> SandboxConfig:
    parser = build_parser(os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    values = {option.dest: getattr(args, option.dest) for option in OPTIONS}
    try:
        return SandboxConfig(**values, error_http_status=not args.errors_as_http_200)
    except ValueError as error:
        parser.error(str(error))


def connection_extra(config: SandboxConfig) -> dict[str, Any]:
    """The extra of the connection line the CLI prints: the sandbox's own ``qps``, so a client set up
    from that line calls at the sandbox's limit (``0``: the sandbox sets none, nor does the client)."""
    qps = config.qps
    return {"qps": int(qps) if float(qps).is_integer() else qps}


def main(argv: Sequence[str] | None = None) -> int:
    config = config_from_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        sandbox = Sandbox(config).start()
    except OSError as error:
        print(f"PatSnap sandbox could not listen on {config.host}: {error}", file=sys.stderr)
        return 1
    try:
        print(
            f"PatSnap sandbox listening on {sandbox.base_url} (downloads on {sandbox.download_base_url})",
            flush=True,
        )
        # The sandbox's default credentials are not secrets, so printing them is fine.
        connection = sandbox.connection_json(**connection_extra(config))
        print(f"export AIRFLOW_CONN_PATSNAP_DEFAULT={shlex.quote(connection)}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
