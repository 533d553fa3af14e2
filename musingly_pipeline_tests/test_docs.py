"""The user docs stay true to the code: every registered error code is explained in docs/errors.md, every
`musingly` command is in the README's table, every MUSINGLY_* variable the code reads is in its
configuration table, and every relative link in the README and docs/ leads to a file of the repository."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import musingly_pipeline.errors  # noqa: F401  (registers the pipeline's codes beside the bundle's)
from musingly_core.report import CODES
from musingly_pipeline.cli import build_parser
from musingly_pipeline_tests.conftest import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end >= 0 else len(text)]


def test_every_registered_code_is_explained_in_docs_errors():
    table_rows = {m.group(1) for m in re.finditer(r"^\| `([A-Z][A-Z0-9_]+)` \|", (PROJECT_ROOT / "docs" / "errors.md")
                                                   .read_text(encoding="utf-8"), re.MULTILINE)}
    assert sorted(set(CODES) - table_rows) == []


def test_every_command_is_in_the_readmes_command_table():
    table = _section(README.read_text(encoding="utf-8"), "## Command line")
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    names = []
    for name, parser in commands.choices.items():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        names += [f"musingly {name} {sub}" for sub in nested[0].choices] if nested else [f"musingly {name}"]
    assert [name for name in names if f"`{name}" not in table] == []


def test_every_variable_the_code_reads_is_in_the_readmes_configuration():
    table = _section(README.read_text(encoding="utf-8"), "## Configuration")
    sources = [*(PROJECT_ROOT / "musingly_pipeline").rglob("*.py"), PROJECT_ROOT / "musingly_pipeline_tests" / "conftest.py"]
    variables = {name for path in sources for name in re.findall(r"MUSINGLY_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8"))}
    assert sorted(name for name in variables if f"`{name}`" not in table) == []


@pytest.mark.parametrize("page", [README, PROJECT_ROOT / "bench" / "README.md", *DOCS],
                         ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve()
        if not linked.exists() or (anchor and anchor not in _anchors(linked)):
            broken.append(target)
    assert broken == []


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
