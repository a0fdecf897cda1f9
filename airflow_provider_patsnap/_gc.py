"""The cyclic garbage collector during a data task's run.

A run streams millions of short-lived objects, and every full collection the collector makes walks
every object in the process again: Airflow, its providers and the DAG are hundreds of thousands. Frozen
for the run, they are left out of those walks (docs/performance.md has what it saves). The data
operators hold it around their fetch in a ``with`` block, so the freeze ends with the run however the
run ends; the hook's own methods never freeze anything (a caller may abandon a generator).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Freeze the objects that exist now for the block's length; those made inside it are collected as
    usual. A process that froze objects itself (before forking workers, say) is left as it was."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
