"""Export tidy tables as CSV, Markdown, LaTeX and HTML, deterministically."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

TABLE_FORMATS = ("csv", "md", "tex", "html")


def export_table(df, out_dir: str | Path, stem: str, formats: Iterable[str] = TABLE_FORMATS,
                 index: bool = False, caption: str | None = None) -> list[Path]:
    """Write ``df`` to ``out_dir/stem.<fmt>`` for each requested format.

    CSV is UTF-8 with ``\\n`` line endings; Markdown is a GitHub pipe table; LaTeX uses
    booktabs; HTML is a bare ``<table>``. Missing values are written as empty cells.

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
            df.to_csv(path, index=index, lineterminator="\n")
        elif fmt == "md":
            text = df.to_markdown(index=index, missingval="")
            if caption:
                text = f"**{caption}**\n\n{text}"
            path.write_text(text + "\n", encoding="utf-8")
        elif fmt == "tex":
            text = df.astype(object).fillna("").to_latex(index=index, caption=caption, escape=True)
            path.write_text(text, encoding="utf-8")
        elif fmt == "html":
            text = df.to_html(index=index, na_rep="", border=0)
            path.write_text(text + "\n", encoding="utf-8")
        else:
            raise ValueError(f"unknown table format {fmt!r}; choose from {', '.join(TABLE_FORMATS)}")
        written.append(path)
    return written
