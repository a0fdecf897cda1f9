"""The package's own rules (CONTRIBUTING.md "Code", the layout in the design notes), checked on its source
so they do not erode: which layer may import which."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import airflow_provider_patsnap

PACKAGE_DIR = Path(airflow_provider_patsnap.__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name


def module_path(name: str) -> Path | None:
    """The source file of a package module (``None`` outside the package or for a name in a module)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _statements(body: list[ast.stmt], at_load: bool) -> Iterator[ast.stmt]:
    """Every statement that runs (``at_load``: when the module is imported; else: at any time), except
    under ``if TYPE_CHECKING:``, which never runs."""
    for node in body:
        yield node
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            yield from _statements(node.orelse, at_load)
            continue
        if at_load and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, [])
            if field == "handlers":
                children = [statement for handler in children for statement in handler.body]
            yield from _statements(children, at_load)


def imports(path: Path, *, at_load: bool) -> set[str]:
    """The modules ``path`` imports (``from a import b`` counts ``a.b`` too when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in _statements(tree.body, at_load):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(
                f"{base}.{alias.name}" for alias in node.names if module_path(f"{base}.{alias.name}")
            )
    return found


def loaded_with(name: str) -> set[str]:
    """Every module that importing package module ``name`` loads (its parents' ``__init__`` included)."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        parents = [".".join(current.split(".")[:end]) for end in range(1, current.count(".") + 1)]
        path = module_path(current)
        pending.extend(parents)
        if path is not None:
            pending.extend(imports(path, at_load=True))
    return seen


def package_modules(*under: str) -> list[Path]:
    return sorted(path for folder in under for path in (PACKAGE_DIR / folder).rglob("*.py"))


@pytest.mark.parametrize(
    "path", package_modules("sensors", "triggers"), ids=lambda path: str(path.relative_to(PACKAGE_DIR))
)
def test_sensors_and_triggers_never_import_operators(path: Path) -> None:
    name = module_name(path)
    reached = imports(path, at_load=False) | loaded_with(name)
    assert sorted(module for module in reached if module.startswith(f"{PACKAGE}.operators")) == []


def test_report_rules_import_no_hook() -> None:
    reached = imports(PACKAGE_DIR / "report.py", at_load=False) | loaded_with(f"{PACKAGE}.report")
    assert sorted(module for module in reached if module.startswith(f"{PACKAGE}.hooks")) == []


def test_connection_settings_load_the_standard_library_only() -> None:
    """Read by get_provider_info() and every DAG file's parse: nothing outside the standard library and
    the package's own stdlib-only modules loads with it (the Flask form widgets load when Airflow
    2.11-3.1 draws the form, inside the function that builds them)."""
    outside = {
        module
        for module in loaded_with(f"{PACKAGE}.connection")
        if module.split(".")[0] not in (PACKAGE, "__future__", *sys.stdlib_module_names)
    }
    assert sorted(outside) == []


def test_the_layering_checks_see_imports() -> None:
    """The checks above would pass on a parser that found nothing: it finds what is there."""
    assert f"{PACKAGE}.hooks.patsnap" in loaded_with(f"{PACKAGE}.sensors.patsnap")
    assert f"{PACKAGE}.endpoints" in loaded_with(f"{PACKAGE}.connection")
    assert "airflow" in loaded_with(f"{PACKAGE}.report")  # exceptions.py, at load
    assert f"{PACKAGE}._compat" in imports(PACKAGE_DIR / "report.py", at_load=False)  # inside a function
    assert f"{PACKAGE}._compat" not in imports(PACKAGE_DIR / "report.py", at_load=True)
    assert "flask_babel" in imports(PACKAGE_DIR / "connection.py", at_load=False)
    hook_module = PACKAGE_DIR / "hooks" / "patsnap.py"
    assert f"{PACKAGE}.hooks._transport" not in imports(hook_module, at_load=True)  # TYPE_CHECKING only


def _defined_exception_classes(path: Path) -> set[str]:
    """Classes of ``path`` named like errors (``...Error`` or ``...Exception``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Exception"))
    }


#: Error classes that never leave their module pair: each is caught and turned into something public.
INTERNAL_ERRORS = {
    "PayloadShapeError": "payloads.py -> endpoints.py: a payload of an unknown shape becomes a ShapeReject",
}


def test_every_public_error_class_is_defined_in_exceptions_py() -> None:
    """One error module (docs/errors.md): a public error class anywhere else is a second place to look.
    The sandbox's own errors are the vendor emulator's, never raised to a task."""
    elsewhere = {
        str(path.relative_to(PACKAGE_DIR)): sorted(
            name for name in names if not name.startswith("_") and name not in INTERNAL_ERRORS
        )
        for path in package_modules(".")
        if path.name != "exceptions.py" and "sandbox" not in path.parts
        if (names := _defined_exception_classes(path))
    }
    assert {path: names for path, names in elsewhere.items() if names} == {}


def test_docs_errors_tree_names_every_class_of_exceptions_py() -> None:
    import airflow_provider_patsnap.exceptions as exceptions

    tree = (PACKAGE_DIR.parent / "docs" / "errors.md").read_text(encoding="utf-8").split("```")[1]
    public = {
        name
        for name, value in vars(exceptions).items()
        if isinstance(value, type) and issubclass(value, exceptions.PatsnapError)
    }
    assert sorted(name for name in public if name not in tree) == []
