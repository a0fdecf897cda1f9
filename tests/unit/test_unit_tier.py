"""The unit tier's own promise (tests/unit/conftest.py): no real timed wait, no socket."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_patsnap.hooks._shared import Cancellation, SystemClock


def test_the_unit_tier_refuses_a_real_timed_wait() -> None:
    """How the real clock waits (hooks/_shared.py): an Event's timed wait. The fake clock never does."""
    with pytest.raises(AssertionError, match=r"must not wait 1\.0 s for real"):
        SystemClock().wait(threading.Event(), 1.0)
    with pytest.raises(AssertionError, match="must not wait"):
        Cancellation(SystemClock()).sleep(0.5)
    assert threading.Event().wait(0.01) is False  # threads handing work over may wait that long
