"""``[core] hostname_callable`` for the CeleryExecutor run's workers: each names itself, so a task
instance's ``hostname`` says which of the two workers on this one machine ran it."""

from __future__ import annotations

import os

WORKER_NAME_ENV = "E2E_WORKER_NAME"


def hostname() -> str:
    return os.environ[WORKER_NAME_ENV]
