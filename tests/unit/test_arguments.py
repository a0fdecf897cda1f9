"""Every numeric parameter of the public API is checked before any call: enumerated, so a new one cannot
skip it.

The public classes of hooks/, operators/, sensors/ and triggers/ are found by inspection, and every
parameter annotated ``int`` or ``float`` (alone or in a union) of their public methods and constructors
is given bad values: negative, NaN, infinity, a bool, a numeric string, and 0 where 0 means nothing.
Each must raise a ``ValueError`` naming the parameter and the value, with no request made to the
mocked PatSnap.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import re
import types
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
import requests_mock

import airflow_provider_patsnap
from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.ids import PatentIds

PACKAGES = ("hooks", "operators", "sensors", "triggers")
#: Public modules outside those packages whose classes a DAG author builds: the operators' id sources.
MODULES = ("id_sources",)
PACKAGE = airflow_provider_patsnap.__name__
JOB = "1579434053399036001"

#: Valid values for required parameters, by name: a new required parameter needs one here.
VALID: dict[str, Any] = {
    "task_id": "t",
    "patent_numbers": ["CN1A"],
    "patent_number": "CN1A",
    "job_id": JOB,
    "endpoint": AWARD,
    "ids": ["CN1A"],
    "batches": [PatentIds.of(["CN1A"])],
    "url": "https://files.test/report.pdf",
    "target": io.BytesIO(),
    "end_time": 4102444800.0,  # 2100-01-01
    "conn_id": "warehouse",
    "sql": "SELECT pn FROM patents",
    "path": "/data/ids/",
    "poll_interval": 1.0,
    "timeout": 10.0,
}

#: Where 0 is a meaningful value; everywhere else 0 must be refused too.
ZERO_IS_VALID = {
    ("PatsnapHook.__init__", "qps"),  # no client-side rate limit, as the connection's extra
    ("PatsnapHook.__init__", "max_retries"),
    ("PatsnapHook.wait_for_report", "poll_interval"),
    ("PatsnapHook.wait_for_report", "timeout"),  # one check, then the sensor timeout
    ("PatsnapHook.wait_for_report", "tolerated_errors"),
    ("PatsnapBatchOperator.__init__", "max_billed_units"),
    ("PatsnapBatchOperator.__init__", "xcom_row_limit"),
    ("PatsnapBatchOperator.__init__", "max_rejects"),
    ("PatsnapCreateValueReportOperator.__init__", "poll_interval"),
    ("PatsnapCreateValueReportOperator.__init__", "timeout"),
    ("PatsnapCreateValueReportOperator.__init__", "tolerated_errors"),
    ("PatsnapReportSensor.__init__", "tolerated_errors"),
    ("PatsnapReportTrigger.__init__", "end_time"),  # a deadline long past: one last check
    ("PatsnapReportTrigger.__init__", "poll_interval"),
    ("PatsnapReportTrigger.__init__", "tolerated_errors"),
}

BAD_VALUES: tuple[Any, ...] = (-1, float("nan"), float("inf"), float("-inf"), True, False, "5")


def public_classes() -> dict[str, type]:
    """Every public class of the public modules of hooks/, operators/, sensors/ and triggers/, and of
    :data:`MODULES` (what a DAG author imports), by name: the classes each defines, and those its
    ``__all__`` re-exports (``operators.patsnap`` lists the base operator and the report operators)."""
    found: dict[str, type] = {}
    modules = [f"{PACKAGE}.{name}" for name in MODULES]
    for package_name in PACKAGES:
        package = importlib.import_module(f"{PACKAGE}.{package_name}")
        modules += [
            f"{package.__name__}.{info.name}"
            for info in pkgutil.iter_modules(package.__path__)
            if not info.name.startswith("_")
        ]
    for module_name in modules:
        module = importlib.import_module(module_name)
        exported = set(getattr(module, "__all__", ()))
        for name in {*exported, *vars(module)}:
            value = getattr(module, name)
            if name.startswith("_") or not inspect.isclass(value):
                continue
            if value.__module__ == module.__name__ or name in exported:
                found[name] = value
    return found


def _union_members(annotation: str) -> list[str]:
    """``"timedelta | float | None"`` → its members; brackets are kept whole (``dict[str, int]`` is one)."""
    members, depth, current = [], 0, ""
    for char in annotation:
        depth += char in "[("
        depth -= char in "])"
        if char == "|" and depth == 0:
            members.append(current.strip())
            current = ""
        else:
            current += char
    return [*members, current.strip()]


def numeric_members(parameter: inspect.Parameter) -> set[str]:
    """``{"int"}``, ``{"float"}``, both or neither: the number types the parameter's annotation names."""
    annotation = parameter.annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return {member for member in _union_members(text) if member in ("int", "float")}


class Case(NamedTuple):
    owner: type  # the public class
    defined: str  # Class.method where the parameter is declared
    method: str
    parameter: str
    whole: bool = False  # annotated int and not float: 2.5 is refused too

    @property
    def label(self) -> str:
        return f"{self.owner.__name__}.{self.method}({self.parameter})"


