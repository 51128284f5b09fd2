"""Figures written byte for byte the same on every run: PDF without its dates, SVG with a fixed hash salt."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

import matplotlib
from IPython.display import Image

FIGURE_FORMATS = ("png", "pdf", "svg")
_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
}


def setup_matplotlib() -> None:
    """Use the non-interactive Agg backend and pin the settings that affect bytes."""
    matplotlib.use("Agg", force=False)
    matplotlib.rcParams["svg.hashsalt"] = "imr-compendium"
    matplotlib.rcParams["svg.fonttype"] = "path"
    matplotlib.rcParams["pdf.fonttype"] = 42
    matplotlib.rcParams["font.family"] = "DejaVu Sans"


def save_figure(fig, out_dir: str | Path, stem: str, formats: Iterable[str] = FIGURE_FORMATS,
                dpi: int = 300) -> list[Path]:
    """Save ``fig`` as ``out_dir/stem.<format>`` for each of ``formats`` (png, pdf, svg); return the paths."""
    setup_matplotlib()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        if fmt not in FIGURE_FORMATS:
            raise ValueError(f"unknown figure format {fmt!r}; choose from {', '.join(FIGURE_FORMATS)}")
        path = out / f"{stem}.{fmt}"
        fig.savefig(path, format=fmt, dpi=dpi, metadata=_METADATA[fmt], bbox_inches="tight")
        written.append(path)
    return written


def preview(fig, dpi: int = 100) -> Image:
    """A PNG of ``fig`` at a modest resolution, to show in a notebook (saved files keep theirs)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata=_METADATA["png"])
    return Image(data=buf.getvalue())
