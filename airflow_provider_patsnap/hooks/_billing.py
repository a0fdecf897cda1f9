"""What a run may have been billed, and a budget that every call checks just before it goes out.

PatSnap bills each patent an answer returns. An answer lost after its request went out (a read
timeout, a connection cut mid-answer, a gateway error) may have been billed all the same: its patents
are counted as *unknown*, and a budget treats them as spent, so no retry can carry a run past it.

Standard library only.
"""

from __future__ import annotations

import threading

from airflow_provider_patsnap.exceptions import PatsnapBudgetError, PatsnapError


class BillingMeter:
    """Units billed for certain (answers received), units that may have been billed (answers lost
    after sending), and the units of calls on the wire, against an optional budget. Thread-safe."""

    def __init__(self, max_units: int | None = None) -> None:
        self.max_units = max_units
        self.billed = 0
        self.unknown = 0
        self._on_the_wire = 0
        self._lock = threading.Lock()

    def units_left(self) -> int | None:
        """Units that may still be asked for; ``None`` without a budget."""
        if self.max_units is None:
            return None
        with self._lock:
            return self.max_units - self.billed - self.unknown - self._on_the_wire

    def reserve(self, units: int) -> None:
        """A call for ``units`` patents is about to go out: refuse it if it could pass the budget."""
        with self._lock:
            spent = self.billed + self.unknown + self._on_the_wire
            if self.max_units is not None and spent + units > self.max_units:
                raise PatsnapBudgetError(
                    f"max_billed_units={self.max_units}: {self.billed} unit(s) billed, {self.unknown} more "
                    f"may have been (answers lost after sending) and {self._on_the_wire} on the wire; a "
                    f"call for {units} more patent(s) could go past it, so it was not sent"
                )
            self._on_the_wire += units

    def answered(self, reserved: int, billed: int) -> None:
        with self._lock:
            self._on_the_wire -= reserved
            self.billed += billed

    def refused(self, reserved: int) -> None:
        """PatSnap answered with an error: nothing was billed."""
        with self._lock:
            self._on_the_wire -= reserved

    def lost(self, reserved: int) -> None:
        with self._lock:
            self._on_the_wire -= reserved
            self.unknown += reserved


class MeteredCall:
    """One call's attempts against a meter: each attempt reserves the call's units just before it is
    sent, and its outcome settles them (``before_send`` / ``after_failure`` of the transport)."""

    def __init__(self, meter: BillingMeter, units: int) -> None:
        self.meter = meter
        self.units = units
        self._sent = False

    def sending(self) -> None:
        self.meter.reserve(self.units)
        self._sent = True

    def failed(self, error: PatsnapError) -> None:
        if self._sent:
            self._sent = False
            if error.answer_lost:
                self.meter.lost(self.units)
            else:
                self.meter.refused(self.units)

    def answered(self, billed: int) -> None:
        if self._sent:
            self._sent = False
            self.meter.answered(self.units, billed)

    def answer_unreadable(self) -> None:
        """An answer came back that cannot be used: what it cost is unknown."""
        if self._sent:
            self._sent = False
            self.meter.lost(self.units)
