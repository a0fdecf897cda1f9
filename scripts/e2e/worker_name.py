"""``[core] hostname_callable`` for the CeleryExecutor run's workers: each names itself by its own loopback
address (127.0.0.2, ...), so a task instance's ``hostname`` says which of the two workers on this one
machine ran it, and the API server fetches the task's log from that worker's log server there."""

from __future__ import annotations

import os

WORKER_NAME_ENV = "E2E_WORKER_NAME"


def hostname() -> str:
    return os.environ[WORKER_NAME_ENV]
