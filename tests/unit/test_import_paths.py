"""Published import paths keep working: the report operators from operators.patsnap (first published
there) are the very classes of operators.report."""

from __future__ import annotations

import pytest

from airflow_provider_patsnap.operators import patsnap, report


@pytest.mark.parametrize("name", ["PatsnapCreateValueReportOperator", "PatsnapDownloadReportOperator"])
def test_report_operators_import_from_both_paths(name: str) -> None:
    assert getattr(patsnap, name) is getattr(report, name)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="PatsnapReportJobLink"):
        patsnap.PatsnapReportJobLink  # noqa: B018 - removed with the presigned link (docs/report.md)
