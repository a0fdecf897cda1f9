"""A data task's run leaves the objects that existed before it out of the collector's full walks."""

from __future__ import annotations

import gc

from airflow_provider_patsnap._gc import long_lived_objects_frozen


def walked(item: object) -> bool:
    """Whether the collector's walks see ``item`` (frozen objects are not among gc.get_objects())."""
    return any(candidate is item for candidate in gc.get_objects())


def test_objects_that_exist_are_frozen_for_the_run_and_thawed_after() -> None:
    made_before: list[int] = []
    with long_lived_objects_frozen():
        made_inside: list[int] = []
        assert not walked(made_before)
        assert walked(made_inside)  # collected as usual
    assert gc.get_freeze_count() == 0
    assert walked(made_before)


def test_a_process_that_froze_objects_itself_is_left_as_it_was() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with long_lived_objects_frozen():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_run_that_fails_leaves_nothing_frozen() -> None:
    try:
        with long_lived_objects_frozen():
            assert gc.get_freeze_count() > 0
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
