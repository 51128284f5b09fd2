"""``python -m imr_analysis run``: execute the numbered notebooks in order (papermill, one kernel each).

Each notebook is written to ``reports/NN_name.ipynb`` (and ``.html``), ending with the run's
colophon (also ``reports/colophon.json``); a run of the notebooks writing the bundle's tables also
writes the aggregate bundle (:mod:`imr_workflow.bundle`) to ``<output dir>/bundle`` (default
``reports/bundle``); after a replication comparison (notebook 06 on a cohort other than the published
one's reproduction) the one-page ``reports/replication_summary.{md,html}`` (:mod:`imr_workflow.summary`).
``--help`` lists the options. A parameter goes only
into the notebooks whose ``parameters`` cell declares it; one no selected notebook declares is an
error. On private data without ``--output-dir`` everything goes to the git-ignored
``outputs/private/``. Only its kernels write the committed record by default (:func:`recording`).
Exit codes: 0 success, 1 a notebook failed, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import nbformat
import papermill
import yaml
import zmq
from jupyter_client.manager import AsyncKernelManager
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CoalesceStreamsPreprocessor
from traitlets.config import Config

from imr_analysis import paths, replicate
from imr_analysis.sources import detect_data_mode
from imr_workflow import bundle, colophon, summary

NOTEBOOK_PATTERN = re.compile(r"^(\d{2})_.+\.ipynb$")
#: The one kernel every notebook names (``make install`` installs it under this display name).
KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3 (IMR compendium)"
KERNELSPEC = {"display_name": KERNEL_DISPLAY_NAME, "language": "python", "name": KERNEL_NAME}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class RunnerError(Exception):
    """A run that cannot go on; ``exit_code`` is what the command returns."""

    exit_code = 2


class UsageError(RunnerError):
    """Bad options or missing inputs."""


class NotebookFailedError(RunnerError):
    """A cell raised: the message names the notebook, the cell and the exception."""

    exit_code = 1

    def __init__(self, message: str, notebook: str, execution_count: int | None, ename: str, evalue: str):
        super().__init__(message)
        self.notebook, self.execution_count, self.ename, self.evalue = notebook, execution_count, ename, evalue


@dataclass
class RunResult:
    """What :func:`run_notebooks` did: the parameters injected into each notebook, by name."""

    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_mode: str = ""
    output_dir: Path | None = None
    reports_dir: Path | None = None
    colophon: dict[str, Any] | None = None
    summary: list[Path] = field(default_factory=list)  # reports/replication_summary.{md,html}, if written
    bundle_dir: Path | None = None


class QuietShutdownKernelManager(AsyncKernelManager):
    """A kernel manager without the interrupt sent before a shutdown request (ipykernel printed
    "KeyboardInterrupt caught in kernel" between notebooks); other interrupts go through."""

    async def _async_interrupt_kernel(self) -> None:
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


#: nbclient options: the quiet manager, and CurveZMQ-encrypted kernel traffic where pyzmq
#: supports it (ipykernel otherwise warns "Kernel is running over TCP without encryption").
KERNEL_OPTIONS = {"kernel_manager_class": QuietShutdownKernelManager, "config": Config(
    {"KernelManager": {"transport_encryption": "auto" if zmq.has("curve") else "disabled"}})}


class _NoDatesLoader(yaml.SafeLoader):
    """YAML safe loader that keeps dates as strings, as papermill's ``-y`` does."""

    yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                               for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def parse_parameter_value(text: str, source: str | None = None) -> Any:
    """Read a ``-p NAME VALUE`` value (or the text of the parameters file ``source``) as YAML;
    dates stay strings, ``""`` stays ``""``.

    Examples
    --------
    >>> parse_parameter_value("0.01"), parse_parameter_value("[CMHC, SerD]"), parse_parameter_value("2023-01-31")
    (0.01, ['CMHC', 'SerD'], '2023-01-31')
    """
    if not text.strip():
        return text
    try:
        return yaml.load(text, Loader=_NoDatesLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise UsageError(f"cannot read {source or f'parameter value {text!r}'} as YAML: {exc}") from None


def _read_params_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"parameters file not found: {path}")
    data = parse_parameter_value(path.read_text(encoding="utf-8"), f"parameters file {path}") or {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise UsageError(f"parameters file {path} must hold a mapping of names to values")
    return data


def declared_parameters(notebook: str | os.PathLike) -> dict[str, str]:
    """``{name: default as source text}`` of a notebook's ``parameters`` cell, as papermill reads it."""
    return {name: p["default"] for name, p in papermill.inspect_notebook(str(notebook)).items()}


def discover_notebooks(notebooks_dir: str | os.PathLike, only: Iterable[str | int] | None = None) -> list[Path]:
    """The ``NN_name.ipynb`` notebooks of a folder in number order, or those numbered in ``only``."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise UsageError(f"notebooks folder not found: {folder}")
    by_number: dict[int, Path] = {}
    for p in sorted(folder.glob("*.ipynb")):
        if m := NOTEBOOK_PATTERN.match(p.name):
            if int(m.group(1)) in by_number:
                raise UsageError(f"two notebooks share the number {m.group(1)}: {by_number[int(m.group(1))].name}, "
                                 f"{p.name}")
            by_number[int(m.group(1))] = p
    if not by_number:
        raise UsageError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    tokens = [str(t).strip() for t in only] if only is not None else [str(n) for n in by_number]
    if bad := [t for t in tokens if not re.fullmatch(r"\d{1,2}", t)]:
        raise UsageError(f"--only expects two-digit notebook numbers like 02,05; got {bad[0]!r}")
    if missing := sorted({int(t) for t in tokens} - set(by_number)):
        raise UsageError(f"--only: no notebook numbered {', '.join(f'{n:02d}' for n in missing)} in {folder} "
                         f"(available: {', '.join(f'{n:02d}' for n in sorted(by_number))})")
    return [by_number[n] for n in sorted({int(t) for t in tokens})]


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove, in place, what changes from run to run without changing results.

    Papermill's metadata, timestamps and widget state go, and with the state the views of widgets (a random
    model id each; without a kernel a reader sees their plain-text form), the kernelspec becomes
    :data:`KERNELSPEC`, the injected-parameters cell gets a fixed id, the executed cells are renumbered 1..n and
    consecutive stream outputs are merged (where the kernel flushed splits them differently from run to run).

    Examples
    --------
    >>> nb = nbformat.v4.new_notebook(metadata={"papermill": {"duration": 1.2}})
    >>> nb.cells.append(nbformat.v4.new_code_cell("1", execution_count=7, metadata={"execution": {}}))
    >>> nb = strip_volatile_metadata(nb)
    >>> "papermill" in nb.metadata, dict(nb.cells[0].metadata), nb.cells[0].execution_count
    (False, {}, 1)
    """
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    count = 0
    for cell in nb.cells:
        for key in ("papermill", "execution", "ExecuteTime"):
            cell.metadata.pop(key, None)
        if cell.metadata.get("tags") == []:  # papermill adds empty tag lists
            del cell.metadata["tags"]
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"  # papermill draws a random one
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            count += 1
            cell.execution_count = count
            for out in cell.outputs:
                if out.output_type == "execute_result":
                    out.execution_count = count
        for out in cell.get("outputs", []):
            out.get("data", {}).pop(WIDGET_VIEW, None)
    return CoalesceStreamsPreprocessor().preprocess(nb, {})[0]


@contextlib.contextmanager
def recording():
    """Within: kernels started from this process write the committed record by default
    (:data:`imr_analysis.paths.OUTPUT_ENV`; any other run of a notebook writes under ``scratch/``)."""
    before = os.environ.get(paths.OUTPUT_ENV)
    os.environ[paths.OUTPUT_ENV] = "record"
    try:
        yield
    finally:
        if before is None:
            del os.environ[paths.OUTPUT_ENV]
        else:
            os.environ[paths.OUTPUT_ENV] = before


def _failure(name: str, exc: Exception, partial: Path) -> NotebookFailedError:
    if isinstance(exc, papermill.PapermillExecutionError):
        source = "\n".join(f"    | {line}" for line in exc.source.splitlines()[:6])
        message = (f"notebook {name} failed at cell In [{exc.exec_count}] (cell index {exc.cell_index}): "
                   f"{exc.ename}: {str(exc.evalue).strip()}\n  cell source:\n{source}")
        error = exc.exec_count, exc.ename, str(exc.evalue).strip()
    else:
        message, error = f"notebook {name} could not be executed: {type(exc).__name__}: {exc}", (
            None, type(exc).__name__, str(exc))
    if partial.exists():
        message += f"\n  partially executed notebook: {partial}"
    return NotebookFailedError(message, name, *error)


def run_notebooks(*, notebooks_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
                  output_dir: str | os.PathLike | None = None, parameters: Mapping[str, Any] | None = None,
                  only: Sequence[str | int] | None = None, html: bool = True, inplace: bool = False,
                  department: str | None = None, stream: TextIO | None = None) -> RunResult:
    """Execute the numbered notebooks in order and write their reports.

    The arguments are the command's options; ``parameters`` (injected into the notebooks that
    declare them) win over the folders; ``inplace`` re-executes the notebooks with their own
    defaults (synthetic data only); ``department`` names the bundle (default: :func:`imr_workflow.bundle.
    department_name`); progress lines go to ``stream`` (default ``sys.stdout``).
    Raises :class:`UsageError` (missing folders, unknown parameters) or
    :class:`NotebookFailedError` (naming the notebook, ``In [n]``, the exception, the partial notebook).
    """
    out = stream or sys.stdout
    user = dict(parameters or {})
    if inplace and (user or data_dir is not None or output_dir is not None):
        raise UsageError("--inplace re-executes the notebooks with their own defaults: "
                         "it takes no parameters, --data-dir or --output-dir")
    nb_dir = Path(notebooks_dir).expanduser().resolve() if notebooks_dir is not None else paths.notebooks_dir()
    raw = Path(data_dir).expanduser().resolve() if data_dir is not None else paths.raw_dir()
    if not raw.is_dir():
        raise UsageError(f"data folder not found: {raw}\n  pass the folder of the raw exports with --data-dir "
                         "(or write synthetic ones with 'python -m imr_analysis synth')")
    notebooks = discover_notebooks(nb_dir, only)
    try:
        mode = detect_data_mode(raw)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the raw exports in {raw}: {exc}") from None
    try:
        department = bundle.department_name(raw, mode, department)
    except bundle.BundleError as exc:
        raise UsageError(str(exc)) from None
    if inplace and mode != "synthetic":
        raise UsageError(f"--inplace refused: the data in {raw} are {mode}, not synthetic; the committed "
                         "notebooks must only ever hold synthetic results")

    folders = {} if data_dir is None else {"raw_dir": str(raw)}
    if output_dir is None and mode != "synthetic" and not inplace:
        output_dir = paths.private_outputs_dir()
        print(f"note: {mode} data: outputs go to {output_dir}", file=out)
    out_root = Path(output_dir).expanduser().resolve() if output_dir is not None else None
    if out_root is not None:
        folders |= {"processed_dir": str(out_root / "data" / "processed"), "tables_dir": str(out_root / "tables"),
                    "figures_dir": str(out_root / "figures")}
    reports = out_root / "reports" if out_root is not None else paths.reports_dir()

    declared = {nb: set(declared_parameters(nb)) for nb in notebooks}
    known = set().union(*declared.values())
    if unknown := sorted(set(user) - known):
        s = "s" if len(unknown) > 1 else ""
        raise UsageError(f"unknown parameter{s} {', '.join(map(repr, unknown))}: no selected notebook declares "
                         f"{'them' if s else 'it'}.\n  declared parameters: {', '.join(sorted(known)) or '(none)'}")
    wanted = {**folders, **user}
    result = RunResult(data_mode=mode, output_dir=out_root, reports_dir=None if inplace else reports)
    if not inplace:
        for folder in [reports, *(Path(folders[k]) for k in ("processed_dir", "tables_dir", "figures_dir")
                                  if k in folders)]:
            folder.mkdir(parents=True, exist_ok=True)
        result.colophon = colophon.build_colophon(data_dir=raw, data_mode=mode, parameters=wanted)
    # --inplace executes into a scratch folder first: a failure leaves the notebook untouched
    target_dir = Path(tempfile.mkdtemp(prefix="imr-inplace-")) if inplace else reports
    with recording():  # the kernels write the committed record (or the folders given)
        for i, source in enumerate(notebooks, start=1):
            injected = {k: v for k, v in wanted.items() if k in declared[source]}
            target = target_dir / source.name
            print(f"[{i}/{len(notebooks)}] {source.stem} ... ", end="", file=out, flush=True)
            target.with_suffix(".html").unlink(missing_ok=True)  # no stale HTML beside a failed run
            t0 = time.perf_counter()
            try:
                nb = papermill.execute_notebook(
                    str(source), str(target), parameters=injected or None, kernel_name=KERNEL_NAME,
                    language="python", progress_bar=False, log_output=False, cwd=str(source.parent), **KERNEL_OPTIONS)
            except Exception as exc:
                print("FAILED", file=out, flush=True)
                raise _failure(source.stem, exc, target) from None
            strip_volatile_metadata(nb)
            if inplace:
                nbformat.write(nb, source)
                target.unlink()
            else:
                cell = nbformat.v4.new_markdown_cell(colophon.colophon_markdown(result.colophon, injected),
                                                     metadata={"tags": ["colophon"]})
                cell["id"] = "colophon"  # a fixed id keeps reports byte-stable
                nb.cells.append(cell)
                nbformat.write(nb, target)
                if html:
                    target.with_suffix(".html").write_text(HTMLExporter().from_notebook_node(nb)[0],
                                                           encoding="utf-8")
            stderr = [c.execution_count for c in nb.cells if c.cell_type == "code"
                      and any(o.get("name") == "stderr" for o in c.outputs)]
            print(f"ok ({time.perf_counter() - t0:.1f} s{f'; stderr output in In {stderr}' if stderr else ''})",
                  file=out, flush=True)
            result.notebooks[source.stem] = injected
    if inplace:
        target_dir.rmdir()
        return result
    result.colophon["notebooks"] = result.notebooks
    colophon.write_colophon_json(result.colophon, reports / "colophon.json")
    producers = {nb for nb in notebooks if nb.name[:2] in set(bundle.TABLES.values())}
    if len(producers) == len(set(bundle.TABLES.values())):  # the run wrote every table of a bundle
        agreement = next(nb for nb in producers if nb.name.startswith(bundle.TABLES["imrs_agreement"]))
        alpha = wanted.get("alpha", parse_parameter_value(declared_parameters(agreement).get("alpha", "0.05")))
        result.bundle_dir = out_root / "bundle" if out_root else reports / "bundle"
        try:
            bundle.write_bundle(paths.resolve(wanted.get("tables_dir"), paths.tables_dir()), result.bundle_dir,
                                department=department, colophon=result.colophon, alpha=float(alpha))
        except bundle.BundleError as exc:
            raise UsageError(str(exc)) from None
        print(f"bundle of department {department} ({mode} data): {result.bundle_dir}"
              + ("; name the department with --department NAME" if department == bundle.UNNAMED else ""), file=out)
    audit, reason = replicate.audit_mode(raw, wanted.get("audit", "auto")) if any(
        "audit" in declared[nb] for nb in notebooks) else ("", "")
    if audit == "replication":  # notebook 06 compared the cohort with the published one: the page to share
        folders = {k: paths.resolve(wanted.get(k), default) for k, default in (
            ("tables_dir", paths.tables_dir()), ("figures_dir", paths.figures_dir()),
            ("processed_dir", paths.processed_dir()))}
        result.summary = summary.write_summary(reports, **folders, colophon=result.colophon, reason=reason)
        print("replication summary:", ", ".join(map(str, result.summary)), file=out)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m imr_analysis run [options]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m imr_analysis run", description=(
        "Execute the numbered notebooks (NN_*.ipynb) in order with papermill; "
        "write reports/NN_name.ipynb, .html and colophon.json."))
    parser.add_argument("--params", metavar="FILE.yaml", help="YAML mapping of parameters")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="one parameter; VALUE is read as YAML (repeatable; wins over --params)")
    parser.add_argument("--only", metavar="NN,NN", help="run only these notebooks, e.g. 02,05")
    parser.add_argument("--data-dir", metavar="DIR", help="folder of the raw exports (raw_dir)")
    parser.add_argument("--output-dir", metavar="DIR", help="put processed data, tables, figures and reports under DIR")
    parser.add_argument("--notebooks-dir", metavar="DIR", help="folder of the notebooks to run")
    parser.add_argument("--no-html", action="store_true", help="do not write HTML renderings")
    parser.add_argument("--department", metavar="NAME",
                        help="the department named in the aggregate bundle (default: the synthetic exports' "
                             f"department, {bundle.SHIPPED!r} for the shipped data, {bundle.UNNAMED!r} otherwise)")
    parser.add_argument("--inplace", action="store_true",
                        help="re-execute the notebooks in place with their defaults and strip volatile metadata")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage or the help
        return int(exc.code or 0)
    try:
        params = _read_params_file(args.params) if args.params else {}
        for name, value in args.parameter:
            if not name.isidentifier():
                raise UsageError(f"-p: {name!r} is not a valid parameter name")
            params[name] = parse_parameter_value(value)
        result = run_notebooks(notebooks_dir=args.notebooks_dir, data_dir=args.data_dir, output_dir=args.output_dir,
                               parameters=params, only=args.only.split(",") if args.only else None,
                               html=not args.no_html, inplace=args.inplace, department=args.department)
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
