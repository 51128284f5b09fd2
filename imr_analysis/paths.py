"""Where things live. Paths come from the package location, never from the cwd.

Every notebook and command resolves its folders through :func:`project_root`, so a
notebook runs the same from JupyterLab, papermill, nbval or any working directory.
The root can be overridden with the ``IMR_PROJECT_ROOT`` environment variable
(used when the package is installed outside the repository).

The committed record (``data/processed``, ``tables``, ``figures``) is written only on purpose: by
the runner (``make reproduce``, ``make notebooks``), which sets :data:`OUTPUT_ENV` to ``record`` in
its kernels. A notebook run any other way writes under ``scratch/`` (git-ignored) and reads what
such a run wrote there, else the record (:func:`output_folder`, :func:`input_folder`); folders
given as parameters are used as given.
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


def reports_dir() -> Path:
    """Default folder of the executed notebooks and their HTML (``reports``)."""
    return project_root() / "reports"


def notebooks_dir() -> Path:
    """Folder of the numbered notebooks."""
    return project_root() / "notebooks"


OUTPUT_ENV = "IMR_OUTPUT"  #: "record" in the runner's kernels: the default folders are the committed record
RECORD_LINE = ("outputs: the committed record (data/processed, tables, figures), written on purpose: a run of "
               "`make reproduce` or `make notebooks`")
SCRATCH_LINE = ("outputs: scratch/ (git-ignored), not the committed record, which only `make reproduce` and "
                "`make notebooks` write; inputs from scratch/ where such a run wrote them, else from the record")


def recording() -> bool:
    """Whether this run writes the committed record by default (the runner's kernels)."""
    return os.environ.get(OUTPUT_ENV, "") == "record"


def scratch_dir() -> Path:
    """Where a run outside the runner writes by default (``scratch``, git-ignored)."""
    return project_root() / "scratch"


def is_given(path) -> bool:
    """Whether a folder parameter was given (not ``None`` nor ``""``)."""
    return path is not None and str(path) != ""


def output_folder(path, record: Path) -> Path:
    """Where a run writes: ``path`` if given (:func:`resolve`); else ``record`` when :func:`recording`,
    else its twin under :func:`scratch_dir` (``scratch/tables`` for ``tables``)."""
    if is_given(path) or recording():
        return resolve(path, record)
    return scratch_dir() / record.relative_to(project_root())


def input_folder(path, record: Path, files=()) -> Path:
    """Where a run reads: ``path`` if given; else, outside :func:`recording`, the twin of ``record``
    under :func:`scratch_dir` when it holds every one of ``files``; else ``record``."""
    twin = scratch_dir() / record.relative_to(project_root())
    if not is_given(path) and not recording() and files and all((twin / f).exists() for f in files):
        return twin
    return resolve(path, record)


def output_line(given=()) -> str:
    """The first line a notebook prints: where it writes. ``given``: for each of its output folders,
    whether it was given as a parameter."""
    default = RECORD_LINE if recording() else SCRATCH_LINE
    if given and all(given):
        return "outputs: the folders given as parameters"
    return f"outputs: the folders given as parameters; the others: {default[9:]}" if any(given) else default


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
