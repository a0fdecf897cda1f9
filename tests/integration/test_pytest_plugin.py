"""The shipped pytest plugin, run by pytest itself (pytester): a marker is obeyed, or refused by name.

A marker argument the plugin does not understand used to be ignored: the test ran against a sandbox
without the faults it asked for, and passed.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "airflow_provider_patsnap.testing.pytest_plugin"


def run(pytester: pytest.Pytester, marker: str) -> pytest.RunResult:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.patsnap_sandbox({marker})
        def test_marked(patsnap_sandbox):
            assert patsnap_sandbox.config.fault_rate == 0.5
        """
    )
    return pytester.runpytest("-p", PLUGIN, "-p", "no:cacheprovider")


def test_keywords_configure_the_sandbox(pytester: pytest.Pytester) -> None:
    run(pytester, "fault_rate=0.5, seed=3, frozen_clock=True").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("marker", "named"),
    [
        ('{"fault_rate": 0.5}', "positional argument(s) ({'fault_rate': 0.5},)"),
        ("0.5", "positional argument(s) (0.5,)"),
        ("fault_rat=0.5", "unknown keyword(s): fault_rat"),
        ('{"fault_rate": 0.5}, frozen=True', "unknown keyword(s): frozen"),
    ],
    ids=["a-dict", "a-number", "a-misspelt-field", "both"],
)
def test_arguments_it_does_not_understand_are_an_error_naming_them(
    pytester: pytest.Pytester, marker: str, named: str
) -> None:
    result = run(pytester, marker)
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "@pytest.mark.patsnap_sandbox" in output and named in output


def test_the_factory_names_an_unknown_setting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_factory(patsnap_sandbox_factory):
            patsnap_sandbox_factory(latencyy=1)
        """
    )
    result = pytester.runpytest("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "unknown keyword(s): latencyy" in result.stdout.str()
