"""What a tenant reads names no rule number (issue 23): the portal's words and pages, the command
line's help and output, and the messages the API answers or rejects with. The reason codes
(`contract_preparing`, …), the code's comments and docstrings, the OpenAPI and AsyncAPI
documents and docs/ keep the link to R1–R12."""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from services.cli.app import app
from services.portal import i18n
from shared.contracts import labels

ROOT = Path(__file__).resolve().parents[2]
RULE = re.compile(r"\bR(?:1[0-2]|[1-9])\b")

# Where the texts tenants read are written: the portal and the CLI, and what the API answers
# (intake, the status service's rules and views, the request schema, the HTTP layer).
SOURCES = ("services/portal", "services/cli", "services/intake", "services/status/domain",
           "services/status/api.py", "services/status/views.py", "services/status/cursor.py",
           "shared/contracts/applications.py", "shared/contracts/answers.py", "shared/contracts/reasons.py",
           "shared/contracts/limits.py", "shared/http")
# Documentation of the contract, not answers: the OpenAPI document's descriptions (docs keep the rules' names).
DOCUMENTATION = {"shared/http/openapi.py"}
DOC_KEYS = {"summary", "description"}


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _documentation(tree: ast.AST) -> set[int]:
    """Strings that only describe the API in its OpenAPI document: `summary=…`, `description=…`, and
    the values of such keys in a dict (the request examples)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in DOC_KEYS:
            found.update(id(inner) for inner in ast.walk(node.value))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in DOC_KEYS:
                    found.update(id(inner) for inner in ast.walk(value))
    return found


def _code_strings() -> Iterator[tuple[str, int, str]]:
    """Every string literal (f-strings' literal parts too) of the sources, but docstrings."""
    for source in SOURCES:
        path = ROOT / source
        for file in sorted([path] if path.is_file() else path.rglob("*.py")):
            name = str(file.relative_to(ROOT))
            if name in DOCUMENTATION:
                continue
            tree = ast.parse(file.read_text(encoding="utf-8"))
            skipped = _docstrings(tree) | _documentation(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
                    yield name, node.lineno, node.value


def _cli_help(command: Any, path: str = "arcserve") -> Iterator[tuple[str, str]]:
    """Every help text of the command tree (typer's own click: read by attribute, not by class)."""
    for text in (command.help, command.short_help, command.epilog):
        if text:
            yield path, text
    for param in command.params:
        yield f"{path} {param.name}", getattr(param, "help", None) or ""
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _cli_help(sub, f"{path} {name}")


def test_the_rule_pattern_finds_rule_numbers_and_nothing_else() -> None:
    assert RULE.search("完了予定(R12)") and RULE.search("(R8, R4)") and RULE.search("R1: a product")
    assert not RULE.search("R13") and not RULE.search("AES-256-GCM") and not RULE.search("ROUTER1")


def test_the_portals_words_name_no_rule() -> None:
    texts = [(f"{table}[{key}]", text) for table, catalogue in (("_TEXT", i18n._TEXT), ("_REASONS", i18n._REASONS))
             for key, pair in catalogue.items() for text in pair]
    texts += [(f"labels.{name}", str(label)) for name in dir(labels) if name.isupper()
              for label in getattr(labels, name).values()]
    assert len(texts) > 100
    assert [(where, text) for where, text in texts if RULE.search(text)] == []


def test_the_portals_pages_name_no_rule() -> None:
    templates = sorted((ROOT / "services/portal/templates").rglob("*.html"))
    assert templates
    found = []
    for template in templates:
        shown = re.sub(r"\{#.*?#\}", "", template.read_text(encoding="utf-8"), flags=re.S)  # Jinja comments
        found += [(template.name, line) for line in shown.splitlines() if RULE.search(line)]
    assert found == []


def test_the_command_lines_help_names_no_rule() -> None:
    helps = list(_cli_help(typer.main.get_command(app)))
    assert any(where.startswith("arcserve apply cancel") for where, _ in helps)
    assert any("Hypervisor keys go all together" in text for _, text in helps)
    assert [(where, text) for where, text in helps if RULE.search(text)] == []


def test_what_the_api_and_the_cli_say_names_no_rule() -> None:
    """Rejection reasons' messages, validation problems, error bodies, the CLI's output and the
    portal's: every literal they are made of. Comments and docstrings keep the rules' names."""
    strings = list(_code_strings())
    assert any("hypervisor keys can only be cancelled all together" in text for _, _, text in strings)
    assert [(name, line, text) for name, line, text in strings if RULE.search(text)] == []


@pytest.mark.parametrize("code, rule", [("contract_exists", "R2"), ("contract_preparing", "R3"),
                                        ("change_in_progress", "R6"), ("contract_cancelled", "R10")])
def test_the_codes_keep_the_link_to_the_rules(code: str, rule: str) -> None:
    """The reason codes are what ties a refusal to its rule, in the code and in the docs."""
    reasons = (ROOT / "shared/contracts/reasons.py").read_text(encoding="utf-8")
    assert re.search(rf'"{code}"\s*#\s*{rule}\b', reasons)
    assert re.search(rf"`{code}`", (ROOT / "docs/architecture.md").read_text(encoding="utf-8"))
