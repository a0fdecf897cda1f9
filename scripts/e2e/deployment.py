"""Airflow components as separate processes, each in its own session, started and stopped by PID.

Each component runs under ``setsid`` (``start_new_session``), so its PID is also its session id: SIGINT
to that PID stops it and the children it manages, and any process left in the session afterwards (an
orphan of a SIGKILLed component, like the triggerer's ``serve-logs`` child) is found through /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


def session_members(session_id: int) -> list[int]:
    """PIDs of the live processes whose session is ``session_id`` (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # Fields after the command name, which is in parentheses and may itself contain spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            members.append(int(entry.name))
    return members


def _signal(pid: int, signum: signal.Signals) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_until_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.2)
        remaining = [pid for pid in remaining if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]
    return remaining


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].split()[0] == "Z"


@dataclass
class Deployment:
    """Starts ``airflow <command>`` processes with one environment and logs each to its own file."""

    airflow_bin: str
    env: dict[str, str]
    log_dir: Path
    components: list[Component] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)

    def start(self, command: str, name: str, env: dict[str, str] | None = None) -> Component:
        """Start ``airflow <command>``; ``env`` adds to the deployment's environment for this one."""
        return self.start_program([self.airflow_bin, *command.split()], name, env)

    def start_program(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> Component:
        """Start ``argv`` as a component (stopped with the others); ``env`` as for :meth:`start`."""
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                argv,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        component = Component(name, process, log)
        self.components.append(component)
        self.sessions.append(process.pid)
        return component

    def crash(self, component: Component) -> list[int]:
        """SIGKILL the component's PID only, as a crash would; return the orphans it left behind."""
        _signal(component.pid, signal.SIGKILL)
        component.process.wait(timeout=30)
        return session_members(component.pid)

    def stop_orphans(self, session_id: int, timeout: float = 20.0) -> list[int]:
        """SIGINT each process left in a session, by PID; return those still there after ``timeout``."""
        orphans = session_members(session_id)
        for pid in orphans:
            _signal(pid, signal.SIGINT)
        return _wait_until_gone(orphans, timeout)

    def stop_all(self, timeout: float = 120.0) -> dict[str, list[int]]:
        """SIGINT every component by PID, then every process left in their sessions.

        Returns, per session that still had processes after SIGINT, the PIDs that needed SIGKILL: an
        empty mapping means everything stopped on SIGINT. Two minutes of grace: under load a
        LocalExecutor scheduler was seen taking over one to wind down, with no task running.
        """
        for component in self.components:
            if component.alive():
                _signal(component.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for component in self.components:
            try:
                component.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        stubborn: dict[str, list[int]] = {}
        for component in self.components:
            left = self.stop_orphans(component.pid, timeout=max(deadline - time.monotonic(), 5.0))
            if left:
                for pid in left:
                    _signal(pid, signal.SIGKILL)
                stubborn[f"{component.name} (session {component.pid})"] = left
            if component.alive():
                component.process.kill()
            component.process.wait(timeout=10)
        return stubborn

    def leftovers(self) -> list[int]:
        """Every live process in any session this deployment started."""
        return [pid for session in self.sessions for pid in session_members(session)]
