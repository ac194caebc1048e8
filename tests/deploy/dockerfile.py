"""A small reader of deploy/Dockerfile for the checks: instructions grouped by build stage,
with build-argument defaults declared before the first FROM resolved."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV assignments of the stage (``KEY=value`` form)."""
        values: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for key, value in re.findall(r"(\w+)=(\S+)", arguments):
                values[key] = value
        return values


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages of a Dockerfile."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        arguments = arguments.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arguments, flags=re.IGNORECASE)
            assert match is not None, line
            base = re.sub(
                r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), match.group(1)
            )
            stages.append(Stage(base=base, name=match.group(2)))
        elif not stages:
            if keyword == "ARG":
                name, _, default = arguments.partition("=")
                global_args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return global_args, stages


def workspace_members(repo: Path) -> list[Path]:
    """Directories of the uv workspace's members (globs in the root pyproject expanded)."""
    config = tomllib.loads((repo / "pyproject.toml").read_text())
    members: list[Path] = []
    for pattern in config["tool"]["uv"]["workspace"]["members"]:
        members.extend(sorted(p.parent for p in repo.glob(f"{pattern}/pyproject.toml")))
    return members


def workspace_dependencies(repo: Path, package: str) -> set[str]:
    """Source directories of ``package`` and of every workspace package it needs, per uv.lock."""
    lock = tomllib.loads((repo / "uv.lock").read_text())
    editable = {
        p["name"]: p["source"]["editable"] for p in lock["package"] if "editable" in p["source"]
    }
    requires = {p["name"]: [d["name"] for d in p.get("dependencies", [])] for p in lock["package"]}
    found: set[str] = set()
    pending = [package]
    while pending:
        name = pending.pop()
        if name in found or name not in editable:
            continue
        found.add(name)
        pending.extend(requires.get(name, []))
    return {editable[name] for name in found}
