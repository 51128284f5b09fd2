"""``python -m imr_analysis scan PATH...``: look for direct identifiers before sharing.

Scans data files, tables, figures (SVG text) and notebooks (cell sources and text
outputs) with the patterns of :mod:`imr_analysis.identifiers`; CSV/TSV files are also
checked column by column (names, full dates of birth, identifier headers). Prints
``path:line: kind (masked value) [where; why]`` for each finding and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from imr_analysis.identifiers import KINDS, PATTERNS, Finding, find_all, find_identifier_columns, mask_value

#: Files scanned when a folder is walked.
SCAN_EXTENSIONS = (".csv", ".tsv", ".txt", ".md", ".tex", ".html", ".htm", ".svg", ".json", ".ipynb")
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis",
             "node_modules", ".mypy_cache", ".ruff_cache"}
_BASE64 = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")
#: SVG geometry (path data are numbers that look like phone numbers); text is kept.
_SVG_GEOMETRY = re.compile(r"""\s(?:d|points|transform|viewBox|style|x|y|x1|x2|y1|y2|dx|dy|width|height|cx|cy|r|"""
                           r"""rx|ry|offset|stroke-dasharray|clip-path|xlink:href|href|id)\s*=\s*(?:"[^"]*"|'[^']*')""")


def _blank(pattern: re.Pattern, text: str) -> str:
    """Replace what ``pattern`` matches by spaces, keeping offsets and line breaks."""
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def format_finding(f: Finding) -> str:
    """``path:line: kind (masked value) [column; location; detail]``, as the command prints it."""
    where = ([f"column {f.column!r}"] if f.column is not None else []) + [x for x in (f.location, f.detail) if x]
    return f"{f.path}:{f.line or 0}: {f.kind} ({f.masked or 'header'})" + (f" [{'; '.join(where)}]" if where else "")


def scan_text(text: str, path: str = "<text>", location: str = "") -> list[Finding]:
    """Fiscal codes, e-mails, phone numbers and street addresses in free text (base64 payloads
    skipped), with 1-based line numbers, in order of appearance.

    Examples
    --------
    >>> [f.kind for f in scan_text("contact: mario.rossi@asl.fe.it, Via Roma 12")]
    ['email', 'address']
    >>> scan_text("EF12345;F20.0;N05AH04;12/03/2018")
    []
    """
    text = _blank(_BASE64, text)
    found = sorted((pos, KINDS.index(kind), kind, value) for kind in PATTERNS for pos, value in find_all(kind, text))
    return [Finding(path, kind, mask_value(value, kind), line=text.count("\n", 0, pos) + 1, location=location)
            for pos, _, kind, value in found]


def _notebook_texts(nb: dict) -> Iterator[tuple[str, str]]:
    """``(location, text)`` of each cell source and text output of a notebook."""
    def joined(x):
        return "".join(x) if isinstance(x, list) else x if isinstance(x, str) else json.dumps(x)

    for i, cell in enumerate(nb.get("cells", []), start=1):
        yield f"cell {i}, source", joined(cell.get("source", ""))
        for j, out in enumerate(cell.get("outputs", []), start=1):
            where = f"cell {i}, output {j}"
            if out.get("output_type") == "stream":
                yield f"{where}, {out.get('name', 'stream')}", joined(out.get("text", ""))
            elif out.get("output_type") == "error":
                yield f"{where}, error", "\n".join([out.get("ename", ""), out.get("evalue", ""),
                                                    *out.get("traceback", [])])
            for mime, payload in sorted(out.get("data", {}).items()):  # text outputs; images are skipped
                if mime.startswith("text/") or mime.endswith(("json", "svg+xml")):
                    text = joined(payload)
                    yield f"{where}, {mime}", _blank(_SVG_GEOMETRY, text) if "<svg" in text else text


def _scan_notebook(raw: str, path: str) -> list[Finding]:
    """Each cell source and text output; the line is the first line of the .ipynb holding the value."""
    lines = raw.splitlines()
    findings = []
    for location, text in _notebook_texts(json.loads(raw)):
        for kind in PATTERNS:
            for _, value in find_all(kind, _blank(_BASE64, text)):
                line = next((n for n, line in enumerate(lines, start=1) if value in line), 0)
                findings.append(Finding(path, kind, mask_value(value, kind), line=line, location=location))
    return sorted(findings, key=lambda f: (f.line, KINDS.index(f.kind)))


def _scan_columns(text: str, path: str, sep: str | None) -> list[Finding]:
    """Column checks of a CSV/TSV file (after its ``#`` comment lines); lines are the file's."""
    lines = text.splitlines()
    skip = next((i for i, line in enumerate(lines) if not line.lstrip().startswith("#")), len(lines))
    if skip == len(lines):
        return []
    if sep is None:
        sep = max((",", ";", "\t", "|"), key=lines[skip].count)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, skiprows=skip, dtype=str, on_bad_lines="skip")
    except (ValueError, pd.errors.ParserError):
        return []
    return [dataclasses.replace(f, line=skip + 1 + (0 if f.detail.startswith("header") else f.row))
            for f in find_identifier_columns(df, path)]


def scan_file(path: str | os.PathLike) -> list[Finding] | None:
    """Scan one file as text (CSV/TSV also by column, notebooks by cell); ``None`` if it is binary."""
    p = Path(path)
    data = p.read_bytes()
    if b"\x00" in data[:8192]:
        return None
    text, name, suffix = data.decode("utf-8", errors="replace"), str(path), p.suffix.lower()
    if suffix == ".ipynb":
        return _scan_notebook(text, name)
    if suffix == ".svg" or (suffix in (".html", ".htm") and "<svg" in text):
        text = _blank(_SVG_GEOMETRY, text)
    findings = scan_text(text, name)
    if suffix in (".csv", ".tsv"):
        seen = {f.kind for f in findings}
        findings += [f for f in _scan_columns(text, name, "\t" if suffix == ".tsv" else None) if f.kind not in seen]
        findings.sort(key=lambda f: (f.line, KINDS.index(f.kind)))
    return findings


def iter_files(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Files as given; folders walked in sorted order, skipping tool folders (.git, .venv,
    .ipynb_checkpoints ...) and keeping :data:`SCAN_EXTENSIONS`."""
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if path.is_file():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
            yield from (Path(root) / f for f in sorted(files) if Path(f).suffix.lower() in SCAN_EXTENSIONS)


def scan_paths(paths: Iterable[str | os.PathLike]) -> list[Finding]:
    """Scan files and folders for direct identifiers; findings in file, then line order."""
    return [f for p in iter_files(paths) for f in scan_file(p) or []]


def main(argv: list[str] | None = None) -> int:
    """Print the findings under the given paths; exit status 1 if any, 2 for a missing path."""
    parser = argparse.ArgumentParser(
        prog="python -m imr_analysis scan",
        description="Scan data files, tables, figures and notebooks (sources and outputs) for direct identifiers: "
                    "Italian fiscal codes, e-mails, phone numbers, street addresses, person names and full dates of "
                    "birth in CSV columns. Exit status 1 if any is found.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to scan")
    args = parser.parse_args(argv)
    try:
        results = [r for r in map(scan_file, iter_files(args.paths)) if r is not None]
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    findings = [f for r in results for f in r]
    for f in findings:
        print(format_finding(f))
    if findings:
        print(f"{len(findings)} suspected direct identifier(s) in {len({f.path for f in findings})} "
              f"of {len(results)} files")
        return 1
    print(f"no direct identifiers found in {len(results)} files")
    return 0
