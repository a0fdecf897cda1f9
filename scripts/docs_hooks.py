"""MkDocs hook: tables the code defines are rendered from the code, so the docs cannot drift from it.

A page asks for a table with a line of its own, ``<!-- generated: NAME -->``; :func:`on_page_markdown`
replaces it before MkDocs renders the page, and an unknown NAME fails the build. The tables come from
``airflow_provider_patsnap/endpoints.py`` (imported: it is standard library only) and from
``exceptions.py`` and ``operators/patsnap.py`` (read with :mod:`ast`: they import Airflow, which the docs
venv does not have). ``tests/repo/test_docs.py`` checks what is read here against the imported modules.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "airflow_provider_patsnap"
if str(REPO) not in sys.path:  # mkdocs loads this file by path, with the repo root not importable
    sys.path.insert(0, str(REPO))

from airflow_provider_patsnap.endpoints import ENDPOINTS, Endpoint  # noqa: E402

GENERATED = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


class CodeDoc(NamedTuple):
    """What a PatSnap error code means, and what happens beyond its class's usual behaviour."""

    meaning: str
    behaviour: str | None = None  # None: the class's behaviour (CLASS_BEHAVIOUR)


# The vendor's meaning of each code (its documentation pages); exceptions.py decides the class.
CODE_DOCS: dict[int, CodeDoc] = {
    67200002: CodeDoc('calls faster than the client\'s QPS (older pages: "quota exceeds")'),
    67200100: CodeDoc("server busy, response timeout"),
    68300008: CodeDoc("service error, try again later"),
    67200003: CodeDoc(
        "token expired, or wrong client id / secret",
        "a new token is fetched once and the call repeated; then fails "
        '("check the connection\'s client id and secret")',
    ),
    67200009: CodeDoc("the apikey does not match the token"),
    67200000: CodeDoc("calls exceed the total limit set by the platform"),
    67200001: CodeDoc("calls exceed the total limit (variant)"),
    67200005: CodeDoc("insufficient account balance / number of calls"),
    67200006: CodeDoc("the client's activation validity period has expired"),
    67200007: CodeDoc(
        "the day's configured usage limit is exceeded", "fails at once, no retry; tomorrow's run can succeed"
    ),
    67200004: CodeDoc("no permission for this API"),
    68300004: CodeDoc("invalid parameter (for example more than 100 ids)"),
    68300007: CodeDoc("bad request"),
    67200008: CodeDoc("apikey missing", "fails at once (a provider bug: please report it)"),
    67200012: CodeDoc("illegal request"),
    67200101: CodeDoc("unknown path", "fails at once (check the base URL)"),
    68300005: CodeDoc("search failure"),
    68300006: CodeDoc("no analytics access"),
    68300010: CodeDoc("upload specification not met"),
}

CLASS_BEHAVIOUR: dict[str, str] = {
    "PatsnapRateLimitError": "retried with backoff and jitter, `Retry-After` honoured; "
    "lower the `qps` extra if it keeps happening",
    "PatsnapTransientError": "retried with backoff and jitter",
    "PatsnapAuthError": "a new token is fetched once and the call repeated; then fails",
    "PatsnapQuotaError": "fails at once, no retry: contact PatSnap",
    "PatsnapPermissionError": "fails at once: ask PatSnap to enable the API for your client",
    "PatsnapInvalidInputError": "fails at once, naming the values sent",
    "PatsnapInvalidRequestError": "fails at once",
}


class CodeSet(NamedTuple):
    """One ``*_CODES`` set of exceptions.py and the class ``error_class_for`` maps it to."""

    name: str
    codes: frozenset[int]
    error_class: str


