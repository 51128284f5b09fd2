"""Aggregate bundles: what a department's run shares for pooling, and reading a folder of them (notebook 08).

A bundle is a folder holding the disclosure-controlled tables the reproduction audit reads
(:data:`TABLES`, each with its CSVW sidecar), as notebooks 02, 03 and 05 published them; the run's
colophon without the folders of the machine it ran on (``colophon.json``); and ``manifest.json``:
format and version, department, data mode, the disclosure profile applied, the ``alpha`` of the
intervals and the SHA-256 of every other file. :func:`write_bundle` copies the files after the
notebooks (it computes nothing) and keeps the bundle only if the identifier scan finds nothing;
:func:`read_bundles` validates each bundle of a folder and reads its tables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd

from imr_analysis import paths, reproduce
from imr_analysis.sources import detect_data_mode, marked_departments
from imr_workflow.colophon import shareable_colophon
from imr_workflow.scan import format_finding, scan_paths

FORMAT, FORMAT_VERSION = "IMR compendium aggregate bundle", 1
#: The tables of a bundle (``<name>.csv`` and ``<name>.csv-metadata.json``) and the notebooks writing them.
TABLES = dict(reproduce.OUTPUTS)
SHIPPED, UNNAMED = "shipped-synthetic", "unnamed-department"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class BundleError(ValueError):
    """A bundle that cannot be written or read; the message names the bundle and the problem."""


@dataclasses.dataclass
class Bundle:
    """One department's bundle as read: ``name`` (its department), ``folder``, ``manifest``, the disclosure profile
    and ``alpha`` it records, and ``outputs``, its tables (:func:`imr_analysis.reproduce.read_outputs`)."""

    name: str
    folder: Path
    manifest: dict
    outputs: dict

    @property
    def alpha(self) -> float:
        return float(self.manifest["alpha"])

    @property
    def data_mode(self) -> str:
        return self.manifest["data_mode"]


def department_name(raw_dir, data_mode: str, department: str | None = None) -> str:
    """A bundle's department: ``department`` if given, else the ``department=NAME`` of the synthetic exports'
    marker, else :data:`SHIPPED` (synthetic) or :data:`UNNAMED` (private data: pass a name)."""
    if department is None and data_mode == "synthetic":
        names = marked_departments(raw_dir)
        if len(names) > 1:
            raise BundleError(f"the exports in {raw_dir} name different departments: {sorted(map(str, names))}")
        department = (names.pop() if names else None) or SHIPPED
    name = department or UNNAMED
    if not _NAME.fullmatch(name):
        raise BundleError(f"department name {name!r}: use 1-64 letters, digits, '.', '_' or '-' (it names a folder)")
    return name


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(tables_dir, bundle_dir, *, department: str, colophon: dict, alpha: float) -> Path:
    """Write the bundle of the run whose outputs are in ``tables_dir`` to ``bundle_dir`` (replaced if it holds a
    bundle); ``colophon``: the run's (:func:`imr_workflow.colophon.build_colophon`). Returns the manifest's path.

    Raises :class:`BundleError` when a table is missing, the folder holds something else, or the identifier scan
    finds anything (the bundle is then removed).
    """
    tables, folder = Path(tables_dir), Path(bundle_dir)
    names = [f"{t}{suffix}" for t in TABLES for suffix in (".csv", ".csv-metadata.json")]
    if missing := [n for n in names if not (tables / n).is_file()]:
        raise BundleError(f"no bundle: {', '.join(missing)} missing in {tables} (run notebooks "
                          f"{', '.join(sorted(set(TABLES.values())))} first)")
    if folder.exists() and any(folder.iterdir()) and not (folder / "manifest.json").is_file():
        raise BundleError(f"{folder} exists and is not a bundle: not replaced")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in names:
        shutil.copyfile(tables / name, folder / name)
    _write_json(folder / "colophon.json", shareable_colophon(colophon))
    if findings := scan_paths([folder]):
        shutil.rmtree(folder)
        raise BundleError(f"bundle not written: the identifier scan found {len(findings)} suspected direct "
                          "identifier(s):\n  " + "\n  ".join(map(format_finding, findings[:10])))
    files = {p.name: _sha256(p) for p in sorted(folder.iterdir())}
    return _write_json(folder / "manifest.json", {
        "format": FORMAT, "format_version": FORMAT_VERSION, "department": department,
        "data_mode": colophon["data_mode"], "disclosure": colophon["disclosure"], "alpha": alpha,
        "compendium_commit": colophon["git_commit"], "files": files})


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")
    return path


def read_bundle(folder) -> Bundle:
    """Read and validate one bundle: its manifest (format, version, fields), that it lists exactly the files
    present, their SHA-256 and the tables; a :class:`BundleError` names the bundle and the problem."""
    folder = Path(folder)
    where = f"bundle {folder.name}"
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BundleError(f"{where}: cannot read manifest.json: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{where}: manifest.json is not an {FORMAT!r} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{where}: format version {manifest.get('format_version')!r}; this compendium reads "
                          f"version {FORMAT_VERSION}")
    if missing := [k for k in ("department", "data_mode", "disclosure", "alpha", "files") if k not in manifest]:
        raise BundleError(f"{where}: manifest.json lacks {', '.join(missing)}")
    if manifest["data_mode"] not in ("synthetic", "private"):
        raise BundleError(f"{where}: data_mode {manifest['data_mode']!r}; expected 'synthetic' or 'private'")
    listed = dict(manifest["files"])
    present = {p.name for p in folder.iterdir() if p.name != "manifest.json" and not p.name.startswith(".")}
    if problems := ([f"{n}: listed in the manifest but missing" for n in sorted(set(listed) - present)]
                    + [f"{n}: present but not in the manifest" for n in sorted(present - set(listed))]
                    + [f"{n}: SHA-256 differs from the manifest's (changed after the bundle was written)"
                       for n in sorted(set(listed) & present) if _sha256(folder / n) != listed[n]]
                    + [f"{t}.csv: required table missing" for t in TABLES if f"{t}.csv" not in listed]):
        raise BundleError(f"{where}: " + "; ".join(problems))
    return Bundle(str(manifest["department"]), folder, manifest, reproduce.read_outputs(folder))


def read_bundles(folder) -> list[Bundle]:
    """Every bundle of ``folder`` (its subfolders holding a ``manifest.json``, or ``folder`` itself), sorted by
    department; refuses a folder without bundles, two bundles of one department, and synthetic bundles mixed with
    private ones."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"bundles folder not found: {folder}")
    found = [folder] if (folder / "manifest.json").is_file() else sorted(
        p for p in folder.iterdir() if (p / "manifest.json").is_file())
    if not found:
        raise BundleError(f"no bundles in {folder}: expected one subfolder per department, each with a manifest.json")
    bundles = sorted((read_bundle(p) for p in found), key=lambda b: b.name)
    if dup := sorted({b.name for b in bundles if [c.name for c in bundles].count(b.name) > 1}):
        raise BundleError(f"{folder}: more than one bundle of department(s) {', '.join(dup)}")
    modes = {m: [b.name for b in bundles if b.data_mode == m] for m in ("synthetic", "private")}
    if all(modes.values()):
        raise BundleError(f"{folder} mixes synthetic bundles ({', '.join(modes['synthetic'])}) with private ones "
                          f"({', '.join(modes['private'])}): pool real departments without synthetic ones")
    return bundles


