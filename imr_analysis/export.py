"""Write tables as CSV, Markdown, LaTeX and HTML, with the same bytes on every machine.

Precision rule
--------------
Every machine-readable output (the CSV tables, the cohort flow, the disclosure reports)
is written by :func:`write_csv`, which writes each float with :data:`FLOAT_DIGITS`
significant digits (``%.9g``), never as the full ``repr``. Computations keep full
precision; only the written text is rounded, here and nowhere else.

Why 9 digits: machines differ in their BLAS/LAPACK kernels and SIMD summation order, so
the last one or two of a float's 17 digits differ between CPUs (an ICC, a kappa CI or an
SD computed on one machine ends ``...436``, on another ``...437``). Rounding hides such a
difference unless the value lies within the difference of a rounding boundary. The tests
perturb every written float by a relative 1e-13 -- about a thousand times a real
cross-machine difference -- in both directions and require identical bytes; at 12
significant digits a +1e-13 perturbation changes 33 of the 895 non-integer floats in the
tables of notebooks 01-05, at 9 none does, and 9 digits is still far beyond any precision
a statistic of this study carries. The human-facing tables (Markdown, LaTeX, HTML and the formatted
CSV tables) keep their display precision (``42.04 (11.75)``, ``<0.001``).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Iterable

import pandas as pd

TABLE_FORMATS = ("csv", "md", "tex", "html")

#: Significant digits of every float written to a machine-readable output.
FLOAT_DIGITS = 9
FLOAT_FORMAT = f"%.{FLOAT_DIGITS}g"


def format_float(value: float) -> str:
    """A float as written to the machine-readable outputs (``FLOAT_DIGITS`` significant digits).

    Examples
    --------
    >>> format_float(6.366257342513436), format_float(126.0), format_float(7.77612283050009e-07)
    ('6.36625734', '126', '7.77612283e-07')
    """
    return FLOAT_FORMAT % value


def rounded_for_output(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every float, also floats inside text (object) columns, as written text.

    Float columns are left to ``to_csv(float_format=...)``; this handles the object columns
    that mix numbers and text (a published value next to a computed one), which pandas
    writes with ``repr``.
    """
    out = df.copy()
    for col in out.columns[out.dtypes == object]:
        out[col] = out[col].map(lambda v: format_float(v) if isinstance(v, float) and v == v else v)
    return out


def write_csv(df: pd.DataFrame, path, index: bool = False) -> None:
    """Write ``df`` as UTF-8 CSV with ``\\n`` line ends and floats at ``FLOAT_DIGITS`` digits.

    The one place where machine-readable outputs are written (see the module's precision
    rule). Missing values are empty cells.

    Examples
    --------
    >>> import io, pandas as pd
    >>> buf = io.StringIO()
    >>> write_csv(pd.DataFrame({"r": [0.9627883511042412], "n": [15]}), buf)
    >>> buf.getvalue()
    'r,n\\n0.962788351,15\\n'
    """
    rounded_for_output(df).to_csv(path, index=index, lineterminator="\n", float_format=FLOAT_FORMAT)


def html_page(table_html: str, caption: str | None = None) -> str:
    """A standalone UTF-8 HTML page holding ``table_html`` under its caption.

    Examples
    --------
    >>> page = html_page("<table></table>", "Table 9. Demo & test")
    >>> '<meta charset="utf-8">' in page, "<caption>Table 9. Demo &amp; test</caption>" in page
    (True, True)
    """
    title = html.escape(caption) if caption else ""
    if caption:
        table_html = table_html.replace(">", f">\n  <caption>{title}</caption>", 1)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{title}</title>",
        "<style>table {border-collapse: collapse; font-family: sans-serif; font-size: 0.9em}"
        " caption {font-weight: bold; text-align: left; padding: 0.4em 0}"
        " th, td {padding: 0.2em 0.6em; text-align: left; vertical-align: top}"
        " thead th {border-bottom: 1px solid #333}</style>",
        "</head>",
        "<body>",
        table_html,
        "</body>",
        "</html>",
        "",
    ])


def export_table(df, out_dir: str | Path, stem: str, formats: Iterable[str] = TABLE_FORMATS,
                 index: bool = False, caption: str | None = None) -> list[Path]:
    """Write ``df`` to ``out_dir/stem.<fmt>`` for each requested format.

    CSV goes through :func:`write_csv` (floats at ``FLOAT_DIGITS`` significant digits);
    Markdown is a GitHub pipe table; LaTeX uses booktabs; HTML is a standalone UTF-8 page.
    The caption heads the Markdown, LaTeX and HTML. Missing values are written as empty cells.

    Returns the list of files written.

    Examples
    --------
    >>> import pandas as pd
    >>> paths = export_table(pd.DataFrame({"a": [1]}), "/tmp", "demo", formats=["csv"])  # doctest: +SKIP
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        path = out / f"{stem}.{fmt}"
        if fmt == "csv":
            write_csv(df, path, index=index)
        elif fmt == "md":
            text = df.to_markdown(index=index, missingval="")
            if caption:
                text = f"**{caption}**\n\n{text}"
            path.write_text(text + "\n", encoding="utf-8")
        elif fmt == "tex":
            text = df.astype(object).fillna("").to_latex(index=index, caption=caption, escape=True)
            path.write_text(text, encoding="utf-8")
        elif fmt == "html":
            text = html_page(df.to_html(index=index, na_rep="", border=0), caption)
            path.write_text(text, encoding="utf-8")
        else:
            raise ValueError(f"unknown table format {fmt!r}; choose from {', '.join(TABLE_FORMATS)}")
        written.append(path)
    return written
