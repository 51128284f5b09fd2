"""Benchmarks: time and peak memory of each analysis stage at 10^3 .. 10^6 patients.

Every (size, stage) runs in a fresh Python subprocess, so its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is that stage's alone (plus the
interpreter, the libraries and its input). Inside the subprocess only the stage itself
is timed, in wall-clock seconds and in CPU time (user and system): imports and loading the
input (the raw exports for ``clean``, the cleaned cohort for the others) are not. Results
are printed as a table and written to ``benchmarks/results.csv``.

Usage
-----
$ .venv/bin/python benchmarks/bench.py                          # 1e3,1e4,1e5,1e6, 1 repeat
$ .venv/bin/python benchmarks/bench.py --sizes 1e3,1e4 --repeats 3
$ .venv/bin/python benchmarks/bench.py --sizes 1e5 --stages clean,table1
$ .venv/bin/python benchmarks/bench.py --sizes 1e3 --no-compare  # skip tableone / pingouin
$ .venv/bin/python benchmarks/bench.py --reproduce --sizes ""    # `run` vs trivial notebooks

Stages
------
generate   synthetic cohort drawn and its three exports written (``write_exports``)
clean      ``cohort.clean_raw`` on the written exports (read, identifier guard, harmonise,
           validate, link, derive, flow)
table1     ``table1.table1_long`` + ``table1.table1_tests``
table2     ``table2.table2_long`` + ``table2.table2_tests`` + ``table2.module_frequency``
figure     ``figure1.figure1_data`` + ``figure1_aggregate_data`` + ``module_heatmap_from_long``
agreement  ``agreement.table3`` + ``patient_level_agreement`` + ``internal_consistency`` +
           ``item_profile_correlation``
tableone   the ``tableone`` package building the same Table 1 (same variables, grouped by
           service type, with p-values); compared with ``table1``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STAGES = ("generate", "clean", "table1", "table2", "figure", "agreement")
COMPARE = ("tableone",)
#: the stages whose sum has the budget: 15 s and 3 GB at 10^6 patients, 3 s at 10^5
CORE = ("clean", "table1", "table2", "agreement")
SEED = 20170401


# --------------------------------------------------------------------------------------
# Child side: one stage in this process
# --------------------------------------------------------------------------------------
def _timed(fn, *args):
    """``(result, wall seconds, user CPU seconds, system CPU seconds)`` of ``fn(*args)``
    (CPU time of every thread of this process, from ``resource.getrusage``)."""
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    result = fn(*args)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return result, wall, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime


def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _table1_columns():
    from imr_analysis import table1

    variables = table1.TABLE1_VARIABLES
    columns = [v.column for v in variables]
    categorical = [v.column for v in variables if v.kind != "continuous"]
    return columns, categorical


def _tableone(cohort):
    """The same Table 1 with the tableone package (grouped by service type, p-values)."""
    import pandas as pd
    from tableone import TableOne

    columns, categorical = _table1_columns()
    data = cohort[columns + ["service_type"]].copy()
    for c in categorical:  # tableone wants plain object categories
        data[c] = data[c].astype(object)
    data["service_type"] = data["service_type"].astype(object)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning)
        return TableOne(data, columns=columns, categorical=categorical, groupby="service_type", pval=True,
                        missing=True)


def _stage_function(stage: str, workdir: Path):
    """``(prepare, run)``: ``prepare()`` loads the input (not timed), ``run(x)`` is timed."""
    import pandas as pd

    raw = workdir / "raw"
    cohort_path = workdir / "cohort.parquet"

    def load():
        return pd.read_parquet(cohort_path)

    if stage == "generate":
        from imr_synth.generator import write_exports
        n = int(workdir.name.split("_")[-1])
        return (lambda: None), (lambda _: write_exports(raw, seed=SEED, n_patients=n))
    if stage == "clean":
        import pandera.pandas  # noqa: F401  (the libraries clean_raw imports lazily: import not timed)
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401

        from imr_analysis import identifiers, sources  # noqa: F401
        from imr_analysis.cohort import clean_raw

        def run(_):
            result = clean_raw(raw, today="2025-01-01")
            return result

        return (lambda: None), run
    if stage == "table1":
        from imr_analysis import table1
        return load, lambda c: (table1.table1_long(c), table1.table1_tests(c))
    if stage == "table2":
        from imr_analysis import table2
        return load, lambda c: (table2.table2_long(c), table2.table2_tests(c), table2.module_frequency(c))
    if stage == "figure":
        from imr_analysis import figure1, table2
        return load, lambda c: (figure1.figure1_data(c), figure1.figure1_aggregate_data(c),
                                figure1.module_heatmap_from_long(table2.table2_long(c)))
    if stage == "agreement":
        from imr_analysis import agreement
        return load, lambda c: (agreement.table3(c), agreement.patient_level_agreement(c),
                                agreement.internal_consistency(c), agreement.item_profile_correlation(c))
    if stage == "tableone":
        import tableone  # noqa: F401  (import not timed)
        return load, _tableone
    raise SystemExit(f"unknown stage {stage!r}")


def child(stage: str, workdir: Path, repeats: int) -> None:
    """Run one stage ``repeats`` times; print one JSON line with its wall times, its CPU times
    (user and system, all threads) and peak memory."""
    import pingouin  # noqa: F401  heavy imports the stages make lazily: not timed
    import scipy.stats  # noqa: F401
    import statsmodels.api  # noqa: F401

    prepare, run = _stage_function(stage, workdir)
    data = prepare()
    rss_input = _maxrss_mb()
    times, user, system = [], [], []
    for _ in range(repeats):
        out, wall, cpu_user, cpu_system = _timed(run, data)  # CPU: all threads (pyarrow reads on two)
        times.append(wall)
        user.append(cpu_user)
        system.append(cpu_system)
    if stage == "clean":  # the cohort the other stages read
        out.cohort.to_parquet(workdir / "cohort.parquet")
    print(json.dumps({"seconds": times, "user_s": user, "sys_s": system, "peak_mb": _maxrss_mb(),
                      "input_mb": rss_input}))


# --------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------
def _run_child(stage: str, workdir: Path, repeats: int, timeout: float) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", stage,
                           "--workdir", str(workdir), "--repeats", str(repeats)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _parse_sizes(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    mem_gb = ""
    try:
        mem_gb = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024 ** 3:.0f}"
    except (ValueError, OSError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version()}


def _fmt_row(cols, widths):
    return "  ".join(str(c).rjust(w) for c, w in zip(cols, widths))


def bench_sizes(sizes, stages, repeats, workroot: Path, timeout: float) -> list[dict]:
    rows = []
    header = ["n_patients", "stage", "seconds", "min_s", "user_s", "sys_s", "peak_mb", "input_mb"]
    widths = [10, 13, 8, 8, 8, 8, 8, 8]
    print(_fmt_row(header, widths))
    for n in sizes:
        workdir = workroot / f"n_{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        wanted = [s for s in STAGES + COMPARE if s in stages]
        needs_cohort = any(s not in ("generate", "clean") for s in wanted)
        if needs_cohort and "clean" not in wanted and not (workdir / "cohort.parquet").exists():
            wanted.insert(0, "clean")
        if "clean" in wanted and "generate" not in wanted and not (workdir / "raw").exists():
            wanted.insert(0, "generate")
        for stage in wanted:
            res = _run_child(stage, workdir, 1 if stage == "generate" else repeats, timeout)
            row = {"n_patients": n, "stage": stage}
            if "error" in res:
                row.update(seconds="", min_s="", user_s="", sys_s="", peak_mb="", input_mb="", error=res["error"])
            else:
                t = res["seconds"]
                row.update(seconds=round(sum(t) / len(t), 3), min_s=round(min(t), 3),
                           user_s=round(sum(res["user_s"]) / len(t), 3), sys_s=round(sum(res["sys_s"]) / len(t), 3),
                           peak_mb=round(res["peak_mb"]), input_mb=round(res["input_mb"]), error="")
            rows.append(row)
            print(_fmt_row([row[h] for h in header], widths) + (f"  ERROR {row['error']}" if row["error"] else ""),
                  flush=True)
    return rows


def summarise(rows) -> None:
    by = {(r["n_patients"], r["stage"]): r for r in rows if r.get("seconds") != ""}
    for n in sorted({r["n_patients"] for r in rows if r["n_patients"] != ""}):
        core = [by.get((n, s)) for s in CORE]
        if all(core):
            total = sum(r["seconds"] for r in core)
            user, system = (sum(r[k] for r in core) for k in ("user_s", "sys_s"))
            peak = max(r["peak_mb"] for r in core)
            print(f"n={n}: clean + table1 + table2 + agreement = {total:.2f} s (CPU time: user {user:.2f} s, "
                  f"system {system:.2f} s), max peak {peak} MB")
        if (n, "table1") in by and (n, "tableone") in by:
            ours, theirs = by[(n, "table1")]["seconds"], by[(n, "tableone")]["seconds"]
            print(f"n={n}: Table 1 ours {ours:.3f} s, tableone {theirs:.3f} s, ours/theirs = {ours / theirs:.3f}")


# --------------------------------------------------------------------------------------
# Reproduce vs the floor of trivial notebooks
# --------------------------------------------------------------------------------------
_TRIVIAL_IMPORTS = """import matplotlib
import numpy as np
import pandas as pd
import pingouin
import scipy.stats
import seaborn
import statsmodels.api
import imr_analysis
from imr_analysis import agreement, bland_altman, cohort, disclosure, figure1, sources, stats, table1, table2"""


def _trivial_notebooks(folder: Path, names: list[str]) -> None:
    import nbformat

    for name in names:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = nbformat.v4.new_code_cell('raw_dir = ""')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}\n\nTrivial notebook (benchmark floor)."), params,
                    nbformat.v4.new_code_cell(_TRIVIAL_IMPORTS)]
        nbformat.write(nb, folder / name)


def bench_reproduce(workroot: Path, repeats: int) -> list[dict]:
    """Wall time of ``python -m imr_analysis run`` vs the same runner on trivial notebooks."""
    names = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    trivial = workroot / "trivial_notebooks"
    trivial.mkdir(parents=True, exist_ok=True)
    _trivial_notebooks(trivial, names)
    env = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "JUPYTER_PREFER_ENV_PATH": "1"}
    rows = []
    for label, extra in (("reproduce", []), ("reproduce_floor", ["--notebooks-dir", str(trivial)])):
        times = []
        for i in range(repeats):
            out = workroot / f"{label}_{i}"
            cmd = [sys.executable, "-m", "imr_analysis", "run", "--output-dir", str(out), *extra]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                print(f"{label}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        rows.append({"n_patients": "", "stage": label, "seconds": round(sum(times) / len(times), 3),
                     "min_s": round(min(times), 3), "user_s": "", "sys_s": "", "peak_mb": "", "input_mb": "",
                     "error": ""})
        print(f"{label:16s} {len(names)} notebooks: mean {sum(times) / len(times):.2f} s, min {min(times):.2f} s")
    ratio = rows[0]["seconds"] / rows[1]["seconds"]
    print(f"reproduce / floor = {ratio:.2f} (target <= 1.25)")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6", help="comma-separated cohort sizes ('' for none)")
    parser.add_argument("--stages", default=",".join(STAGES + COMPARE), help="comma-separated stages")
    parser.add_argument("--repeats", type=int, default=1, help="timed repetitions per stage (mean and min shown)")
    parser.add_argument("--no-compare", action="store_true", help="skip tableone")
    parser.add_argument("--reproduce", action="store_true",
                        help="also time `python -m imr_analysis run` against trivial notebooks")
    parser.add_argument("--workdir", default="", help="where cohorts are written (default: a temporary folder)")
    parser.add_argument("--out", default=str(HERE / "results.csv"), help="CSV of the results")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per stage")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, Path(args.workdir), args.repeats)
        return 0
    stages = [s for s in args.stages.split(",") if s]
    if args.no_compare:
        stages = [s for s in stages if s not in COMPARE]
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, Python {info['python']}")
    tmp = None
    if args.workdir:
        workroot = Path(args.workdir)
        workroot.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="imr_bench_")
        workroot = Path(tmp.name)
    try:
        rows = bench_sizes(_parse_sizes(args.sizes), stages, args.repeats, workroot, args.timeout)
        summarise(rows)
        if args.reproduce:
            rows += bench_reproduce(workroot, args.repeats)
    finally:
        if tmp is not None:
            tmp.cleanup()
    fields = ["n_patients", "stage", "seconds", "min_s", "user_s", "sys_s", "peak_mb", "input_mb", "error", "cpu",
              "cores"]
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "cpu": info["cpu"], "cores": info["cores"]})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