def open_bundles(bundles_dir="", raw_dir="", tables_dir="", figures_dir="") -> list[Bundle]:
    """Notebook 08's bundles: those of ``bundles_dir`` (``""``: the shipped ``data/bundles`` on synthetic data; on
    private data nothing, since the shipped synthetic bundles are never pooled with a department's run).

    Pooled estimates of private bundles are refused in the compendium's own ``tables/`` and ``figures/``.
    """
    mode = detect_data_mode(paths.resolve(raw_dir, paths.raw_dir()))
    if not bundles_dir and mode != "synthetic":
        print(f"{mode} data and no bundles_dir: nothing pooled. The shipped bundles are synthetic and are not pooled "
              "with a department's data; give a folder of departments' bundles with -p bundles_dir DIR.")
        return []
    bundles = read_bundles(paths.resolve(bundles_dir, paths.bundles_dir()))
    committed = [paths.output_folder(d, default) == default
                 for d, default in ((tables_dir, paths.tables_dir()), (figures_dir, paths.figures_dir()))]
    if any(b.data_mode == "private" for b in bundles) and any(committed):
        raise BundleError("private bundles: their pooled estimates are not written to the compendium's tables/ and "
                          "figures/; run with --output-dir DIR (or set tables_dir and figures_dir)")
    return bundles


def summary(bundles: list[Bundle]) -> pd.DataFrame:
    """One row per bundle: department, data mode, disclosure profile, alpha, patients (as its Table 2 publishes)."""
    rows = []
    for b in bundles:
        t2 = b.outputs["table2_long"]
        total = t2.loc[(t2["level"] == "total") & (t2["measure"] == "patients"), "n"]
        rows.append({"department": b.name, "data_mode": b.data_mode, "disclosure_profile":
                     b.manifest["disclosure"].get("profile"), "alpha": b.alpha,
                     "patients": total.iloc[0] if len(total) else float("nan"), "commit":
                     str(b.manifest.get("compendium_commit", ""))[:12]})
    return pd.DataFrame(rows, columns=["department", "data_mode", "disclosure_profile", "alpha", "patients", "commit"])

