"""The docs stay true: links resolve, the generated tables match the code, snippets include and compile.

`make docs` (mkdocs build --strict) checks links, anchors and includes on the built site too; these
tests run without the docs venv and check what the site generator reads against the imported code.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path

import pytest

from airflow_provider_patsnap import exceptions
from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.operators import patsnap as data_operators
from scripts import docs_hooks

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
INDEX = DOCS / "index.md"
README = REPO / "README.md"
# Pages whose anchors (#section) are checked too; every page's file links are checked.
ANCHOR_CHECKED = (
    "index.md",
    "connection.md",
    "errors.md",
    "performance.md",
    "operators.md",
    "compatibility.md",
)

# Pages whose python blocks must compile (sandbox.md sketches its API with signatures, not code).
COMPILED = (*ANCHOR_CHECKED, "performance.md", "report.md", "destinations.md")

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE_FENCE = re.compile(r"```.*?```", re.DOTALL)
# ```python, or ``` { .python title="..." } for an included file (ruff format leaves those alone).
PYTHON_BLOCK = re.compile(r"```(?:python| ?\{ \.python[^}]*\})\n(.*?)```", re.DOTALL)
SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::(\w+))?"$', re.MULTILINE)

CODE_SETS = {
    "RATE_LIMIT_CODES": exceptions.RATE_LIMIT_CODES,
    "TRANSIENT_CODES": exceptions.TRANSIENT_CODES,
    "TOKEN_CODES": exceptions.TOKEN_CODES,
    "QUOTA_CODES": exceptions.QUOTA_CODES,
    "PERMISSION_CODES": exceptions.PERMISSION_CODES,
    "INVALID_INPUT_CODES": exceptions.INVALID_INPUT_CODES,
    "INVALID_REQUEST_CODES": exceptions.INVALID_REQUEST_CODES,
}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def rendered(page: Path) -> str:
    """The page as the site shows it: generated tables in place (snippets are code, not links)."""
    return docs_hooks.render_generated(page.read_text(encoding="utf-8"))


def snippet(target: str, section: str | None) -> str:
    """What pymdownx.snippets includes for ``--8<-- "target:section"`` (markers dropped, dedented)."""
    lines = (REPO / target).read_text(encoding="utf-8").splitlines()
    if section is None:
        return "\n".join(line for line in lines if "--8<-- [" not in line) + "\n"
    start = next(i for i, line in enumerate(lines) if line.strip() == f"# --8<-- [start:{section}]")
    end = next(i for i, line in enumerate(lines) if line.strip() == f"# --8<-- [end:{section}]")
    return textwrap.dedent("\n".join(lines[start + 1 : end])) + "\n"


def anchors(page: Path) -> set[str]:
    text = CODE_FENCE.sub("", rendered(page))
    return {slug(match) for match in re.findall(r"^#{1,6}\s+(.+)$", text, re.MULTILINE)}


def links(page: Path) -> list[str]:
    text = CODE_FENCE.sub("", rendered(page))
    return LINK.findall(text)


def markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def test_index_links_every_page_in_docs() -> None:
    linked = {target.split("#")[0] for target in links(INDEX)}
    pages = {page.name for page in DOCS.glob("*.md")} - {"index.md"}
    assert pages <= linked, f"docs/index.md does not link {sorted(pages - linked)}"


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("mailto:"):
            continue  # external: not checked offline
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(
                f"{target} (no {resolved.relative_to(REPO) if resolved.is_relative_to(REPO) else resolved})"
            )
            continue
        check_anchor = anchor and resolved.suffix == ".md" and (page.name in ANCHOR_CHECKED or page == README)
        if check_anchor and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    assert not broken, f"{page.relative_to(REPO)}: broken links: {broken}"


DOCS_ANCHOR = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")


def test_docs_sections_the_package_names_exist() -> None:
    """A message that sends users to ``docs/<page>.md#<section>`` names a heading that is there."""
    missing = []
    for source in sorted((REPO / "airflow_provider_patsnap").rglob("*.py")):
        for page, anchor in DOCS_ANCHOR.findall(source.read_text(encoding="utf-8")):
            if not (DOCS / page).exists() or anchor not in anchors(DOCS / page):
                missing.append(f"{source.relative_to(REPO)}: docs/{page}#{anchor}")
    assert not missing, f"no such section: {missing}"


