"""Write tables as CSV, Markdown, LaTeX and HTML, with the same bytes on every machine.

Precision rule: every machine-readable output (CSV tables, cohort flow, disclosure reports)
is written by :func:`write_csv`, each float with :data:`FLOAT_DIGITS` significant digits
(``%.9g``); computations keep full precision. Machines differ in the last one or two of a
float's 17 digits (BLAS kernels, SIMD summation order); the tests perturb every written float
by a relative 1e-13 in both directions and require identical bytes. The human-facing tables
(Markdown, LaTeX, HTML) keep their display precision (``42.04 (11.75)``, ``<0.001``); the floats
of HTML and LaTeX get :data:`HTML_PRECISION` and :data:`LATEX_PRECISION` decimals whatever pandas says.

Notes (what each test, denominator or setting is) go under the table in Markdown, LaTeX and HTML; a
CSV keeps them out of its rows, in the W3C CSV-on-the-Web sidecar ``<stem>.csv-metadata.json`` (where
CSVW tools look for a CSV's metadata; ``dc:title`` the caption, ``dc:description`` the notes).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

TABLE_FORMATS = ("csv", "md", "tex", "html")
FLOAT_DIGITS = 9  #: significant digits of every float written to a machine-readable output
FLOAT_FORMAT = f"%.{FLOAT_DIGITS}g"
HTML_PRECISION = 4  #: decimals of the floats of the HTML tables
LATEX_PRECISION = 6  #: decimals of the floats of the LaTeX tables (pandas' default)
_HTML_STYLE = ("table {border-collapse: collapse; font-family: sans-serif; font-size: 0.9em}"
               " caption {font-weight: bold; text-align: left; padding: 0.4em 0}"
               " th, td {padding: 0.2em 0.6em; text-align: left; vertical-align: top}"
               " thead th {border-bottom: 1px solid #333} p.notes {font-size: 0.8em; max-width: 60em}")
_TEX_ESCAPES = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                              "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"})


def format_float(value: float) -> str:
    """A float as written to the machine-readable outputs.

    Examples
    --------
    >>> format_float(6.366257342513436), format_float(126.0), format_float(7.77612283050009e-07)
    ('6.36625734', '126', '7.77612283e-07')
    """
    return FLOAT_FORMAT % value


def write_csv(df: pd.DataFrame, path, index: bool = False) -> None:
    """Write ``df`` as UTF-8 CSV, ``\\n`` line ends, floats (also in text columns) at ``FLOAT_DIGITS`` digits.

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO()
    >>> write_csv(pd.DataFrame({"r": [0.9627883511042412], "n": [15]}), buf)
    >>> buf.getvalue()
    'r,n\\n0.962788351,15\\n'
    """
    out = df.copy()
    for col in out.columns[out.dtypes == object]:  # numbers mixed with text: pandas writes their repr
        out[col] = out[col].map(lambda v: format_float(v) if isinstance(v, float) and v == v else v)
    out.to_csv(path, index=index, lineterminator="\n", float_format=FLOAT_FORMAT)


def html_page(table_html: str, caption: str | None = None, notes: Sequence[str] = ()) -> str:
    """A standalone UTF-8 HTML page holding ``table_html`` under its caption, the ``notes`` below."""
    title = html.escape(caption) if caption else ""
    if caption:
        table_html = table_html.replace(">", f">\n  <caption>{title}</caption>", 1)
    return "\n".join(["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
                      f"<title>{title}</title>", f"<style>{_HTML_STYLE}</style>", "</head>", "<body>", table_html,
                      *[f'<p class="notes">{html.escape(n, quote=False)}</p>' for n in notes], "</body>", "</html>", ""])


def export_table(df, out_dir: str | Path, stem: str, formats: Iterable[str] = TABLE_FORMATS,
                 index: bool = False, caption: str | None = None, notes: Sequence[str] = ()) -> list[Path]:
    """Write ``df`` to ``out_dir/stem.<fmt>`` for each format; return the paths.

    CSV goes through :func:`write_csv`; Markdown is a pipe table, LaTeX uses booktabs, HTML is
    a standalone page; the caption heads all but the CSV, the ``notes`` (sentences) follow the
    table, for a CSV in its sidecar ``stem.csv-metadata.json``. Missing values are empty cells.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        path = out / f"{stem}.{fmt}"
        if fmt == "csv":
            write_csv(df, path, index=index)
            if notes:  # the CSV, then its sidecar
                meta = {"@context": "http://www.w3.org/ns/csvw", "url": path.name, "dc:title": caption or stem,
                        "dc:description": list(notes)}
                written.append(path)
                path = out / f"{stem}.csv-metadata.json"
                path.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        elif fmt == "md":
            # text cells print as formatted ("0.00" stays "0.00"); numbers as tabulate formats them
            text_columns = [i + bool(index) for i, c in enumerate(df.columns) if not pd.api.types.is_numeric_dtype(df[c])]
            text = df.to_markdown(index=index, missingval="", disable_numparse=text_columns) + "".join(
                f"\n\n{n}" for n in notes)
            path.write_text((f"**{caption}**\n\n" if caption else "") + text + "\n", encoding="utf-8")
        elif fmt == "tex":
            with pd.option_context("styler.format.precision", LATEX_PRECISION):  # to_latex reads it for floats
                text = df.astype(object).fillna("").to_latex(index=index, caption=caption, escape=True)
            if notes:  # in a group: the small type ends with the notes, in a table environment or not
                text = text.replace("\\end{tabular}\n", "\\end{tabular}\n\\par{\\footnotesize "
                                    + "\n".join(n.translate(_TEX_ESCAPES) for n in notes) + "\\par}\n")
            path.write_text(text, encoding="utf-8")
        elif fmt == "html":
            with pd.option_context("display.precision", HTML_PRECISION):  # to_html reads it for floats
                text = df.to_html(index=index, na_rep="", border=0)
            path.write_text(html_page(text, caption, notes), encoding="utf-8")
        else:
            raise ValueError(f"unknown table format {fmt!r}; choose from {', '.join(TABLE_FORMATS)}")
        written.append(path)
    return written
