"""How every notebook shows a table: :func:`display_table`, one look, as ``tables/*.html`` reads.

No row index (a named index, such as a grouping, becomes the first columns), every cell text, left
aligned and wrapped, never cut; p-values as the exported tables print them (``<0.001``, else three
decimals: :func:`imr_analysis.table1.format_p`), whole numbers as integers (``126``, not ``126.000``),
other numbers with :data:`imr_analysis.export.HTML_PRECISION` decimals, never in scientific notation;
the first column stays in view when a wide table scrolls.

It is drawn with pandas' Styler: no new dependency, and static HTML with a fixed id (derived from the
table's caption and columns), so nbval finds the same bytes on every run. great_tables draws finer
tables but is one more dependency for what the Styler does here; itables would add sorting and
searching, handy for the long tables, but ships a JavaScript bundle and draws random element ids on
every run, which nbval would flag as changed outputs.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
from pandas.io.formats.style import Styler

from imr_analysis.export import HTML_PRECISION
from imr_analysis.table1 import format_p

#: Columns holding p-values: ``p``, ``p_value``, ``p_welch``, ``kappa_linear_p``...
P_COLUMN = re.compile(r"^p$|^p_|_p$")
STYLES = [("", "border-collapse: collapse; table-layout: auto; font-size: 0.9em; font-family: sans-serif"),
          ("caption", "font-weight: bold; text-align: left; padding: 0.4em 0"),
          ("th, td", "text-align: left; vertical-align: top; padding: 0.2em 0.5em; white-space: normal;"
                     " max-width: 32em; overflow-wrap: break-word"),
          ("thead th", "border-bottom: 1px solid #333"),
          ("th:first-child, td:first-child", "position: sticky; left: 0; background: var(--jp-layout-color0, #fff)")]
NOTES_STYLE = "font-size: 0.8em; max-width: 60em"


def format_cell(value, p: bool = False) -> str:
    """A cell as shown: text as given; a p-value as :func:`~imr_analysis.table1.format_p`; a whole
    number as an integer; another number with :data:`~imr_analysis.export.HTML_PRECISION` decimals.

    Examples
    --------
    >>> [format_cell(v) for v in (126.0, 0.96278835, 1.5e-07, float("nan"), None, "[REDACTED]", True)]
    ['126', '0.9628', '0.0000', '', '', '[REDACTED]', 'True']
    >>> format_cell(9.999e-05, p=True), format_cell(0.31403, p=True)
    ('<0.001', '0.314')
    """
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (bool, str)) or not pd.api.types.is_number(value):
        return str(value)
    if p:
        return format_p(value)
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.{HTML_PRECISION}f}"


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as the text shown: a named index as columns, then each cell by :func:`format_cell`."""
    if any(name is not None for name in df.index.names):
        df = df.reset_index()
    return pd.DataFrame({c: [format_cell(v, bool(P_COLUMN.search(str(c)))) for v in df[c]] for c in df.columns},
                        columns=[str(c) for c in df.columns])


@dataclass(frozen=True)
class DisplayedTable:
    """What :func:`display_table` returns: Jupyter shows ``html``; its plain text is ``text``."""

    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def display_table(df: pd.DataFrame, caption: str | None = None, notes: Sequence[str] = ()) -> DisplayedTable:
    """``df`` as every notebook shows a table (module docstring); ``caption`` above, ``notes`` below.

    Examples
    --------
    >>> shown = display_table(pd.DataFrame({"variable": ["sex"], "n": [126.0], "p_value": [9.999e-05]}))
    >>> print(repr(shown))
    variable   n p_value
         sex 126  <0.001
    >>> "<th" in shown.html and "&lt;0.001" in shown.html and ">0<" not in shown.html  # no row index
    True
    """
    text = as_text(df)
    uuid = hashlib.sha256(repr((caption, list(text.columns), text.shape)).encode()).hexdigest()[:10]
    styler = Styler(text, uuid=uuid, cell_ids=False).hide(axis="index").format(escape="html")
    styler = styler.format_index(escape="html", axis=1).set_table_styles(
        [{"selector": s, "props": p} for s, p in STYLES])
    if caption:
        styler = styler.set_caption(html.escape(caption))
    body = styler.to_html() + "".join(f'<p style="{NOTES_STYLE}">{html.escape(n, quote=False)}</p>\n' for n in notes)
    plain = text.to_string(index=False) if len(text) else "  ".join(text.columns) + "\n(no rows)"
    return DisplayedTable(body, "\n".join([caption or "", plain, *notes]).strip("\n"))
