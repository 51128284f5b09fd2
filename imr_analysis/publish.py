"""How a notebook publishes: one run's folders and disclosure profile, every output through it.

:func:`setup` starts a notebook's :class:`Run`: it resolves the folders (from the
compendium's root, whatever the working directory), tells synthetic from private data,
chooses the disclosure profile, sets the display options and prints what it found. Every
table then passes the profile once, in :meth:`Run.publish` (or :meth:`Run.show`, which
writes nothing), figures are saved by :meth:`Run.save_figure`, and
:meth:`Run.write_disclosure_report` writes what disclosure control did to the outputs.


A notebook also prints counts that belong to no published table: the cohort flow and the missing values per
column (notebook 01), the number of patients in the cohort or in each service. On private
data these pass the same profile, here: a count of 1..k patients is shown as
``[REDACTED]``, every other count is rounded as the profile rounds (zero stays zero). Each
count is protected on its own; the tables these functions return publish no totals that
would let a reader difference a redacted count back.

Free-text messages about the exports (warnings naming files, lines and values) are not
shown on private data at all: :func:`warnings_for_display` writes them next to the
patient-level data and prints how many there are.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from . import disclosure, export, figio, paths, stats
from .sources import detect_data_mode

#: The pandas display options of every notebook.
DISPLAY_OPTIONS = {"display.max_colwidth": 90, "display.width": 200, "display.precision": 4}
#: What :meth:`Run.protect` does to a table of each kind.
KINDS = ("long", "statistics", "tests", "protected")


@dataclasses.dataclass
class Run:
    """One notebook's run (made by :func:`setup`): its folders, data mode, disclosure profile
    and figure policy (:func:`imr_analysis.disclosure.figure_policy`), and the disclosure
    reports of the outputs it wrote, for ``tables/disclosure/<notebook>``."""

    notebook: str
    raw: Path
    processed: Path
    tables: Path
    figures: Path
    data_mode: str
    profile: disclosure.Profile
    policy: dict
    reports: list = dataclasses.field(default_factory=list)

    def protect(self, table: pd.DataFrame, name: str, kind: str = "long", counts=(), record: bool = True):
        """``table`` after the profile, its actions reported under ``name`` (unless ``record`` is False).

        ``kind`` is ``"long"`` (a tidy long table: :func:`imr_analysis.disclosure.apply_to_long`),
        ``"statistics"`` (rows of statistics of ``n`` patients, rows whose ``measure`` is among
        ``counts`` being counts: :func:`imr_analysis.disclosure.apply_to_statistics`), ``"tests"``
        (test results: only the columns revealing no count, :func:`imr_analysis.stats.public_results`)
        or ``"protected"`` (already protected, or made from protected numbers: left as it is).
        """
        if kind not in KINDS:
            raise ValueError(f"{name}: unknown kind {kind!r}; choose from {', '.join(KINDS)}")
        safe, report = (disclosure.apply_to_long(table, self.profile, name) if kind == "long" else
                        disclosure.apply_to_statistics(table, self.profile, name, counts) if kind == "statistics"
                        else (stats.public_results(table) if kind == "tests" and not self.profile.is_noop
                              else table, None))
        if record:
            self.reports.append(report)
        return safe

    def publish(self, table: pd.DataFrame, name: str, formats=("csv",), caption: str | None = None,
                kind: str = "long", counts=(), stem: str | None = None) -> pd.DataFrame:
        """Protect ``table`` (:meth:`protect`), write it as ``tables/<stem>.<format>`` (``stem``:
        ``name``) for each of ``formats``, print the paths and return the table to display.

        The CSV keeps numbers numeric (a redacted one is an empty cell flagged in ``redacted``);
        the other formats, under ``caption``, and the returned table show ``[REDACTED]``
        (:func:`imr_analysis.disclosure.mark_redacted`).
        """
        safe = self.protect(table, name, kind, counts)
        shown = disclosure.mark_redacted(safe)
        formats = [str(f).lower().lstrip(".") for f in formats]
        stem = stem or name
        _wrote(export.export_table(safe, self.tables, stem, [f for f in formats if f == "csv"])
               + export.export_table(shown, self.tables, stem, [f for f in formats if f != "csv"], caption=caption))
        return shown

    def show(self, table: pd.DataFrame, name: str, kind: str = "statistics", counts=()) -> pd.DataFrame:
        """``table`` protected as :meth:`publish` protects it, to display only: nothing is written
        and its actions stay out of the report (which lists the written outputs)."""
        return disclosure.mark_redacted(self.protect(table, name, kind, counts, record=False))

    def save_figure(self, fig, stem: str, formats=figio.FIGURE_FORMATS, dpi: int = 300) -> list[Path]:
        """Save ``fig`` as ``figures/<stem>.<format>`` (:func:`imr_analysis.figio.save_figure`); print the paths."""
        return _wrote(figio.save_figure(fig, self.figures, stem, formats=formats, dpi=dpi))

    def write_disclosure_report(self) -> pd.DataFrame:
        """Write the report of every output protected so far to
        ``tables/disclosure/<notebook>/disclosure_report.{csv,md}``; return its summary."""
        report = disclosure.disclosure_report(self.reports)
        _wrote(disclosure.write_disclosure_report(report, self.tables / "disclosure" / self.notebook, self.profile))
        return disclosure.report_summary(report)


def _wrote(written: list[Path]) -> list[Path]:
    for path in written:
        print("wrote", paths.display_path(path))
    return written


def setup(notebook: str, raw_dir="", processed_dir="", tables_dir="", figures_dir="",
          disclosure_profile: str = "auto", allow_weaker_profile: bool = False) -> Run:
    """Start ``notebook``'s run with its parameters: folders (``""``: the defaults of
    :mod:`imr_analysis.paths`), data mode, disclosure profile; set the display options
    (:data:`DISPLAY_OPTIONS`, :func:`imr_analysis.figio.setup_matplotlib`) and print the
    cohort's path, the data mode and the disclosure control."""
    raw = paths.resolve(raw_dir, paths.raw_dir())
    data_mode = detect_data_mode(raw)
    profile = disclosure.resolve_profile(disclosure_profile, data_mode, allow_weaker_profile=allow_weaker_profile)
    run = Run(notebook, raw, paths.resolve(processed_dir, paths.processed_dir()),
              paths.resolve(tables_dir, paths.tables_dir()), paths.resolve(figures_dir, paths.figures_dir()),
              data_mode, profile, disclosure.figure_policy(profile))
    for option, value in DISPLAY_OPTIONS.items():
        pd.set_option(option, value)
    figio.setup_matplotlib()
    print("cohort:", paths.display_path(run.processed / "cohort.parquet"))
    print("data:", data_mode)
    print("disclosure control:", profile.describe())
    return run