def code_sets(source: Path = PACKAGE / "exceptions.py") -> list[CodeSet]:
    """The code sets in the order ``error_class_for`` checks them (the first match wins)."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    literal_sets: dict[str, frozenset[int]] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "frozenset"
        ):
            literal_sets[node.targets[0].id] = frozenset(ast.literal_eval(node.value.args[0]))
    function = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "error_class_for"
    )
    loop = next(node for node in ast.walk(function) if isinstance(node, ast.For))
    if not isinstance(loop.iter, ast.Tuple):
        raise ValueError("error_class_for no longer loops over a literal (CODES, class) table")
    pairs = []
    for pair in loop.iter.elts:
        set_node, class_node = pair.elts if isinstance(pair, ast.Tuple) else (None, None)
        if not (isinstance(set_node, ast.Name) and isinstance(class_node, ast.Name)):
            raise ValueError(f"unexpected entry in error_class_for's table: {ast.unparse(pair)}")
        pairs.append(CodeSet(set_node.id, literal_sets[set_node.id], class_node.id))
    return pairs


def error_code_table() -> str:
    sets = code_sets()
    known = frozenset().union(*(code_set.codes for code_set in sets))
    if undocumented := sorted(known - CODE_DOCS.keys()):
        raise ValueError(f"exceptions.py knows codes with no CODE_DOCS entry in {__file__}: {undocumented}")
    if unknown := sorted(CODE_DOCS.keys() - known):
        raise ValueError(f"CODE_DOCS documents codes exceptions.py does not know: {unknown}")
    lines = ["| code | exception | meaning | behaviour |", "|---|---|---|---|"]
    claimed: set[int] = set()
    for code_set in sets:
        for code, doc in CODE_DOCS.items():
            if code in code_set.codes and code not in claimed:
                claimed.add(code)
                behaviour = doc.behaviour or CLASS_BEHAVIOUR[code_set.error_class]
                lines.append(f"| {code} | `{code_set.error_class}` | {doc.meaning} | {behaviour} |")
    return "\n".join(lines)


def operator_classes(source: Path = PACKAGE / "operators" / "patsnap.py") -> dict[str, str]:
    """Endpoint code -> the operator class whose body says ``endpoint = ENDPOINTS["<code>"]``."""
    found: dict[str, str] = {}
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if (
                isinstance(statement, ast.Assign)
                and [ast.unparse(target) for target in statement.targets] == ["endpoint"]
                and isinstance(statement.value, ast.Subscript)
                and ast.unparse(statement.value.value) == "ENDPOINTS"
            ):
                found[ast.literal_eval(statement.value.slice)] = node.name
    if missing := sorted(ENDPOINTS.keys() - found.keys()):
        raise ValueError(f"no operator class in {source.name} for endpoints {missing}")
    return found


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def endpoint_section(endpoint: Endpoint, operator: str) -> str:
    if undescribed := [column.name for column in endpoint.columns if not column.description]:
        raise ValueError(f"{endpoint.code}: columns without a description in endpoints.py: {undescribed}")
    lines = [
        f"### `{endpoint.default_table}`: {endpoint.code} {endpoint.title}",
        "",
        f"Operator `{operator}`; API `{endpoint.method} {endpoint.path}`, payload `{endpoint.payload_key}`. "
        f"Natural key: `patent_id`, {_names(endpoint.key_columns)} (hashed into `record_key`).",
        "",
        "| column | SQL type | description |",
        "|---|---|---|",
    ]
    lines += [f"| `{c.name}` | {c.sql_type} | {c.description} |" for c in endpoint.columns]
    return "\n".join(lines)


def endpoint_tables() -> str:
    operators = operator_classes()
    return "\n\n".join(endpoint_section(e, operators[code]) for code, e in ENDPOINTS.items())


def operator_table() -> str:
    operators = operator_classes()
    lines = ["| operator | API | table | parameters of its own |", "|---|---|---|---|"]
    for code, endpoint in ENDPOINTS.items():
        own = "; ".join(
            f"`{name}`: {' or '.join(f'`{value}`' for value in values)}"
            for name, values in endpoint.params.items()
        )
        lines.append(
            f"| `{operators[code]}` | {code} {endpoint.title} | "
            f"[`{endpoint.default_table}`](destinations.md#{endpoint.docs_anchor}) | {own} |"
        )
    return "\n".join(lines)


GENERATORS: dict[str, Callable[[], str]] = {
    "error-codes": error_code_table,
    "endpoint-tables": endpoint_tables,
    "operator-table": operator_table,
}


def render_generated(markdown: str) -> str:
    """``markdown`` with every ``<!-- generated: NAME -->`` line replaced by its table."""

    def render(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated table {name!r}; known: {sorted(GENERATORS)}")
        return GENERATORS[name]()

    return GENERATED.sub(render, markdown)


# A line that starts with a tag opens a raw HTML block, and Markdown then shows the rest of the paragraph
# as source: a code span wrapped before `<table>_pn` once turned half a page into raw text.
HTML_BLOCK_START = re.compile(r"^\s*<[A-Za-z][A-Za-z0-9-]*[\s/>]")
FENCE = re.compile(r"^\s*(```|~~~)")


def lines_opening_html(markdown: str) -> list[int]:
    """The numbers of the lines, outside fenced code, that Markdown would take as the start of raw HTML."""
    numbers, in_fence = [], False
    for number, line in enumerate(markdown.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and HTML_BLOCK_START.match(line):
            numbers.append(number)
    return numbers


def on_page_markdown(markdown: str, page: Any = None, **_: Any) -> str:
    if numbers := lines_opening_html(markdown):
        where = page.file.src_path if page is not None else "a page"
        raise ValueError(f"{where}: line(s) {numbers} start with an HTML tag; rewrap so they do not")
    return render_generated(markdown)