def error_table() -> dict[int, str]:
    """code -> exception class name, from the rows of docs/errors.md's error-code table as built."""
    rows = re.findall(r"^\|\s*(\d{8})\s*\|\s*`(\w+)`\s*\|", rendered(DOCS / "errors.md"), re.M)
    codes = [int(code) for code, _ in rows]
    assert len(codes) == len(set(codes)), "a code appears twice in docs/errors.md"
    return {int(code): name for code, name in rows}


def test_error_table_covers_every_code_in_exceptions() -> None:
    documented = set(error_table())
    for name, codes in CODE_SETS.items():
        missing = set(codes) - documented
        assert not missing, f"docs/errors.md lacks {sorted(missing)} from exceptions.{name}"
    every_code = set().union(*CODE_SETS.values())
    assert documented <= every_code, (
        f"docs/errors.md lists codes exceptions.py does not know: {documented - every_code}"
    )


def test_error_table_agrees_with_error_class_for() -> None:
    wrong = {
        code: (documented, exceptions.error_class_for(code, None).__name__)
        for code, documented in error_table().items()
        if exceptions.error_class_for(code, None).__name__ != documented
    }
    assert not wrong, f"docs/errors.md says (documented, actual): {wrong}"


def test_http_status_rows_agree_with_error_class_for() -> None:
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(HTTP [^|]+?)\s*\|\s*`(\w+)`\s*\|", text, re.M)
    assert rows, "docs/errors.md has no HTTP status table"
    for cell, name in rows:
        for status in (int(value) for value in re.findall(r"\b([1-5]\d\d)\b", cell)):
            actual = exceptions.error_class_for(None, status).__name__
            assert actual == name, (
                f"docs/errors.md: HTTP {status} -> {name}, but error_class_for gives {actual}"
            )


def test_readme_has_the_two_commands_up_front() -> None:
    text = README.read_text(encoding="utf-8")
    for command in ("make demo", "make test", "make test AIRFLOW=2", "pip install airflow-provider-patsnap"):
        assert command in text, f"README.md does not mention `{command}`"
    head = text[: text.index("## Connect")] if "## Connect" in text else text
    assert "make demo" in head and "make test" in head, (
        "the two commands must come before the connection section"
    )
    assert "benchmarks/RESULTS.md" in text and "docs/index.md" in text


@pytest.mark.parametrize("page", [README, *(DOCS / name for name in COMPILED)], ids=lambda page: page.name)
def test_python_snippets_compile(page: Path) -> None:
    for number, block in enumerate(PYTHON_BLOCK.findall(page.read_text(encoding="utf-8")), start=1):
        code = SNIPPET.sub(lambda match: snippet(match[1], match[2]), block)
        compile(code, f"{page.name} python block {number}", "exec")


def included_snippets() -> list[tuple[str, str, str | None]]:
    return [
        (page.name, target, section)
        for page in markdown_pages()
        for target, section in SNIPPET.findall(page.read_text(encoding="utf-8"))
    ]


def test_example_snippets_come_from_the_shipped_dags() -> None:
    dags = {
        (target, section) for _, target, section in included_snippets() if target.startswith("example_dags/")
    }
    shipped = {f"example_dags/{path.name}" for path in (docs_hooks.REPO / "example_dags").glob("*.py")}
    assert {target for target, _ in dags} == shipped, "every shipped example DAG is shown in the docs"
    for target, section in dags:
        assert snippet(target, section or None).strip(), f"{target}:{section} includes nothing"


# --------------------------------------------------------------------------- generated tables


def test_generated_tables_are_not_also_written_by_hand() -> None:
    for name, pattern in (("errors.md", r"^\|\s*\d{8}\s*\|"), ("destinations.md", r"^\| `record_key` \|")):
        text = (DOCS / name).read_text(encoding="utf-8")
        assert "<!-- generated: " in text and not re.search(pattern, text, re.M), (
            f"docs/{name} should ask for its table (<!-- generated: ... -->), not copy it"
        )


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda page: str(page.relative_to(REPO)))
def test_no_line_opens_raw_html(page: Path) -> None:
    assert docs_hooks.lines_opening_html(page.read_text(encoding="utf-8")) == []


