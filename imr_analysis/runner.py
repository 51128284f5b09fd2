"""One-command reproduction: execute the numbered notebooks in order.

``python -m imr_analysis run`` executes ``notebooks/NN_*.ipynb`` (two-digit prefix) in
order through the papermill Python API, in this one Python process (one kernel per
notebook), and writes for each notebook the executed copy ``reports/NN_name.ipynb``
and its HTML rendering ``reports/NN_name.html``. Each report ends with a colophon
(:mod:`imr_analysis.colophon`), also written to ``reports/colophon.json``.

Options
-------
``--params FILE.yaml``      parameters from a YAML mapping
``-p NAME VALUE``           one parameter (repeatable); VALUE is read as YAML (``5``,
                            ``0.01``, ``true``, ``"[CMHC, SerD]"``); wins over --params
``--only 02,05``            run only these notebooks (by their two-digit number)
``--data-dir DIR``          raw exports (injected as ``raw_dir``)
``--output-dir DIR``        everything goes under DIR: ``DIR/data/processed``,
                            ``DIR/tables``, ``DIR/figures``, ``DIR/reports``
``--notebooks-dir DIR``     the notebooks to run (default the compendium's notebooks/)
``--no-html``               skip the HTML renderings
``--inplace``               re-execute the notebooks in place with their defaults and
                            strip volatile metadata (``make notebooks``)

A parameter is injected into a notebook only if the notebook declares it in its
``parameters`` cell; a user parameter no selected notebook declares is an error.
With private data (see :func:`imr_analysis.ingest.detect_data_mode`) and no
``--output-dir``, everything goes to ``outputs/private/`` (git-ignored), so private
outputs never overwrite the committed synthetic ones.

Exit codes: 0 success, 1 a notebook failed, 2 usage or input error.

papermill and nbconvert are imported lazily, once, when the first notebook runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from imr_analysis import colophon as _colophon
from imr_analysis import paths

__all__ = [
    "NotebookFailedError",
    "NotebookRun",
    "RunResult",
    "RunnerError",
    "UsageError",
    "declared_parameters",
    "discover_notebooks",
    "main",
    "parse_parameter_value",
    "run_notebooks",
    "strip_volatile_metadata",
]

#: Two-digit numbered notebooks: ``NN_name.ipynb``.
NOTEBOOK_PATTERN = re.compile(r"^(\d{2})_.+\.ipynb$")
#: The kernel every notebook names; ``make install`` installs it into ``.venv`` under this
#: display name, so JupyterLab opens a committed notebook without marking it modified.
KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3 (IMR compendium)"
KERNELSPEC = {"display_name": KERNEL_DISPLAY_NAME, "language": "python", "name": KERNEL_NAME}
#: Tag of the final markdown cell holding the colophon.
COLOPHON_TAG = "colophon"
#: Data mode when :func:`imr_analysis.ingest.detect_data_mode` cannot say (treated as private).
UNKNOWN_MODE = "unknown"

_CELL_VOLATILE_KEYS = ("papermill", "execution", "ExecuteTime")
_NOTEBOOK_VOLATILE_KEYS = ("papermill", "widgets")
_PAPERMILL_TAGS = ("papermill-error-cell-tag",)


# --------------------------------------------------------------------------------------
# errors and results
# --------------------------------------------------------------------------------------
class RunnerError(Exception):
    """A run that cannot go on; ``exit_code`` is what the command returns."""

    exit_code = 2


class UsageError(RunnerError):
    """Bad options or missing inputs (exit code 2)."""

    exit_code = 2


class NotebookFailedError(RunnerError):
    """A cell raised: the message names the notebook, the cell and the exception (exit 1)."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        notebook: str,
        cell_index: int | None = None,
        execution_count: int | None = None,
        ename: str = "",
        evalue: str = "",
        partial_path: Path | None = None,
    ):
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
        self.execution_count = execution_count
        self.ename = ename
        self.evalue = evalue
        self.partial_path = partial_path


@dataclass(frozen=True)
class NotebookRun:
    """One executed notebook."""

    name: str
    source: Path
    output: Path
    html: Path | None
    parameters: dict[str, Any]
    duration_s: float


@dataclass
class RunResult:
    """What :func:`run_notebooks` did."""

    notebooks: list[NotebookRun] = field(default_factory=list)
    data_mode: str = ""
    output_dir: Path | None = None
    reports_dir: Path | None = None
    colophon: dict[str, Any] | None = None
    colophon_path: Path | None = None