def _functions(cls: type) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """(method name, where it is defined, the function) for the public methods and the constructor of
    ``cls`` defined in this package (its own or inherited from a package class, not Airflow's)."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith(f"{PACKAGE}."):
            continue
        for name, attribute in vars(klass).items():
            if name in seen or (name.startswith("_") and name != "__init__"):
                continue
            function = attribute.__func__ if isinstance(attribute, classmethod | staticmethod) else attribute
            if isinstance(function, types.FunctionType):
                seen.add(name)
                yield name, f"{klass.__name__}.{name}", function


def cases() -> list[Case]:
    found = []
    for cls in public_classes().values():
        constructor_params: set[str] = set()
        for method, defined, function in _functions(cls):
            for parameter in inspect.signature(function).parameters.values():
                numbers = numeric_members(parameter)
                if numbers and not (method == "__init__" and parameter.name in constructor_params):
                    found.append(Case(cls, defined, method, parameter.name, numbers == {"int"}))
                    if method == "__init__":
                        constructor_params.add(parameter.name)
        # An operator's constructor passes **kwargs on to its base's: those count as its own too.
        for klass in cls.__mro__[1:]:
            if klass.__module__.startswith(f"{PACKAGE}.") and "__init__" in vars(klass):
                for parameter in inspect.signature(vars(klass)["__init__"]).parameters.values():
                    numbers = numeric_members(parameter)
                    if numbers and parameter.name not in constructor_params:
                        constructor_params.add(parameter.name)
                        defined = f"{klass.__name__}.__init__"
                        found.append(Case(cls, defined, "__init__", parameter.name, numbers == {"int"}))
    return sorted(found, key=lambda case: case.label)


CASES = cases()


def test_the_enumeration_finds_the_public_api() -> None:
    """The inspection above would pass on finding nothing: it finds what is there."""
    classes = public_classes()
    assert {
        "PatsnapHook",
        "PatsnapBatchOperator",
        "PatsnapAwardOperator",
        "PatsnapSeicClassificationOperator",
        "PatsnapCreateValueReportOperator",
        "PatsnapDownloadReportOperator",
        "PatsnapReportSensor",
        "PatsnapReportTrigger",
    } <= set(classes)
    labels = {case.label for case in CASES}
    assert {
        "PatsnapHook.__init__(qps)",
        "PatsnapHook.__init__(concurrency)",
        "PatsnapHook.lookup(batch_size)",
        "PatsnapHook.stream_batches(max_group)",
        "PatsnapHook.wait_for_report(timeout)",
        "PatsnapHook.download(chunk_size)",
        "PatsnapAwardOperator.__init__(refresh_after)",
        "PatsnapSeicClassificationOperator.__init__(qps)",
        "PatsnapCreateValueReportOperator.__init__(poll_interval)",
        "PatsnapReportSensor.__init__(tolerated_errors)",
        "PatsnapReportTrigger.__init__(end_time)",
        "FileIds.shards(count)",
        "SqlIds.shards(count)",
    } <= labels
    defined = {(case.defined, case.parameter) for case in CASES}
    assert defined >= ZERO_IS_VALID  # no stale entry


def _arguments(function: Callable[..., Any], case: Case, value: Any) -> dict[str, Any]:
    arguments = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == case.parameter:
            arguments[parameter.name] = value
        elif parameter.default is inspect.Parameter.empty and parameter.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            if parameter.name == "self":
                continue
            assert parameter.name in VALID, f"{case.label}: add a valid value for {parameter.name!r} to VALID"
            arguments[parameter.name] = VALID[parameter.name]
    if case.method == "__init__" and "task_id" not in arguments and _is_operator(case.owner):
        arguments["task_id"] = VALID["task_id"]
        if "patent_numbers" not in arguments and hasattr(case.owner, "endpoint"):
            arguments["patent_numbers"] = VALID["patent_numbers"]
        if "CreateValueReport" in case.owner.__name__:
            arguments.setdefault("patent_number", VALID["patent_number"])
        if "Sensor" in case.owner.__name__:
            arguments.setdefault("job_id", VALID["job_id"])
    return arguments


def _is_operator(cls: type) -> bool:
    return any(klass.__name__ == "BaseOperator" for klass in cls.__mro__)


def invoke(case: Case, value: Any) -> None:
    """Call the method (on an instance built with valid arguments) with ``value`` for the parameter;
    a generator is advanced to its first item, which is when its checks run."""
    if case.method == "__init__":
        init = vars(next(k for k in case.owner.__mro__ if f"{k.__name__}.__init__" == case.defined))[
            "__init__"
        ]
        case.owner(**_arguments(init, case, value))
        return
    instance_arguments = _arguments(case.owner.__init__, case._replace(parameter=""), None)
    instance = case.owner(**instance_arguments)
    method = getattr(instance, case.method)
    result = method(**_arguments(method, case, value))
    if inspect.isgenerator(result):
        next(result)


def bad_values(case: Case) -> list[Any]:
    zero = [] if (case.defined, case.parameter) in ZERO_IS_VALID else [0, 0.0]
    return [*BAD_VALUES, *zero, *([2.5] if case.whole else [])]


@pytest.mark.parametrize(
    ("case", "value"),
    [(case, value) for case in CASES for value in bad_values(case)],
    ids=lambda item: item.label if isinstance(item, Case) else repr(item),
)
def test_a_bad_number_is_refused_naming_it_before_any_call(
    vendor: requests_mock.Mocker, case: Case, value: Any
) -> None:
    with pytest.raises(ValueError) as raised:
        invoke(case, value)
    message = str(raised.value)
    assert re.search(rf"\b{case.parameter}\b", message), message
    assert repr(value) in message, message
    assert vendor.call_count == 0
