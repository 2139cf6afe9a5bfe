"""Repository layout facts: the conda environment mirrors pyproject, CI calls the README's test command."""

from __future__ import annotations

import re
import tomllib

import yaml


def test_conda_env_mirrors_pyproject(repo_root):
    with open(repo_root / "pyproject.toml", "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    with open(repo_root / "envs" / "softdisplaced.yaml") as fh:
        env = yaml.safe_load(fh)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pip = [p for p in pip if not p.startswith("-e")]
    assert sorted(pip) == sorted(deps)


def test_readme_has_exactly_two_setup_commands_and_ci_calls_test(repo_root):
    readme = (repo_root / "README.md").read_text()
    block = re.search(r"<!-- commands -->(.*?)<!-- /commands -->", readme, re.S).group(1)
    commands = [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.strip().startswith(("```", "#"))]
    assert commands == ["make run", "make test"]
    ci = (repo_root / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\b", ci, re.M)


def test_each_rule_file_is_one_stage(repo_root):
    rules = sorted(p.name for p in (repo_root / "rules").glob("*.smk"))
    for stage in ["generate.smk", "process.smk", "train.smk", "yields.smk", "limits.smk", "report.smk"]:
        assert stage in rules
