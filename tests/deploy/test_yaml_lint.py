"""Every YAML file of the deployment passes yamllint (rules: deploy/.yamllint)."""

from __future__ import annotations

from pathlib import Path

import pytest
from yamllint import linter
from yamllint.config import YamlLintConfig

from .conftest import COMPOSE_FILE, DEPLOY, REPO

CONFIG_FILE = DEPLOY / ".yamllint"
YAML_FILES = sorted(
    [COMPOSE_FILE, CONFIG_FILE, *DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")],
    key=str,
)


def lint(path: Path, config: YamlLintConfig) -> list[str]:
    return [
        f"{path.name}:{problem.line}:{problem.column} {problem.level} {problem.message}"
        for problem in linter.run(path.read_text(), config, str(path))
    ]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_file_passes_yamllint(path: Path) -> None:
    assert lint(path, YamlLintConfig(file=str(CONFIG_FILE))) == []


def test_the_lint_rules_catch_a_problem(tmp_path: Path) -> None:
    """The configuration is not so lax that it accepts anything."""
    sloppy = tmp_path / "sloppy.yaml"
    sloppy.write_text("key: value   \nkey: again\n")
    problems = lint(sloppy, YamlLintConfig(file=str(CONFIG_FILE)))
    assert any("trailing spaces" in problem for problem in problems)
    assert any("duplication of key" in problem for problem in problems)