def protect_count(value, profile) -> object:
    """One count of patients as ``profile`` lets it be shown.

    Parameters
    ----------
    value : int or float
        A count of patients (or of records, one per patient or programme).
    profile : disclosure.Profile or profile name

    Returns
    -------
    int or str
        The count (``none`` profile), the rounded count, or ``"[REDACTED]"`` for 1..k.

    Examples
    --------
    >>> protect_count(5, "none"), protect_count(5, "opensafely"), protect_count(126, "opensafely")
    (5, '[REDACTED]', 125)
    >>> protect_count(0, "opensafely"), protect_count(3, "sistan_min3"), protect_count(2, "sistan_min3")
    (0, 3, '[REDACTED]')
    """
    shown = protect_counts(pd.DataFrame({"n": [value]}), profile, ["n"])["n"].iloc[0]
    return shown if isinstance(shown, str) else int(shown)


def protect_counts(table: pd.DataFrame, profile, counts, withhold=()) -> pd.DataFrame:
    """``table`` with its count columns protected as ``profile`` says.

    Parameters
    ----------
    table : DataFrame
        Any table; its ``counts`` columns hold counts of patients or records.
    profile : disclosure.Profile or profile name
    counts : list of str
        The count columns.
    withhold : list of str, optional
        Columns dropped unless the profile is ``none`` (for example the number of
        distinct values of each column, which for the patient code is the cohort size).

    Returns
    -------
    DataFrame
        A copy. With a profile other than ``none`` each count column is text-free
        ``object``: the integer shown, or ``"[REDACTED]"``.

    Examples
    --------
    >>> flow = pd.DataFrame({"status": ["excluded", "included"], "records": [2, 74]})
    >>> protect_counts(flow, "opensafely", ["records"])["records"].tolist()
    ['[REDACTED]', 75]
    >>> protect_counts(flow, "none", ["records"])["records"].tolist()
    [2, 74]
    """
    prof = disclosure.get_profile(profile) if isinstance(profile, str) else profile
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
    prof = disclosure.get_profile(profile) if isinstance(profile, str) else profile
    shown = protect_count(n, prof)
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
    """The lines to print about the cleaner's warnings.

    With the ``none`` profile, the warnings themselves. Otherwise they name lines, values
    and numbers of records of private exports: they are written to
    ``folder/cleaning_warnings.txt``, beside the patient-level cohort (which never leaves
    the department), and only their number and that file are printed.

    Examples
    --------
    >>> warnings_for_display(["efeso.csv line 4: blank row skipped"], "none", "/tmp")
    ['warning: efeso.csv line 4: blank row skipped']
    """
    prof = disclosure.get_profile(profile) if isinstance(profile, str) else profile
    if prof.is_noop:
        return [f"warning: {w}" for w in warnings]
    if not warnings:
        return ["no warnings about the exports"]
    path = Path(folder) / "cleaning_warnings.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{w}\n" for w in warnings), encoding="utf-8")
    return [f"{len(warnings)} warning(s) about the exports; they name lines and values of the private exports, "
            f"so they are not shown here: read them in {path.name} beside the cohort (not for release)"]
