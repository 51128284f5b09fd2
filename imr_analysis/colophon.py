"""The colophon of a run: what produced a report, from which data, with which software.

Every report written by ``python -m imr_analysis run`` ends with a colophon: the
compendium's git commit (``+dirty`` when the working tree has uncommitted changes,
``not a git checkout`` otherwise), the Python version and the versions of the key
packages, the parameters used, the data mode (``synthetic`` or ``private``) and the
SHA-256 of every raw input file. The same facts are written to ``colophon.json``.

The module is cheap to import (standard library only) and never imports the
packages whose versions it reports (it reads their installed metadata).
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

__all__ = [
    "KEY_PACKAGES",
    "NOT_A_GIT_CHECKOUT",
    "build_colophon",
    "colophon_markdown",
    "git_revision",
    "package_versions",
    "sha256_file",
    "sha256_files",
    "write_colophon_json",
]

#: Distributions whose versions every colophon reports.
KEY_PACKAGES: tuple[str, ...] = (
    "pandas",
    "numpy",
    "scipy",
    "pingouin",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "pandera",
    "papermill",
    "nbformat",
    "nbconvert",
    "ipykernel",
    "pyarrow",
    "imr_analysis",
)

#: What :func:`git_revision` returns outside a git working tree.
NOT_A_GIT_CHECKOUT = "not a git checkout"

_CHUNK = 1 << 20


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # --no-optional-locks: a read-only status must not touch the index of the repository.
    return subprocess.run(
        ["git", "--no-optional-locks", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
    )


def git_revision(root: str | os.PathLike | None = None) -> str:
    """Return the git commit of the working tree at ``root``.

    Parameters
    ----------
    root : str or path-like, optional
        Folder inside the working tree; default the compendium's project root.

    Returns
    -------
    str
        The 40-hex commit id, suffixed ``+dirty`` when ``git status`` reports changes
        (tracked or untracked), or ``"not a git checkout"`` when ``root`` is not in a
        git working tree or git is not installed. Never raises for a missing repository.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     git_revision(tmp)
    'not a git checkout'
    """
    if root is None:
        from imr_analysis.paths import project_root

        root = project_root()
    root = Path(root)
    if not root.is_dir():
        return NOT_A_GIT_CHECKOUT
    try:
        head = _git(["rev-parse", "--verify", "HEAD"], root)
    except OSError:  # git not installed
        return NOT_A_GIT_CHECKOUT
    commit = head.stdout.strip()
    if head.returncode != 0 or not commit:
        return NOT_A_GIT_CHECKOUT
    status = _git(["status", "--porcelain"], root)
    if status.returncode == 0 and status.stdout.strip():
        commit += "+dirty"
    return commit


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """Return the installed version of each distribution, ``"not installed"`` if absent.

    Parameters
    ----------
    names : iterable of str
        Distribution names (as on PyPI); default :data:`KEY_PACKAGES`.

    Returns
    -------
    dict
        ``{name: version}`` in the order given. Packages are not imported.

    Examples
    --------
    >>> package_versions(["no-such-distribution-xyz"])
    {'no-such-distribution-xyz': 'not installed'}
    """
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def sha256_file(path: str | os.PathLike) -> str:
    """Return the SHA-256 hex digest of a file's bytes (read in 1 MiB chunks).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = pathlib.Path(tmp, "x.txt")
    ...     _ = p.write_bytes(b"abc")
    ...     sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_files(directory: str | os.PathLike) -> dict[str, str]:
    """Hash every file under ``directory`` (recursively).

    Hidden files and folders (name starting with ``.``, e.g. ``.gitkeep``) are not
    inputs and are skipped.

    Parameters
    ----------
    directory : str or path-like
        The raw-data folder.

    Returns
    -------
    dict
        ``{relative POSIX path: SHA-256 hex digest}`` sorted by path.

    Raises
    ------
    NotADirectoryError
        If ``directory`` is not an existing folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = pathlib.Path(tmp, "b.csv").write_text("")
    ...     _ = pathlib.Path(tmp, ".gitkeep").write_text("")
    ...     list(sha256_files(tmp))
    ['b.csv']
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"data folder not found: {directory}")
    files = []
    for p in directory.rglob("*"):
        rel = p.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        files.append((rel.as_posix(), p))
    return {rel: sha256_file(p) for rel, p in sorted(files)}


def _display_path(path: Path, root: Path) -> str:
    """A path relative to the project root when it lies inside it, else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def build_colophon(
    *,
    data_dir: str | os.PathLike,
    data_mode: str,
    parameters: Mapping[str, Any] | None = None,
    root: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Collect the facts of a run.

    Parameters
    ----------
    data_dir : str or path-like
        Folder of the raw exports; every file in it is hashed.
    data_mode : str
        ``"synthetic"`` or ``"private"`` (as reported by the data-mode detection).
    parameters : mapping, optional
        Parameters of the run (JSON-serialisable values).
    root : str or path-like, optional
        Project root (git is asked there; ``data_dir`` is shown relative to it when
        inside it). Default :func:`imr_analysis.paths.project_root`.

    Returns
    -------
    dict
        Keys ``git_commit``, ``python``, ``platform``, ``packages``, ``data_mode``,
        ``data_dir``, ``raw_inputs`` (``{file: sha256}``) and ``parameters``. No
        timestamps: two runs on the same commit and data give the same colophon.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = pathlib.Path(tmp, "a.csv").write_bytes(b"abc")
    ...     c = build_colophon(data_dir=tmp, data_mode="synthetic", root=tmp)
    >>> c["git_commit"], c["raw_inputs"]["a.csv"][:8], c["data_dir"]
    ('not a git checkout', 'ba7816bf', '.')
    """
    if root is None:
        from imr_analysis.paths import project_root

        root = project_root()
    root = Path(root)
    return {
        "git_commit": git_revision(root),
        "python": platform.python_version(),
        "platform": sys.platform,
        "packages": package_versions(),
        "data_mode": data_mode,
        "data_dir": _display_path(Path(data_dir), root),
        "raw_inputs": sha256_files(data_dir),
        "parameters": dict(parameters or {}),
        "disclosure": disclosure_facts(data_mode, parameters),
    }


def disclosure_facts(data_mode: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The disclosure profile a run applies, as the notebooks resolve it.

    Records the profile's name, the version of the profiles file, and whether a profile
    weaker than the data mode's default was explicitly allowed (a choice a reader of the
    outputs must be able to see).

    Examples
    --------
    >>> disclosure_facts("private", {})["profile"]
    'opensafely'
    >>> facts = disclosure_facts("private", {"disclosure_profile": "none", "allow_weaker_profile": True})
    >>> facts["profile"], facts["weaker_than_default"]
    ('none', True)
    """
    from imr_analysis import disclosure

    params = dict(parameters or {})
    requested = params.get("disclosure_profile", "auto")
    allow = bool(params.get("allow_weaker_profile", False))
    mode = data_mode if data_mode in ("synthetic", "private") else "private"
    try:
        prof = disclosure.resolve_profile(requested, mode, allow_weaker_profile=allow)
    except Exception as err:  # the notebooks stop on the same error; record it
        return {"requested": requested, "profile": None, "error": str(err)}
    return {
        "requested": requested,
        "profile": prof.name,
        "profiles_version": disclosure.profiles_version(),
        "weaker_than_default": bool(getattr(prof, "weaker_than_default", False)),
        "allow_weaker_profile": allow,
    }


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def colophon_markdown(
    colophon: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
) -> str:
    """Render a colophon as the markdown of a report's final cell.

    Parameters
    ----------
    colophon : mapping
        As returned by :func:`build_colophon`.
    parameters : mapping, optional
        The parameters injected into this notebook (default: the run's parameters).
        Empty means the notebook ran with its own defaults.

    Returns
    -------
    str
        A ``## Colophon`` section: a fact table, the parameters and a table of the
        SHA-256 digests of the raw inputs.

    Examples
    --------
    >>> c = {"git_commit": "not a git checkout", "python": "3.11.7", "platform": "linux",
    ...      "packages": {"pandas": "3.1.1"}, "data_mode": "synthetic", "data_dir": "data/raw",
    ...      "raw_inputs": {"a.csv": "ab" * 32}, "parameters": {}}
    >>> md = colophon_markdown(c, {"alpha": 0.01})
    >>> "| Data mode | synthetic |" in md, "alpha = 0.01" in md
    (True, True)
    """
    params = colophon.get("parameters", {}) if parameters is None else parameters
    packages = ", ".join(f"{k} {v}" for k, v in colophon.get("packages", {}).items())
    lines = [
        "## Colophon",
        "",
        "| | |",
        "|---|---|",
        f"| Compendium commit | `{_md_escape(colophon['git_commit'])}` |",
        f"| Data mode | {_md_escape(colophon['data_mode'])} |",
        f"| Raw data folder | `{_md_escape(colophon['data_dir'])}` |",
        f"| Disclosure control | {_md_escape(_disclosure_text(colophon.get('disclosure')))} |",
        f"| Python | {colophon['python']} ({colophon.get('platform', '')}) |",
        f"| Packages | {_md_escape(packages)} |",
        "",
    ]
    if params:
        lines += ["Parameters injected into this notebook:", "", "```python"]
        lines += [f"{name} = {value!r}" for name, value in params.items()]
        lines += ["```", ""]
    else:
        lines += ["Parameters: none injected (the notebook's own defaults).", ""]
    raw = colophon.get("raw_inputs", {})
    if raw:
        lines += ["Raw input files:", "", "| file | SHA-256 |", "|---|---|"]
        lines += [f"| `{_md_escape(f)}` | `{h}` |" for f, h in raw.items()]
    else:
        lines.append("Raw input files: none found.")
    return "\n".join(lines)


def _disclosure_text(facts: Mapping[str, Any] | None) -> str:
    if not facts:
        return "not recorded"
    if facts.get("profile") is None:
        return f"profile {facts.get('requested')!r} refused: {facts.get('error', '')}"
    text = f"profile {facts['profile']} (profiles file version {facts.get('profiles_version')})"
    if facts.get("weaker_than_default"):
        text += "; WEAKER than the default for this data, explicitly allowed"
    return text


def write_colophon_json(colophon: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a colophon as pretty, key-sorted UTF-8 JSON ending in a newline.

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = write_colophon_json({"data_mode": "synthetic"}, pathlib.Path(tmp, "c.json"))
    ...     json.loads(p.read_text())
    {'data_mode': 'synthetic'}
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(colophon, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    path.write_text(text + "\n", encoding="utf-8")
    return path
