"""Published import paths keep working: the report operators from operators.patsnap (first published
there) are the very classes of operators.report."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airflow_provider_patsnap.operators import patsnap, report


@pytest.mark.parametrize("name", ["PatsnapCreateValueReportOperator", "PatsnapDownloadReportOperator"])
def test_report_operators_import_from_both_paths(name: str) -> None:
    assert getattr(patsnap, name) is getattr(report, name)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="PatsnapReportJobLink"):
        patsnap.PatsnapReportJobLink  # noqa: B018 - removed with the presigned link (docs/report.md)


def test_the_report_operators_are_listed_but_loaded_only_when_asked_for() -> None:
    """Type checkers and IDEs see them (__all__, dir(), imports under TYPE_CHECKING); at run time the
    module imports operators.report nowhere but in ``__getattr__`` (DAG files that use only the data
    operators do not pay for it)."""
    names = {"PatsnapCreateValueReportOperator", "PatsnapDownloadReportOperator"}
    assert names <= set(patsnap.__all__) and names <= set(dir(patsnap))
    assert all(hasattr(patsnap, name) for name in patsnap.__all__)
    tree = ast.parse(Path(str(patsnap.__file__)).read_text(encoding="utf-8"))
    for_type_checkers: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for_type_checkers.update(
                alias.name
                for statement in node.body
                if isinstance(statement, ast.ImportFrom) and statement.module == report.__name__
                for alias in statement.names
            )
        elif isinstance(node, ast.ImportFrom | ast.Import):
            assert "report" not in ast.unparse(node), ast.unparse(node)  # a run-time import at load
    assert for_type_checkers == names
