"""Counts that a notebook prints outside the published tables, after the disclosure profile.

Tables 1-3, the module tables, the agreement tables and the figures pass the disclosure
profile in :mod:`imr_analysis.disclosure` before they are shown or written. A notebook also
prints counts that belong to no published table: the cohort flow and the missing values per
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

from pathlib import Path

import pandas as pd

from . import disclosure


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