def test_a_code_span_wrapped_before_a_tag_fails_the_build() -> None:
    markdown = textwrap.dedent(
        """\
        It creates an index (`CREATE INDEX IF NOT EXISTS
        <table>_pn`) on that column. See <https://open.patsnap.com/>.
        <!-- generated: error-codes -->
        ```sql
        <table> is fine in code
        ```
        """
    )
    assert docs_hooks.lines_opening_html(markdown) == [2]
    with pytest.raises(ValueError, match=r"line\(s\) \[2\] start with an HTML tag"):
        docs_hooks.on_page_markdown(markdown)


def test_unknown_generated_table_fails_the_build() -> None:
    with pytest.raises(ValueError, match="unknown generated table 'nope'"):
        docs_hooks.render_generated("<!-- generated: nope -->")


def test_code_sets_read_from_source_are_the_imported_ones() -> None:
    """The docs venv has no Airflow, so the generator reads exceptions.py with ast: check that reading."""
    read = docs_hooks.code_sets()
    assert {code_set.name: code_set.codes for code_set in read} == CODE_SETS
    for code_set in read:
        for code in code_set.codes:
            assert exceptions.error_class_for(code, None).__name__ == code_set.error_class


def test_operator_classes_read_from_source_are_the_imported_ones() -> None:
    imported = {
        cls.endpoint.code: name
        for name, cls in vars(data_operators).items()
        if isinstance(cls, type)
        and issubclass(cls, data_operators.PatsnapBatchOperator)
        and "endpoint" in vars(cls)
    }
    assert docs_hooks.operator_classes() == imported and set(imported) == set(ENDPOINTS)


def test_docs_list_every_column_and_key_of_every_table() -> None:
    text = rendered(DOCS / "destinations.md")
    for endpoint in ENDPOINTS.values():
        section = text.split(f"### `{endpoint.default_table}`")[1].split("\n### ")[0]
        documented = re.findall(r"^\| `(\w+)` \| ([^|]+) \| (.*) \|$", section, flags=re.MULTILINE)
        assert [(name, sql_type.strip()) for name, sql_type, _ in documented] == [
            (column.name, column.sql_type) for column in endpoint.columns
        ]
        assert all(description.strip() for _, _, description in documented), "a column has no description"
        key_line = next(line for line in section.splitlines() if "Natural key" in line)
        assert all(f"`{name}`" in key_line for name in endpoint.key_columns)


def test_operator_table_names_each_endpoints_operator_and_table() -> None:
    text = rendered(DOCS / "operators.md")
    for code, endpoint in ENDPOINTS.items():
        row = next(
            line
            for line in text.splitlines()
            if line.startswith(f"| `{docs_hooks.operator_classes()[code]}`")
        )
        assert f"`{endpoint.default_table}`" in row and code in row
        assert all(f"`{name}`" in row for name in endpoint.params)


def test_compatibility_page_lists_the_python_classifiers_pyproject_declares() -> None:
    """docs/compatibility.md's Python row names exactly the `Programming Language :: Python :: 3.N`
    classifiers of pyproject.toml, and its `requires-python`."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    row = re.search(
        r"^\| Python \| `([^`]+)` \(classifiers? ([^)]*)\) \|",
        (DOCS / "compatibility.md").read_text(encoding="utf-8"),
        re.M,
    )
    assert row, "docs/compatibility.md has no '| Python | `<requires-python>` (classifier ...) |' row"
    assert row[1] == project["requires-python"]
    assert sorted(re.split(r",\s*", row[2])) == declared


def test_make_docs_checks_the_built_site_in_a_browser_and_code_blocks_wrap() -> None:
    """Long code lines wrap (docs/stylesheets/extra.css, loaded by mkdocs.yml), and `make docs`, which CI's
    docs stage runs, checks every built page in headless Chromium (scripts/docs_layout.py)."""
    mkdocs = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^extra_css:\n  - stylesheets/extra\.css$", mkdocs, re.M)
    css = (DOCS / "stylesheets" / "extra.css").read_text(encoding="utf-8")
    assert re.search(r"\.md-typeset pre > code \{[^}]*white-space: pre-wrap;", css)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    docs_target = makefile[makefile.index("\ndocs:") :].split("\n\n")[0]
    assert "scripts/docs.sh build" in docs_target and "scripts/docs.sh check" in docs_target
    assert "make docs" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/docs_layout.py" in (REPO / "scripts" / "docs.sh").read_text(encoding="utf-8")
