"""Where things live. Paths come from the package location, never from the cwd.

Every notebook and command resolves its folders through :func:`project_root`, so a
notebook runs the same from JupyterLab, papermill, nbval or any working directory.
The root can be overridden with the ``IMR_PROJECT_ROOT`` environment variable
(used when the package is installed outside the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCES_DIR = PACKAGE_DIR / "resources"


def project_root() -> Path:
    """Return the compendium's root folder (the one holding ``pyproject.toml``)."""
    env = os.environ.get("IMR_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    return PACKAGE_DIR.parent


def raw_dir() -> Path:
    """Default folder of the raw exports (``data/raw``)."""
    return project_root() / "data" / "raw"


def processed_dir() -> Path:
    """Default folder of the processed data (``data/processed``)."""
    return project_root() / "data" / "processed"


def private_outputs_dir() -> Path:
    """Where runs on private data write by default (``outputs/private``, git-ignored)."""
    return project_root() / "outputs" / "private"


def tables_dir() -> Path:
    """Default folder of the exported tables (``tables``)."""
    return project_root() / "tables"


def figures_dir() -> Path:
    """Default folder of the figures (``figures``)."""
    return project_root() / "figures"


def bundles_dir() -> Path:
    """Default folder of the departments' aggregate bundles pooled by notebook 08 (``data/bundles``)."""
    return project_root() / "data" / "bundles"


def reports_dir() -> Path:
    """Default folder of the executed notebooks and their HTML (``reports``)."""
    return project_root() / "reports"


def notebooks_dir() -> Path:
    """Folder of the numbered notebooks."""
    return project_root() / "notebooks"


def resolve(path: str | os.PathLike | None, default: Path) -> Path:
    """Resolve a user-supplied path; relative paths are taken from the project root.

    ``None`` or an empty string gives ``default``. Resolving relative paths against the
    root (not the cwd) keeps notebook parameters meaningful whatever the kernel's cwd.
    """
    if path is None or str(path) == "":
        return default
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = project_root() / p
    return p.resolve()


def display_path(path: str | os.PathLike) -> str:
    """A path as shown in notebook outputs: relative to the project root when inside it.

    Absolute paths differ between machines, so they must not appear in committed outputs.
    """
    p = Path(path).resolve()
    try:
        return p.relative_to(project_root()).as_posix()
    except ValueError:
        return f"<outside the compendium>/{p.name}"
