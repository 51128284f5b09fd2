"""Time a slice update of the explorer (notebook 07): a control changes, Table 1, Table 2, Figure 1 and the agreement
summary are computed and drawn again (``imr_workflow.explore.Explorer.update``).

On the shipped cohort (126 patients) and on generated ones (``python -m imr_analysis synth`` then ``clean`` into a
work folder; kept with ``--workdir``), the explorer is built once (its first draw is timed apart), then each change of
:data:`CHANGES` is made ``--repeats`` times, as a reader would tick or untick a box or move the period; each change
runs one update. Printed per size: the first draw, the median, fastest and slowest update (wall-clock), the median
CPU time of an update (``time.process_time``: all threads; on a loaded machine the wall-clock time grows, the CPU
time hardly), and the median wall-clock time of its two parts, computing the four outputs (``slice_view``, which
draws the figure) and showing them (HTML tables, PNG).

Usage
-----
$ .venv/bin/python benchmarks/explore_slice.py                      # 126 and 10^5 patients
$ .venv/bin/python benchmarks/explore_slice.py --sizes 126 --repeats 3
$ .venv/bin/python benchmarks/explore_slice.py --sizes 1e5 --workdir /tmp/explore-bench
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = 20170401
SHIPPED = 126
#: The changes timed, in order: (control, value, new state). "period" moves the IMR start period to its first half,
#: then back.
CHANGES = [("services", "EDP", False), ("sex", "M", False), ("period", "first half", True),
           ("diagnosis_groups", "substance_use", False), ("diagnosis_groups", "substance_use", True),
           ("period", "first half", False), ("sex", "M", True), ("services", "EDP", True)]


def _cohort_folders(n: int, workdir: Path) -> tuple[Path, Path]:
    """``(raw, processed)`` of a cohort of ``n`` patients: the shipped one, or generated and cleaned in ``workdir``."""
    if n == SHIPPED:
        return ROOT / "data" / "raw", ROOT / "data" / "processed"
    raw, processed = workdir / f"n_{n}" / "raw", workdir / f"n_{n}" / "processed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not (processed / "cohort.parquet").exists():
        for args in (["synth", "--seed", str(SEED), "--n-patients", str(n), "--out", str(raw)],
                     ["clean", "--raw-dir", str(raw), "--processed-dir", str(processed)]):
            subprocess.run([sys.executable, "-m", "imr_analysis", *args], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL)
    return raw, processed


def _change(explorer, control: str, value: str, state: bool) -> None:
    if control == "period":
        last = len(explorer.months) - 1
        explorer.period.index = (0, last // 2) if state else (0, last)
    else:
        explorer.boxes[control][value].value = state


def bench_size(n: int, workdir: Path, repeats: int, changes: int = len(CHANGES),
               n_resamples: int | None = None) -> dict:
    """Time the explorer on a cohort of ``n`` patients (the first ``changes`` of :data:`CHANGES`, ``repeats`` times;
    ``n_resamples``: the explorer's, default its own); return the figures in seconds."""
    import contextlib
    import io

    from imr_analysis import publish
    from imr_analysis.cohort import load_cohort
    from imr_workflow import explore

    raw, processed = _cohort_folders(n, workdir)
    with contextlib.redirect_stdout(io.StringIO()):
        run = publish.setup("07_explore", raw_dir=str(raw), processed_dir=str(processed))
    cohort = load_cohort(processed)
    t0 = time.perf_counter()
    explorer = explore.Explorer(cohort, run, n_resamples=n_resamples or explore.N_RESAMPLES)
    first = time.perf_counter() - t0
    updates, cpu, computes = [], [], []
    for _ in range(repeats):
        for control, value, state in CHANGES[:changes]:
            t0, c0 = time.perf_counter(), time.process_time()
            _change(explorer, control, value, state)
            updates.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            t0 = time.perf_counter()  # the computing part alone, for the same selection
            explore.slice_view(cohort, run, explorer.criteria(), **explorer.settings)
            computes.append(time.perf_counter() - t0)
    return {"patients": len(cohort), "first": first, "median": statistics.median(updates), "min": min(updates),
            "max": max(updates), "cpu": statistics.median(cpu), "compute": statistics.median(computes),
            "draw": statistics.median(updates) - statistics.median(computes), "updates": len(updates)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="126,1e5", help="cohort sizes, comma-separated (126: the shipped cohort)")
    parser.add_argument("--repeats", type=int, default=2, help="times each change of CHANGES is made (default 2)")
    parser.add_argument("--changes", type=int, default=len(CHANGES),
                        help=f"time only the first CHANGES changes (default all {len(CHANGES)})")
    parser.add_argument("--n-resamples", type=int, help="the explorer's resamples (default its own, 1000)")
    parser.add_argument("--workdir", help="where generated cohorts are written and reused (default: a temporary "
                                          "folder, removed)")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="imr-explore-bench-")
    workdir = Path(args.workdir or tmp.name)
    try:
        print(f"{'patients':>9} {'first draw':>10} {'update median':>13} {'min':>6} {'max':>6} {'CPU':>6} "
              f"{'compute':>8} {'draw':>6}  (seconds; {args.changes} changes x {args.repeats})")
        for n in sizes:
            r = bench_size(n, workdir, args.repeats, args.changes, args.n_resamples)
            print(f"{r['patients']:>9} {r['first']:>10.2f} {r['median']:>13.2f} {r['min']:>6.2f} {r['max']:>6.2f} "
                  f"{r['cpu']:>6.2f} {r['compute']:>8.2f} {r['draw']:>6.2f}", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
