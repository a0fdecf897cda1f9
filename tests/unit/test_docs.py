"""The docs stay true: links resolve, the error table matches exceptions.py, the README's two commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_provider_patsnap import exceptions

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
INDEX = DOCS / "index.md"
README = REPO / "README.md"
# Pages whose anchors (#section) are checked too; every page's file links are checked.
ANCHOR_CHECKED = ("index.md", "connection.md", "errors.md", "performance.md")

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE_FENCE = re.compile(r"```.*?```", re.DOTALL)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)

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
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = CODE_FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(match) for match in re.findall(r"^#{1,6}\s+(.+)$", text, re.MULTILINE)}


def links(page: Path) -> list[str]:
    text = CODE_FENCE.sub("", page.read_text(encoding="utf-8"))
    return LINK.findall(text)


def markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_index_links_every_page_in_docs() -> None:
    linked = {target.split("#")[0] for target in links(INDEX)}
    pages = {page.name for page in DOCS.glob("*.md")} - {"index.md"}
    assert pages <= linked, f"docs/index.md does not link {sorted(pages - linked)}"


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda page: page.name)
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


def error_table() -> dict[int, str]:
    """code -> exception class name, from the rows of docs/errors.md's error-code table."""
    rows = re.findall(
        r"^\|\s*(\d{8})\s*\|\s*`(\w+)`\s*\|", (DOCS / "errors.md").read_text(encoding="utf-8"), re.M
    )
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


@pytest.mark.parametrize(
    "page", [README, *(DOCS / name for name in ANCHOR_CHECKED)], ids=lambda page: page.name
)
def test_python_snippets_compile(page: Path) -> None:
    for number, block in enumerate(PYTHON_BLOCK.findall(page.read_text(encoding="utf-8")), start=1):
        compile(block, f"{page.name} python block {number}", "exec")
