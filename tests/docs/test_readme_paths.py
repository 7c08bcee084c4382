"""Every path the README cites exists in a clone, or is made by a named command.

A fresh clone has what git tracks. Everything else the README names must be an output of a
dvc.yaml stage (``dvc repro`` / ``make run`` make it) or one of the run-time paths below, each
with the command that creates it (and that command must appear in the README too).
"""
from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXTENSIONS = ("py", "md", "json", "yaml", "yml", "csv", "png", "html", "safetensors", "toml",
              "jpg", "lock", "sh", "txt", "db")
# run-time paths -> the command (named in the README) that creates them
RUNTIME = {
    ".venv/": "make test",
    "~/.cache/vitdet-mlops/wheels": "make setup",
    "mlruns/mlflow.db": "make run",
    ".dvc-remote/": "make run",
    ".prefect/": "servers.sh up",
    ".dvc/site-cache": "make run",
    "runs/finetune/final/*": "make run",
    "exports/vitdet-ssdlite.onnx": "python -m components.export",
}
NOT_PATHS = {"pipeline/local", "pipeline/nightly", "pipeline/gpu-cluster"}  # Prefect deployments


def _tokens(text: str) -> set[str]:
    out = set()
    for tok in re.findall(r"`([^`\s]+)`", text):
        if tok in NOT_PATHS or any(c in tok for c in ":|=@$\"'") or tok.startswith("-"):
            continue
        if "/" in tok or tok.rsplit(".", 1)[-1] in EXTENSIONS:
            out.add(tok)
    return out


def _expand(tok: str) -> list[str]:
    """``a/{b,c}.json`` -> both; ``<name>`` placeholders -> ``*``."""
    tok = re.sub(r"<[^>]+>", "*", tok)
    m = re.search(r"\{([^}]*)\}", tok)
    if not m:
        return [tok]
    return [x for part in m.group(1).split(",") for x in _expand(tok[:m.start()] + part +
                                                                   tok[m.end():])]


def _dvc_outputs() -> list[str]:
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    paths = []
    for entry in doc.get("metrics", []) + [next(iter(p)) if isinstance(p, dict) else p
                                           for p in doc.get("plots", [])]:
        paths.append(entry)
    stages = []
    for stage in doc["stages"].values():
        if "foreach" not in stage:
            stages.append(stage)
            continue
        items = stage["foreach"]
        for item in (items.values() if isinstance(items, dict) else items):
            text = yaml.safe_dump(stage["do"])  # ${item.key} -> the item's value
            stages.append(yaml.safe_load(re.sub(
                r"\$\{item\.(\w+)\}", lambda m: str(item[m.group(1)]), text)))
    for stage in stages:
        for kind in ("outs", "metrics", "plots"):
            for item in stage.get(kind, []):
                paths.append(next(iter(item)) if isinstance(item, dict) else item)
    return [p.rstrip("/") for p in paths]


def _known() -> tuple[set[str], list[str]]:
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split()
    tracked = set(files)
    for f in files:
        parts = f.split("/")
        tracked.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return tracked, _dvc_outputs()


# bare file names the README uses inside a folder it names; the folder a stage makes
INSIDE = {"manifest.json": "data/dataset", "validated.json": "results/validation",
          "result.json": "runs/experiments (the experiment runner's job folders)"}


def _found(path: str, tracked: set[str], produced: list[str]) -> bool:
    path = path.rstrip("/")
    if "/" not in path:  # a bare file name: some tracked or produced file has it
        return (path in INSIDE or any(t.rsplit("/", 1)[-1] == path for t in tracked)
                or any(p.rsplit("/", 1)[-1] == path for p in produced))
    if any(fnmatch.fnmatch(t, path) for t in tracked):
        return True
    parts = path.split("/")
    for p in produced:  # the path is a stage output or lies inside one
        q = p.split("/")
        if len(parts) >= len(q) and fnmatch.fnmatch(p, "/".join(parts[:len(q)])):
            return True
        if fnmatch.fnmatch(p, path) or fnmatch.fnmatch("/".join(q[:len(parts)]), path):
            return True  # the output itself, or a folder it lies in
    return False


def test_readme_paths_exist_or_are_produced():
    text = (ROOT / "README.md").read_text()
    tracked, produced = _known()
    missing = []
    for tok in sorted(_tokens(text)):
        if tok in RUNTIME:
            assert RUNTIME[tok] in text, f"README cites {tok} but not `{RUNTIME[tok]}`, which makes it"
            continue
        for path in _expand(tok):
            if not _found(path, tracked, produced):
                missing.append(tok)
    assert not missing, (f"README names paths that neither a clone has nor a dvc.yaml stage "
                         f"makes: {missing} (commit them, fix the README, or add the command "
                         "that creates them to RUNTIME here)")


def test_the_check_catches_a_missing_path():
    tracked, produced = _known()
    assert _found("components/models/backbones/base.py", tracked, produced)
    assert _found("results/evaluate/plots/predictions.png", tracked, produced)  # a stage out
    assert _found("reports/*/report.md", tracked, produced)
    assert not _found("reports/nope/report.md", tracked, produced)
    assert _found("report.md", tracked, produced) and not _found("nope.md", tracked, produced)
    assert not _found("components/no_such_module.py", tracked, produced)
    assert _tokens("see `docs/x.md` and `model.size` and `pipeline/local`") == {"docs/x.md"}
