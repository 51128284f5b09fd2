"""``benchmarks/bench.py`` end to end at 10^3 patients: the figures it prints and writes hang together."""

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_writes_wall_and_cpu_time_of_each_stage(tmp_path):
    """Every stage row has wall, user and system time and peak memory, consistent with each
    other; the summary names the core sum (clean + Table 1 + Table 2 + agreement)."""
    out = tmp_path / "results.csv"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--sizes", "1e3",
                           "--stages", "clean,table1,table2,agreement", "--workdir", str(tmp_path / "work"),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["stage"] for r in rows] == ["generate", "clean", "table1", "table2", "agreement"]
    cores = os.cpu_count() or 1
    for r in rows:
        assert r["n_patients"] == "1000" and r["error"] == "" and r["cores"] == str(cores)
        wall, user, system = float(r["seconds"]), float(r["user_s"]), float(r["sys_s"])
        assert wall > 0 and user >= 0 and system >= 0
        assert user + system <= wall * cores + 0.05  # rusage ticks are 10 ms at worst
        assert float(r["peak_mb"]) >= float(r["input_mb"]) > 0
    clean = next(r for r in rows if r["stage"] == "clean")
    assert float(clean["user_s"]) + float(clean["sys_s"]) > 0
    assert "n=1000: clean + table1 + table2 + agreement = " in proc.stdout
    assert "(CPU time: user " in proc.stdout


def test_explore_slice_prints_the_update_times_of_the_shipped_cohort():
    """``benchmarks/explore_slice.py`` on the 126 shipped patients: one row, times that hang together."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "explore_slice.py"), "--sizes", "126",
                           "--repeats", "1", "--changes", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.strip().splitlines()
    assert header.split()[:3] == ["patients", "first", "draw"] and "2 changes x 1" in header
    patients, first, median, fastest, slowest, cpu, compute, draw = row.split()
    assert patients == "126"
    assert 0 < float(fastest) <= float(median) <= float(slowest) and float(first) > 0 and float(cpu) > 0
    assert float(compute) > 0