# --------------------------------------------------------------------------------------
# lazy heavy imports (papermill ~2 s, nbconvert ~1 s): once, on first use
# --------------------------------------------------------------------------------------
def _papermill():
    import papermill  # noqa: PLC0415 - deliberately lazy

    return papermill


def _nbformat():
    import nbformat  # noqa: PLC0415

    return nbformat


# --------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------
class _NoDatesSafeLoader(yaml.SafeLoader):
    """YAML safe loader that keeps dates as strings (as papermill's ``-y`` does)."""

    yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def parse_parameter_value(text: str) -> Any:
    """Read a ``-p NAME VALUE`` value as a YAML scalar or list (dates stay strings).

    Parameters
    ----------
    text : str
        The value as typed on the command line.

    Returns
    -------
    object
        int, float, bool, None, str, list or dict. An empty string stays ``""``.

    Raises
    ------
    UsageError
        If the text is not valid YAML.

    Examples
    --------
    >>> parse_parameter_value("0.01"), parse_parameter_value("[CMHC, SerD]")
    (0.01, ['CMHC', 'SerD'])
    >>> parse_parameter_value("2023-01-31"), parse_parameter_value("")
    ('2023-01-31', '')
    """
    if text.strip() == "":
        return text
    try:
        return yaml.load(text, Loader=_NoDatesSafeLoader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        raise UsageError(f"cannot read parameter value {text!r} as YAML: {exc}") from None


def _read_params_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"parameters file not found: {path}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoDatesSafeLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise UsageError(f"cannot read parameters file {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise UsageError(f"parameters file {path} must hold a mapping of names to values")
    return data


def declared_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """Return the parameters a notebook declares in its ``parameters`` cell.

    Uses :func:`papermill.inspect_notebook`, so "declared" means exactly what papermill
    would recognise.

    Parameters
    ----------
    notebook : str or path-like
        Path of the ``.ipynb`` file.

    Returns
    -------
    dict
        ``{name: default value as source text}``; empty if there is no parameters cell.

    Examples
    --------
    >>> declared_parameters("notebooks/02_table1_demographics_illness.ipynb")  # doctest: +SKIP
    {'processed_dir': '""', 'tables_dir': '""', 'alpha': '0.05', ...}
    """
    info = _papermill().inspect_notebook(str(notebook))
    return {name: p.get("default") for name, p in info.items()}


# --------------------------------------------------------------------------------------
# notebooks
# --------------------------------------------------------------------------------------
def discover_notebooks(
    notebooks_dir: str | os.PathLike, only: Iterable[str | int] | None = None
) -> list[Path]:
    """List the numbered notebooks ``NN_*.ipynb`` of a folder, in order.

    Parameters
    ----------
    notebooks_dir : str or path-like
        The folder (not searched recursively).
    only : iterable of str or int, optional
        Keep only these numbers (``"02"``, ``"2"`` or ``2``).

    Returns
    -------
    list of Path
        Sorted by number.

    Raises
    ------
    UsageError
        Missing folder, no numbered notebook, two notebooks with the same number, or a
        number in ``only`` that no notebook has.

    Examples
    --------
    >>> [p.name for p in discover_notebooks("tests/fixtures/runner", only=["2"])]  # doctest: +SKIP
    ['02_b.ipynb']
    """
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise UsageError(f"notebooks folder not found: {folder}")
    by_number: dict[int, Path] = {}
    for p in sorted(folder.glob("*.ipynb")):
        m = NOTEBOOK_PATTERN.match(p.name)
        if not m:
            continue
        n = int(m.group(1))
        if n in by_number:
            raise UsageError(
                f"two notebooks share the number {m.group(1)}: {by_number[n].name}, {p.name}"
            )
        by_number[n] = p
    if not by_number:
        raise UsageError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    if only is None:
        return [by_number[n] for n in sorted(by_number)]
    wanted: list[int] = []
    for token in only:
        token = str(token).strip()
        if not re.fullmatch(r"\d{1,2}", token):
            raise UsageError(f"--only expects two-digit notebook numbers like 02,05; got {token!r}")
        wanted.append(int(token))
    missing = sorted({n for n in wanted if n not in by_number})
    if missing:
        have = ", ".join(f"{n:02d}" for n in sorted(by_number))
        raise UsageError(
            f"--only: no notebook numbered {', '.join(f'{n:02d}' for n in missing)} "
            f"in {folder} (available: {have})"
        )
    return [by_number[n] for n in sorted(set(wanted))]


def strip_volatile_metadata(nb) -> Any:
    """Remove what changes from run to run without changing results; renumber cells.

    Removes papermill's notebook and per-cell metadata, nbclient's ``execution``
    timestamps, ``ExecuteTime``, widget state and papermill's error-marker cells, sets
    the kernelspec to :data:`KERNELSPEC`, and renumbers the executed code cells 1..n in order
    (their ``execute_result`` outputs too). Outputs are kept.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        Modified in place.

    Returns
    -------
    nbformat.NotebookNode
        The same notebook.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook()
    >>> nb.metadata["papermill"] = {"duration": 1.2}
    >>> nb.cells.append(nbformat.v4.new_code_cell("1", execution_count=7))
    >>> nb.cells[0].metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00"}
    >>> nb = strip_volatile_metadata(nb)
    >>> "papermill" in nb.metadata, dict(nb.cells[0].metadata), nb.cells[0].execution_count
    (False, {}, 1)
    """
    for key in _NOTEBOOK_VOLATILE_KEYS:
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.cells = [
        c for c in nb.cells if not set(c.get("metadata", {}).get("tags", [])) & set(_PAPERMILL_TAGS)
    ]
    count = 0
    for cell in nb.cells:
        for key in _CELL_VOLATILE_KEYS:
            cell.metadata.pop(key, None)
        if cell.metadata.get("tags") == []:  # papermill adds empty tag lists
            del cell.metadata["tags"]
        if "injected-parameters" in cell.metadata.get("tags", []) and "id" in cell:
            cell["id"] = "injected-parameters"  # papermill draws a random id
        if cell.cell_type != "code":
            continue
        if cell.get("execution_count") is None:
            continue
        count += 1
        cell.execution_count = count
        for out in cell.get("outputs", []):
            if out.get("output_type") == "execute_result":
                out["execution_count"] = count
    return nb


# --------------------------------------------------------------------------------------
# data mode
# --------------------------------------------------------------------------------------
def _detect_data_mode(raw_dir: Path) -> tuple[str, str]:
    """Return ``(mode, note)``; ``note`` explains an ``"unknown"`` mode."""
    try:
        from imr_analysis.sources import detect_data_mode  # noqa: PLC0415 - lazy
    except ImportError as exc:
        return UNKNOWN_MODE, (
            f"cannot tell whether the data are synthetic or private "
            f"(imr_analysis.ingest.detect_data_mode unavailable: {exc}); treating them as private"
        )
    try:
        mode = detect_data_mode(raw_dir)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the raw exports in {raw_dir}: {exc}") from None
    return str(mode), ""


# --------------------------------------------------------------------------------------
# execution
# --------------------------------------------------------------------------------------
def _source_excerpt(source: str, max_lines: int = 6) -> str:
    lines = source.splitlines()
    excerpt = lines[:max_lines] + (["..."] if len(lines) > max_lines else [])
    return "\n".join("    | " + line for line in excerpt)


def _failure(name: str, exc: Exception, partial: Path | None) -> NotebookFailedError:
    pm_error = _papermill().PapermillExecutionError
    if isinstance(exc, pm_error):
        where = f"cell In [{exc.exec_count}] (cell index {exc.cell_index})"
        evalue = str(exc.evalue).strip()
        msg = f"notebook {name} failed at {where}: {exc.ename}: {evalue}"
        if exc.source:
            msg += "\n  cell source:\n" + _source_excerpt(exc.source)
        ename, cell_index, count = exc.ename, exc.cell_index, exc.exec_count
    else:
        msg = f"notebook {name} could not be executed: {type(exc).__name__}: {exc}"
        ename, evalue, cell_index, count = type(exc).__name__, str(exc), None, None
    if partial is not None and partial.exists():
        msg += f"\n  partially executed notebook: {partial}"
    return NotebookFailedError(
        msg,
        notebook=name,
        cell_index=cell_index,
        execution_count=count,
        ename=ename,
        evalue=evalue,
        partial_path=partial if partial is not None and partial.exists() else None,
    )


def _execute(source: Path, output: Path, parameters: dict[str, Any], cwd: Path):
    """Execute one notebook with papermill; return the executed NotebookNode."""
    pm = _papermill()
    return pm.execute_notebook(
        str(source),
        str(output),
        parameters=parameters or None,  # None: no injected-parameters cell at all
        kernel_name=KERNEL_NAME,
        language="python",
        progress_bar=False,
        log_output=False,
        cwd=str(cwd),
        **_engine_kwargs(),
    )


def _engine_kwargs() -> dict[str, Any]:
    """nbclient options: CurveZMQ transport encryption when available.

    Besides encrypting the kernel's local traffic, this silences ipykernel's
    "Kernel is running over TCP without encryption" warning on every kernel start.
    """
    import zmq  # noqa: PLC0415 - imported by papermill anyway
    from traitlets.config import Config  # noqa: PLC0415

    kwargs: dict[str, Any] = {"kernel_manager_class": _kernel_manager_class()}
    if zmq.has("curve"):
        kwargs["config"] = Config({"KernelManager": {"transport_encryption": "auto"}})
    return kwargs


_KERNEL_MANAGER_CLASS = None


def _kernel_manager_class():
    """jupyter_client's kernel manager, minus the SIGINT it sends before a shutdown request.

    ``AsyncKernelManager.shutdown_kernel`` interrupts the kernel before asking it to shut
    down; when the signal lands while ipykernel is handling a message (it is, after the
    last cell, flushing output) ipykernel logs "[IPKernelApp] ERROR | KeyboardInterrupt
    caught in kernel." on the runner's terminal between notebooks. The notebook has
    finished by then, so there is nothing to interrupt: this manager skips that interrupt
    during shutdown only (the shutdown request, and the kill if the kernel does not exit
    in time, are unchanged; interrupts at any other time still go through).
    """
    global _KERNEL_MANAGER_CLASS
    if _KERNEL_MANAGER_CLASS is None:
        from jupyter_client.manager import AsyncKernelManager  # noqa: PLC0415 - lazy

        class QuietShutdownKernelManager(AsyncKernelManager):
            async def _async_interrupt_kernel(self) -> None:
                if self.shutting_down:
                    return
                await super()._async_interrupt_kernel()

        _KERNEL_MANAGER_CLASS = QuietShutdownKernelManager
    return _KERNEL_MANAGER_CLASS


def _add_colophon_cell(nb, markdown: str) -> None:
    nbf = _nbformat()
    nb.cells = [c for c in nb.cells if COLOPHON_TAG not in c.get("metadata", {}).get("tags", [])]
    cell = nbf.v4.new_markdown_cell(markdown)
    cell.metadata["tags"] = [COLOPHON_TAG]
    # a deterministic id keeps reports byte-stable across runs
    if nb.get("nbformat", 4) >= 4 and nb.get("nbformat_minor", 0) >= 5:
        cell["id"] = "colophon"
    else:
        cell.pop("id", None)
    nb.cells.append(cell)


def _write_html(nb, path: Path) -> None:
    from nbconvert import HTMLExporter  # noqa: PLC0415 - lazy

    body, _ = HTMLExporter().from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")


def _stderr_cells(nb) -> list[int]:
    return [
        c.get("execution_count")
        for c in nb.cells
        if c.cell_type == "code"
        and any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in c.outputs)
    ]


def _resolve_dir(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def run_notebooks(
    *,
    notebooks_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    parameters: Mapping[str, Any] | None = None,
    only: Sequence[str | int] | None = None,
    html: bool = True,
    inplace: bool = False,
    stream: TextIO | None = None,
) -> RunResult:
    """Execute the numbered notebooks in order and write their reports.

    Parameters
    ----------
    notebooks_dir : str or path-like, optional
        Folder of ``NN_name.ipynb`` notebooks; default the compendium's ``notebooks/``.
    data_dir : str or path-like, optional
        Raw exports; injected as ``raw_dir``. Default ``data/raw`` (not injected: the
        notebooks' own default is the same folder). Relative paths are taken from the
        current directory.
    output_dir : str or path-like, optional
        Injects ``processed_dir = DIR/data/processed``, ``tables_dir = DIR/tables``,
        ``figures_dir = DIR/figures``; reports go to ``DIR/reports``. Default: the
        compendium's folders and ``reports/``, or ``outputs/private/`` when the data are
        private (or their mode cannot be told).
    parameters : mapping, optional
        User parameters. Each must be declared by at least one selected notebook and is
        injected only into the notebooks that declare it; it wins over the folder
        parameters derived from ``data_dir``/``output_dir``.
    only : sequence of str or int, optional
        Notebook numbers to run (``["02", "05"]``).
    html : bool, default True
        Also write ``reports/NN_name.html`` (nbconvert's HTMLExporter).
    inplace : bool, default False
        Re-execute the notebooks in place with their own defaults (no parameter is
        injected; ``parameters``, ``data_dir`` and ``output_dir`` are refused), strip
        volatile metadata and write them back with nbformat. No report, HTML or
        colophon. Refused on private data so private results never enter a notebook.
    stream : text stream, optional
        Where the progress lines go (default ``sys.stdout``).

    Returns
    -------
    RunResult
        The executed notebooks (name, paths, injected parameters, duration), the data
        mode, the output and report folders and the colophon.

    Raises
    ------
    UsageError
        Missing folders, unknown parameters, bad options (exit code 2).
    NotebookFailedError
        A cell raised; the message gives the notebook, ``In [n]`` and cell index, the
        exception and the path of the partially executed notebook (exit code 1).

    Examples
    --------
    >>> from imr_analysis.runner import run_notebooks
    >>> result = run_notebooks(only=["02"], parameters={"alpha": 0.01})  # doctest: +SKIP
    [1/1] 02_table1_demographics_illness ... ok (3.1 s)
    >>> result.notebooks[0].output.name  # doctest: +SKIP
    '02_table1_demographics_illness.ipynb'
    """
    out = sys.stdout if stream is None else stream
    user_params = dict(parameters or {})
    root = paths.project_root()

    if inplace and (user_params or data_dir is not None or output_dir is not None):
        raise UsageError(
            "--inplace re-executes the notebooks with their own defaults: "
            "it takes no parameters, --data-dir or --output-dir"
        )

    nb_dir = _resolve_dir(notebooks_dir) if notebooks_dir is not None else paths.notebooks_dir()
    raw = _resolve_dir(data_dir) if data_dir is not None else paths.raw_dir()
    if not raw.is_dir():
        raise UsageError(
            f"data folder not found: {raw}\n  pass the folder of the raw exports with --data-dir "
            f"(or write synthetic ones with 'python -m imr_analysis synth')"
        )
    notebooks = discover_notebooks(nb_dir, only)

    mode, note = _detect_data_mode(raw)
    if note:
        print(f"note: {note}", file=out)
    if inplace and mode != "synthetic":
        raise UsageError(
            f"--inplace refused: the data in {raw} are {mode}, not synthetic; the committed "
            "notebooks must only ever hold synthetic results"
        )

    # ---- folders and automatic (folder) parameters
    auto: dict[str, Any] = {}
    if data_dir is not None:
        auto["raw_dir"] = str(raw)
    if output_dir is None and mode != "synthetic" and not inplace:
        output_dir = paths.private_outputs_dir()
        print(f"note: {mode} data: outputs go to {output_dir}", file=out)
    if output_dir is not None:
        out_root = _resolve_dir(output_dir)
        auto["processed_dir"] = str(out_root / "data" / "processed")
        auto["tables_dir"] = str(out_root / "tables")
        auto["figures_dir"] = str(out_root / "figures")
        reports = out_root / "reports"
    else:
        out_root = None
        reports = paths.reports_dir()

    # ---- which notebook declares what; unknown user parameters are an error
    declared = {p: set(declared_parameters(p)) for p in notebooks}
    all_declared = set().union(*declared.values())
    unknown = sorted(set(user_params) - all_declared)
    if unknown:
        names = ", ".join(sorted(all_declared)) or "(none)"
        raise UsageError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
            f"no selected notebook declares {'them' if len(unknown) > 1 else 'it'}.\n"
            f"  declared parameters: {names}"
        )
    wanted = {**auto, **user_params}

    if not inplace:
        reports.mkdir(parents=True, exist_ok=True)
        if out_root is not None:
            for key in ("processed_dir", "tables_dir", "figures_dir"):
                Path(auto[key]).mkdir(parents=True, exist_ok=True)
        run_colophon = _colophon.build_colophon(
            data_dir=raw, data_mode=mode, parameters=wanted, root=root
        )
    else:
        run_colophon = None

    result = RunResult(data_mode=mode, output_dir=out_root, reports_dir=None if inplace else reports)
    total = len(notebooks)
    scratch = Path(tempfile.mkdtemp(prefix="imr-inplace-")) if inplace else None
    nbf = _nbformat()
    for i, source in enumerate(notebooks, start=1):
        name = source.stem
        injected = {k: v for k, v in wanted.items() if k in declared[source]}
        print(f"[{i}/{total}] {name} ... ", end="", file=out, flush=True)
        target = (scratch / source.name) if inplace else (reports / source.name)
        if inplace:
            nb_in = nbf.read(source, as_version=4)
            stale = [c for c in nb_in.cells if "injected-parameters" in c.metadata.get("tags", [])]
            if stale:  # a leftover from an earlier papermill run: drop it
                nb_in.cells = [c for c in nb_in.cells if c not in stale]
                nbf.write(nb_in, target)
                exec_source = target
            else:
                exec_source = source
        else:
            exec_source = source
        if not inplace:  # a failed run must not leave the previous run's HTML beside it
            target.with_suffix(".html").unlink(missing_ok=True)
        t0 = time.perf_counter()
        try:
            nb = _execute(exec_source, target, injected, cwd=source.parent)
        except KeyboardInterrupt:
            print("interrupted", file=out, flush=True)
            raise
        except Exception as exc:  # noqa: BLE001 - reported with a clear message
            print("FAILED", file=out, flush=True)
            raise _failure(name, exc, target) from None
        duration = time.perf_counter() - t0
        strip_volatile_metadata(nb)
        html_path = None
        if inplace:
            nbf.write(nb, source)
            written = source
        else:
            _add_colophon_cell(nb, _colophon.colophon_markdown(run_colophon, injected))
            nbf.write(nb, target)
            written = target
            if html:
                html_path = target.with_suffix(".html")
                _write_html(nb, html_path)
        stderr_counts = _stderr_cells(nb)
        warn = f"; stderr output in In {stderr_counts}" if stderr_counts else ""
        print(f"ok ({duration:.1f} s{warn})", file=out, flush=True)
        result.notebooks.append(
            NotebookRun(name, source, written, html_path, injected, round(duration, 3))
        )

    if scratch is not None:
        for p in scratch.iterdir():
            p.unlink()
        scratch.rmdir()
    if run_colophon is not None:
        run_colophon["notebooks"] = {r.name: r.parameters for r in result.notebooks}
        result.colophon = run_colophon
        result.colophon_path = _colophon.write_colophon_json(run_colophon, reports / "colophon.json")
    return result


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m imr_analysis run",
        description="Execute the numbered notebooks (NN_*.ipynb) in order with papermill; "
        "write reports/NN_name.ipynb, .html and colophon.json.",
    )
    p.add_argument("--params", metavar="FILE.yaml", help="YAML mapping of parameters")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="one parameter; VALUE is read as YAML (repeatable; wins over --params)",
    )
    p.add_argument("--only", metavar="NN,NN", help="run only these notebooks, e.g. 02,05")
    p.add_argument("--data-dir", metavar="DIR", help="folder of the raw exports (raw_dir)")
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        help="put processed data, tables, figures and reports under DIR",
    )
    p.add_argument("--notebooks-dir", metavar="DIR", help="folder of the notebooks to run")
    p.add_argument("--no-html", action="store_true", help="do not write HTML renderings")
    p.add_argument(
        "--inplace",
        action="store_true",
        help="re-execute the notebooks in place with their defaults and strip volatile metadata",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: ``python -m imr_analysis run [options]``; returns the exit code.

    Examples
    --------
    >>> main(["--only", "02", "-p", "alpha", "0.01"])  # doctest: +SKIP
    [1/1] 02_table1_demographics_illness ... ok (3.1 s)
    0
    """
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse already printed usage / help
        return int(exc.code or 0)
    try:
        params: dict[str, Any] = {}
        if args.params:
            params.update(_read_params_file(args.params))
        for name, value in args.parameter:
            if not name.isidentifier():
                raise UsageError(f"-p: {name!r} is not a valid parameter name")
            params[name] = parse_parameter_value(value)
        only = args.only.split(",") if args.only else None
        result = run_notebooks(
            notebooks_dir=args.notebooks_dir,
            data_dir=args.data_dir,
            output_dir=args.output_dir,
            parameters=params,
            only=only,
            html=not args.no_html,
            inplace=args.inplace,
        )
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    n = len(result.notebooks)
    where = "in place" if args.inplace else f"reports in {result.reports_dir}"
    print(f"done: {n} notebook{'s' if n != 1 else ''} executed ({where})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
