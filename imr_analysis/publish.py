"""How a notebook publishes: its run, and every output through the disclosure profile.

:func:`setup` starts a notebook's :class:`Run`; each table passes the profile once, in
:meth:`Run.publish` (or :meth:`Run.show`, which writes nothing), and
:meth:`Run.write_disclosure_report` ends the run. Counts printed outside the tables pass the
same profile each on its own (:func:`protect_counts`: no totals to difference a redacted count
back); warnings naming lines and values of private exports are not shown at all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from . import disclosure, export, figio, figure1, paths, selection, stats
from .cohort import COHORT_FILE, load_cohort
from .sources import detect_data_mode

KINDS = ("long", "statistics", "tests", "protected")


@dataclasses.dataclass
class Run:
    """A notebook's run (:func:`setup`): folders, data mode, disclosure profile, figure policy
    (:func:`imr_analysis.disclosure.figure_policy`) and the disclosure reports of its outputs."""

    notebook: str
    raw: Path
    processed: Path
    tables: Path
    figures: Path
    data_mode: str
    profile: disclosure.Profile
    policy: dict
    reports: list = dataclasses.field(default_factory=list)
    read_tables: Path | None = None  #: where notebook 06 reads the tables of 02-05

    def protect(self, table, name: str, kind: str = "long", counts=(), record: bool = True) -> pd.DataFrame:
        """``table`` after the profile, by ``kind``: ``"long"`` (:func:`~imr_analysis.disclosure.apply_to_long`),
        ``"statistics"`` (:func:`~imr_analysis.disclosure.apply_to_statistics`), ``"tests"``
        (:func:`~imr_analysis.stats.public_results`) or ``"protected"`` (as it is); reported if ``record``."""
        if kind == "long":
            safe, report = disclosure.apply_to_long(table, self.profile, name)
        elif kind == "statistics":
            safe, report = disclosure.apply_to_statistics(table, self.profile, name, counts)
        elif kind in KINDS:
            safe, report = table if kind == "protected" or self.profile.is_noop else stats.public_results(table), None
        else:
            raise ValueError(f"{name}: unknown kind {kind!r}; choose from {', '.join(KINDS)}")
        if record and report is not None:
            self.reports.append(report)
        return safe

    def publish(self, table, name: str, formats=("csv",), caption: str | None = None, kind: str = "long",
                counts=(), stem: str | None = None, notes=()) -> pd.DataFrame:
        """:meth:`protect` ``table``, write it as ``tables/<stem or name>.<format>`` with its ``notes``
        (:func:`imr_analysis.export.export_table`) and return it to show (the CSV keeps redacted
        numbers as empty cells, the rest show ``[REDACTED]``)."""
        safe = self.protect(table, name, kind, counts)
        shown, stem = disclosure.mark_redacted(safe), stem or name
        formats = [str(f).lower().lstrip(".") for f in formats]
        _wrote(export.export_table(safe, self.tables, stem, [f for f in formats if f == "csv"], caption=caption,
                                   notes=notes)
               + export.export_table(shown, self.tables, stem, [f for f in formats if f != "csv"], caption=caption,
                                     notes=notes))
        return shown

    def show(self, table, name: str, kind: str = "statistics", counts=()) -> pd.DataFrame:
        """``table`` protected as :meth:`publish` would, to show only: not written, not reported."""
        return disclosure.mark_redacted(self.protect(table, name, kind, counts, record=False))

    def figure1(self, cohort: pd.DataFrame, services, record: bool = True):
        """Figure 1 as :attr:`policy` allows: one bar per patient when microdata may be shown and there are at most
        :data:`imr_analysis.figure1.MAX_PATIENTS` patients, else each service's patients by number of modules after
        disclosure control (reported if ``record``); returns the figure and its file stem."""
        if self.policy["figure1"] == "per_patient" and len(cohort) <= figure1.MAX_PATIENTS:
            return figure1.plot_figure1(figure1.figure1_data(cohort, services=services)), figure1.FIGURE1_STEM
        aggregate = self.protect(figure1.figure1_aggregate_data(cohort, services=services), "figure1_aggregate",
                                 record=record)
        note = self.policy["note"] if self.policy["figure1"] != "per_patient" else (
            f"More than {figure1.MAX_PATIENTS} patients: drawn in aggregate instead of one bar per patient.")
        return figure1.plot_figure1_aggregate(aggregate, note=note or None), figure1.FIGURE1_AGGREGATE_STEM

    def save_figure(self, fig, stem: str, formats=figio.FIGURE_FORMATS, dpi: int = 300) -> list[Path]:
        """Save ``fig`` as ``figures/<stem>.<format>`` (:func:`imr_analysis.figio.save_figure`)."""
        return _wrote(figio.save_figure(fig, self.figures, stem, formats=formats, dpi=dpi))

    def select(self, **filters) -> selection.Selection:
        """The cohort in :attr:`processed` sliced by ``filters`` (:func:`imr_analysis.selection.select`); prints
        the selection, its size as the profile lets it be shown, and its notes (e.g. a service type dropped)."""
        sel = selection.select(load_cohort(self.processed), **filters)
        print("\n".join([f"selection: {sel.describe()}",
                          cohort_size_line(len(sel.cohort), self.profile, "patients in the selection"), *sel.notes]))
        return sel

    def write_disclosure_report(self) -> pd.DataFrame:
        """Write what disclosure control did to the outputs (one row per cell and action, never a
        value) to ``tables/disclosure/<notebook>/disclosure_report.{csv,md}``; return a summary."""
        frames = [r for r in self.reports if len(r)]
        df = pd.concat(frames, ignore_index=True)[disclosure.REPORT_COLUMNS] if frames else disclosure.empty_report()
        folder = self.tables / "disclosure" / self.notebook
        folder.mkdir(parents=True, exist_ok=True)
        export.write_csv(df, folder / "disclosure_report.csv")
        summary = df.groupby(["output", "action"], sort=False).size().rename("cells")
        lines = ["# Disclosure report", "", f"Profile: {self.profile.describe()}", "",
                 f"Profiles file version: {disclosure.profiles_version()}", ""]
        lines += ["## Summary", "", summary.reset_index().to_markdown(index=False), "", "## Actions", "",
                  "Each row is one cell of a published table and what was done to it (never its value).", "",
                  df.to_markdown(index=False), ""] if len(df) else ["No disclosure-control actions were needed.", ""]
        (folder / "disclosure_report.md").write_text("\n".join(lines), encoding="utf-8")
        _wrote([folder / "disclosure_report.csv", folder / "disclosure_report.md"])
        none = pd.DataFrame({"cells": [0]}, index=pd.Index(["no action needed"], name="action"))
        return summary.to_frame() if len(df) else none


def _wrote(written: list[Path]) -> list[Path]:
    for path in written:
        print("wrote", paths.display_path(path))
    return written


def setup(notebook: str, raw_dir="", processed_dir="", tables_dir=None, figures_dir=None,
          disclosure_profile: str = "auto", allow_weaker_profile: bool = False, writes_cohort: bool = False,
          reads_tables=()) -> Run:
    """Start ``notebook``'s run: folders, data mode, disclosure profile and matplotlib's settings; print
    where it writes (:func:`imr_analysis.paths.output_line`), what it reads, the data and the profile.

    A folder ``""`` is the default: to write, the committed record in the runner's kernels, else its twin
    under ``scratch/``; to read, that twin when such a run wrote it, else the record
    (:mod:`imr_analysis.paths`); ``None``: the notebook has no such folder (none at all: it writes nothing, as
    07). ``processed`` holds the cohort read (02-05) or, with ``writes_cohort``, written (01); ``reads_tables``:
    the files a notebook reads from :attr:`Run.read_tables` (06).
    """
    raw = paths.resolve(raw_dir, paths.raw_dir())
    data_mode = detect_data_mode(raw)
    profile = disclosure.resolve_profile(disclosure_profile, data_mode, allow_weaker_profile=allow_weaker_profile)
    processed = (paths.output_folder(processed_dir, paths.processed_dir()) if writes_cohort
                 else paths.input_folder(processed_dir, paths.processed_dir(), [COHORT_FILE]))
    run = Run(notebook, raw, processed, paths.output_folder(tables_dir, paths.tables_dir()),
              paths.output_folder(figures_dir, paths.figures_dir()), data_mode, profile,
              disclosure.figure_policy(profile),
              read_tables=paths.input_folder(tables_dir, paths.tables_dir(), reads_tables) if reads_tables else None)
    figio.setup_matplotlib()
    given = [paths.is_given(d) for d in [processed_dir] * writes_cohort + [tables_dir, figures_dir] if d is not None]
    reads = (f"raw exports: {paths.display_path(raw)}" if writes_cohort else f"tables read: "
             f"{paths.display_path(run.read_tables)}" if reads_tables else
             f"cohort: {paths.display_path(run.processed / COHORT_FILE)}")
    print(f"{paths.output_line(given) if given else 'outputs: none (no output folder)'}\n{reads}\ndata: {data_mode}\n"
          f"disclosure control: {profile.describe()}")
    return run


def protect_counts(table: pd.DataFrame, profile, counts, withhold=()) -> pd.DataFrame:
    """``table`` with its ``counts`` columns (patients or records) as ``profile`` lets them be shown.

    Unless ``none``: the (rounded) integer, or ``"[REDACTED]"`` for 1..k; ``withhold`` columns are dropped (e.g. the
    distinct patient codes: the cohort size).

    Examples
    --------
    >>> flow = pd.DataFrame({"status": ["excluded", "included", "duplicated"], "records": [2, 74, 0]})
    >>> protect_counts(flow, "opensafely", ["records"])["records"].tolist()
    ['[REDACTED]', 75, 0]
    >>> protect_counts(flow, "sistan_min3", ["records"])["records"].tolist()
    ['[REDACTED]', 74, 0]
    >>> protect_counts(flow, "none", ["records"])["records"].tolist()
    [2, 74, 0]
    """
    prof = disclosure.get_profile(profile)
    out = table.copy()
    if prof.is_noop:
        return out
    out = out.drop(columns=[c for c in withhold if c in out.columns])
    for col in counts:
        values = pd.to_numeric(out[col]).astype(float)
        small = values.between(1, prof.redact_counts_le) if prof.redact_counts_le else values < 0
        shown = (disclosure.round_counts(values, prof.rounding_base, prof.rounding_method)
                 if prof.rounding_method else values)
        shown = pd.Series(shown, index=out.index).astype("Int64").astype(object)
        out[col] = shown.where(~small, disclosure.REDACTED_MARKER)
    return out


def cohort_size_line(n: int, profile, what: str = "patients in the cohort") -> str:
    """A sentence giving the size of a group as ``profile`` lets it be shown.

    Examples
    --------
    >>> cohort_size_line(126, "none")
    '126 patients in the cohort'
    >>> cohort_size_line(126, "opensafely")
    '125 patients in the cohort (rounded to the nearest 5: disclosure control)'
    >>> cohort_size_line(4, "opensafely", "patients in the EDP")
    '[REDACTED] patients in the EDP (disclosure control: 1-7 patients)'
    """
    prof = disclosure.get_profile(profile)
    shown = protect_counts(pd.DataFrame({"n": [n]}), prof, ["n"])["n"].iloc[0]
    if prof.is_noop:
        return f"{shown} {what}"
    if shown == disclosure.REDACTED_MARKER:
        return f"{shown} {what} (disclosure control: 1-{prof.redact_counts_le} patients)"
    if prof.rounding_method == "nearest":
        return f"{shown} {what} (rounded to the nearest {prof.rounding_base}: disclosure control)"
    if prof.rounding_method:
        return f"{shown} {what} ({prof.rounding_method} rounding to {prof.rounding_base}: disclosure control)"
    return f"{shown} {what}"


def warnings_for_display(warnings: list, profile, folder) -> list[str]:
    """The lines to print about the cleaner's warnings: the warnings themselves with the ``none``
    profile; else they are written to ``folder/cleaning_warnings.txt``, beside the patient-level
    cohort (they name lines and values of private exports), and only their number is printed.

    Examples
    --------
    >>> warnings_for_display(["efeso.csv line 4: blank row skipped"], "none", "/tmp")
    ['warning: efeso.csv line 4: blank row skipped']
    """
    prof = disclosure.get_profile(profile)
    if prof.is_noop:
        return [f"warning: {w}" for w in warnings]
    if not warnings:
        return ["no warnings about the exports"]
    path = Path(folder) / "cleaning_warnings.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{w}\n" for w in warnings), encoding="utf-8")
    return [f"{len(warnings)} warning(s) about the exports; they name lines and values of the private exports, "
            f"so they are not shown here: read them in {path.name} beside the cohort (not for release)"]
