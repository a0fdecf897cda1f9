"""``SandboxConfig``: every knob of the sandbox, validated once when it is built."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_patsnap.sandbox.contract import EXTRA_FAULT_KINDS, FAULT_KINDS


@dataclass(frozen=True)
class SandboxConfig:
    """Every knob of the sandbox; see docs/sandbox.md. Durations are seconds (floats allowed)."""

    port: int = 0
    host: str = "127.0.0.1"
    latency: float = 0.0
    latency_jitter: float = 0.0
    qps: float = 0.0  # 0 = unlimited
    burst: float | None = None  # None = qps
    qps_tolerance: float = 0.02  # a call this early for its token still passes (arrival jitter)
    token_ttl: float = 1799
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 40.0
    report_delay: float = 2.0
    link_ttl: float = 7 * 24 * 3600
    seed: int = 0
    error_http_status: bool = True
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    api_key: str = "sk-sandbox-key"
    download_port: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", tuple(self.faults))
        problems = [
            *_range_problems(self),
            *(
                f"unknown fault kind {kind!r}"
                for kind in self.faults
                if kind not in (*FAULT_KINDS, *EXTRA_FAULT_KINDS)
            ),
            *(
                f"{name} must not be empty"
                for name in ("client_id", "client_secret", "api_key")
                if not getattr(self, name)
            ),
        ]
        if self.fault_rate > 0 and not self.faults:
            problems.append("fault_rate > 0 needs at least one fault kind")
        if problems:
            raise ValueError("invalid SandboxConfig: " + "; ".join(problems))


def _range_problems(config: SandboxConfig) -> list[str]:
    checks: list[tuple[str, bool]] = [
        ("port must be 0-65535", 0 <= config.port <= 65535),
        ("download_port must be 0-65535", 0 <= config.download_port <= 65535),
        ("latency must be >= 0", config.latency >= 0),
        ("latency_jitter must be >= 0", config.latency_jitter >= 0),
        ("qps must be >= 0", config.qps >= 0),
        ("burst must be > 0", config.burst is None or config.burst > 0),
        ("qps_tolerance must be >= 0", config.qps_tolerance >= 0),
        ("token_ttl must be > 0", config.token_ttl > 0),
        ("fault_rate must be between 0 and 1", 0 <= config.fault_rate <= 1),
        ("slow_seconds must be >= 0", config.slow_seconds >= 0),
        ("report_delay must be >= 0", config.report_delay >= 0),
        ("link_ttl must be > 0", config.link_ttl > 0),
    ]
    return [message for message, ok in checks if not ok]
