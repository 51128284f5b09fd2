"""The colophon of a run: what produced a report, from which data, with which software.

Every report of ``python -m imr_analysis run`` ends with it, and ``reports/colophon.json``
holds the same facts: the git commit (``+dirty`` with uncommitted changes), the Python
version and the installed versions of the key packages (:mod:`importlib.metadata`), the
parameters, the data mode, the disclosure profile and the SHA-256 of every raw input.
No timestamps: two runs on the same commit and data give the same colophon.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from imr_analysis import disclosure, paths

#: Distributions whose versions every colophon reports.
KEY_PACKAGES = ("pandas", "numpy", "scipy", "pingouin", "statsmodels", "matplotlib", "seaborn", "pandera",
                "papermill", "nbformat", "nbconvert", "ipykernel", "pyarrow", "python-stdnum", "imr_analysis")
NOT_A_GIT_CHECKOUT = "not a git checkout"


def git_revision(root: str | os.PathLike) -> str:
    """The commit checked out at ``root``, ``+dirty`` if ``git status`` shows changes."""
    def git(*args):
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=root, capture_output=True, text=True,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    try:
        head = git("rev-parse", "--verify", "HEAD")
    except OSError:  # no such folder, or git not installed
        return NOT_A_GIT_CHECKOUT
    if head.returncode != 0 or not head.stdout.strip():
        return NOT_A_GIT_CHECKOUT
    return head.stdout.strip() + ("+dirty" if git("status", "--porcelain").stdout.strip() else "")


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """The installed version of each distribution (``"not installed"`` if absent)."""
    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"
    return {name: version(name) for name in names}


def sha256_files(directory: str | os.PathLike) -> dict[str, str]:
    """``{relative POSIX path: SHA-256}`` of every file under ``directory``, sorted; hidden
    files and folders (``.gitkeep``) are not inputs."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"data folder not found: {directory}")
    files = {p.relative_to(directory).as_posix(): p for p in directory.rglob("*") if p.is_file()}
    return {rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in sorted(files.items())
            if not any(part.startswith(".") for part in rel.split("/"))}


def disclosure_facts(data_mode: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The disclosure profile the notebooks resolve from the parameters, and whether it is
    weaker than the data mode's default (a choice a reader of the outputs must see)."""
    requested = parameters.get("disclosure_profile", "auto")
    allow = bool(parameters.get("allow_weaker_profile", False))
    try:
        profile = disclosure.resolve_profile(requested, data_mode, allow_weaker_profile=allow)
    except Exception as err:  # noqa: BLE001 - the notebooks stop on the same error; record it
        return {"requested": requested, "profile": None, "error": str(err)}
    return {"requested": requested, "profile": profile.name, "profiles_version": disclosure.profiles_version(),
            "weaker_than_default": bool(profile.weaker_than_default), "allow_weaker_profile": allow}


def build_colophon(*, data_dir: str | os.PathLike, data_mode: str, parameters: Mapping[str, Any] | None = None,
                   root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Collect the facts of a run (git is asked at ``root``, default the project root).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = pathlib.Path(tmp, "a.csv").write_bytes(b"abc")
    ...     c = build_colophon(data_dir=tmp, data_mode="synthetic", root=tmp)
    >>> c["git_commit"], c["raw_inputs"]["a.csv"][:8], c["data_dir"], c["disclosure"]["profile"]
    ('not a git checkout', 'ba7816bf', '.', 'none')
    """
    root = Path(root or paths.project_root()).resolve()
    data_dir = Path(data_dir).resolve()
    return {
        "git_commit": git_revision(root),
        "python": platform.python_version(),
        "platform": sys.platform,
        "packages": package_versions(),
        "data_mode": data_mode,
        "data_dir": data_dir.relative_to(root).as_posix() if data_dir.is_relative_to(root) else str(data_dir),
        "raw_inputs": sha256_files(data_dir),
        "parameters": dict(parameters or {}),
        "disclosure": disclosure_facts(data_mode, dict(parameters or {})),
    }


def _disclosure_text(facts: Mapping[str, Any] | None) -> str:
    if not facts:
        return "not recorded"
    if facts.get("profile") is None:
        return f"profile {facts.get('requested')!r} refused: {facts.get('error', '')}"
    text = f"profile {facts['profile']} (profiles file version {facts.get('profiles_version')})"
    return text + ("; WEAKER than the default for this data, explicitly allowed" if facts.get("weaker_than_default")
                   else "")


#: Parameters naming folders of the machine a run ran on: not in a colophon meant to be shared.
FOLDER_PARAMETERS = ("raw_dir", "processed_dir", "tables_dir", "figures_dir", "bundles_dir")


def shareable_colophon(colophon: Mapping[str, Any]) -> dict:
    """The run's colophon without the folders of its machine (:data:`FOLDER_PARAMETERS`, ``data_dir``): what a
    bundle and the replication summary carry."""
    out = {k: v for k, v in colophon.items() if k != "data_dir"}
    out["parameters"] = {k: v for k, v in colophon.get("parameters", {}).items() if k not in FOLDER_PARAMETERS}
    out["notebooks"] = {nb: {k: v for k, v in params.items() if k not in FOLDER_PARAMETERS}
                        for nb, params in colophon.get("notebooks", {}).items()}
    return out


def colophon_markdown(colophon: Mapping[str, Any], parameters: Mapping[str, Any] | None = None,
                      into: str = "this notebook") -> str:
    """The ``## Colophon`` section closing a report: facts, the parameters (default the run's)
    injected ``into`` what it reports on, and the SHA-256 of each raw input."""
    def esc(text):
        return str(text).replace("|", "\\|")

    params = colophon.get("parameters", {}) if parameters is None else parameters
    packages = ", ".join(f"{k} {v}" for k, v in colophon.get("packages", {}).items())
    folder = f"`{esc(colophon['data_dir'])}`" if "data_dir" in colophon else "not shown (a report to share)"
    lines = ["## Colophon", "", "| | |", "|---|---|",
             f"| Compendium commit | `{esc(colophon['git_commit'])}` |",
             f"| Data mode | {esc(colophon['data_mode'])} |",
             f"| Raw data folder | {folder} |",
             f"| Disclosure control | {esc(_disclosure_text(colophon.get('disclosure')))} |",
             f"| Python | {colophon['python']} ({colophon.get('platform', '')}) |",
             f"| Packages | {esc(packages)} |", ""]
    if params:
        lines += [f"Parameters injected into {into}:", "", "```python",
                  *(f"{name} = {value!r}" for name, value in params.items()), "```", ""]
    else:
        lines += ["Parameters: none injected (the notebook's own defaults).", ""]
    raw = colophon.get("raw_inputs", {})
    if not raw:
        return "\n".join([*lines, "Raw input files: none found."])
    return "\n".join([*lines, "Raw input files:", "", "| file | SHA-256 |", "|---|---|",
                      *(f"| `{esc(f)}` | `{h}` |" for f, h in raw.items())])


def write_colophon_json(colophon: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a colophon as indented, key-sorted UTF-8 JSON ending in a newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(colophon, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")
    return path
