"""The benchmark records the memory settings its stages run with.

Stage times at 10^6 patients depend on pyarrow's memory pool and on numpy's huge-page
advice (benchmarks/README.md, "Memory settings"), both chosen by environment variables
that the stage subprocesses inherit. Each row of results.csv says which were in effect.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench
    finally:
        sys.path.pop(0)
    return bench


def _allocation(**env) -> str:
    """``bench.allocation()`` in a new interpreter with the given environment variables
    (numpy and pyarrow read them when they are imported)."""
    clean_env = {k: v for k, v in os.environ.items()
                 if k not in ("ARROW_DEFAULT_MEMORY_POOL", "NUMPY_MADVISE_HUGEPAGE")}
    code = "import sys; sys.path.insert(0, 'benchmarks'); import bench; print(bench.allocation())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**clean_env, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_allocation_reports_the_settings_in_effect():
    assert _allocation(ARROW_DEFAULT_MEMORY_POOL="system", NUMPY_MADVISE_HUGEPAGE="0").startswith(
        "arrow pool system; numpy huge pages off; THP ")
    assert _allocation(ARROW_DEFAULT_MEMORY_POOL="system", NUMPY_MADVISE_HUGEPAGE="1").startswith(
        "arrow pool system; numpy huge pages on; THP ")
    import pyarrow

    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:  # else this process's pool is not the default
        default = _allocation().split("; ")[0]
        assert default == f"arrow pool {pyarrow.default_memory_pool().backend_name}"


@pytest.mark.skipif(not Path("/sys/kernel/mm/transparent_hugepage/enabled").exists(),
                    reason="no transparent huge pages on this kernel")
def test_thp_mode_is_the_bracketed_choice():
    bench = _bench()
    text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    mode = bench._thp_mode("enabled")
    assert f"[{mode}]" in text and mode in {"always", "madvise", "never"}


def _fake_sys(root: Path, features: str, driver: str = "virtio_balloon", order: str | None = "9") -> Path:
    """A minimal /sys with one virtio device bound to ``driver``."""
    drv = root / "bus" / "virtio" / "drivers" / driver
    drv.mkdir(parents=True)
    dev = root / "bus" / "virtio" / "devices" / "virtio0"
    dev.mkdir(parents=True)
    (dev / "driver").symlink_to(drv)
    (dev / "features").write_text(features + "\n")
    if order is not None:
        params = root / "module" / "page_reporting" / "parameters"
        params.mkdir(parents=True)
        (params / "page_reporting_order").write_text(order + "\n")
    return root


@pytest.mark.parametrize("features, driver, order, expected", [
    ("0110010100000000", "virtio_balloon", "9", "free page reporting on (2 MB blocks)"),
    ("0110010100000000", "virtio_balloon", "11", "free page reporting on (8 MB blocks)"),
    ("0110010100000000", "virtio_balloon", "0", "free page reporting on (4 KB blocks)"),
    ("0110010100000000", "virtio_balloon", None, "free page reporting on"),
    ("0110000100000000", "virtio_balloon", "9", "free page reporting off"),  # bit 5 (reporting) not offered
    ("0110010100000000", "virtio_net", "9", "free page reporting off"),  # not a balloon
])
def test_page_reporting_reads_the_balloon_device(tmp_path, features, driver, order, expected):
    bench = _bench()
    assert bench.page_reporting(_fake_sys(tmp_path, features, driver, order)) == expected


def test_page_reporting_is_off_without_virtio(tmp_path):
    assert _bench().page_reporting(tmp_path) == "free page reporting off"


def test_memory_probe_reports_wall_and_cpu_time_per_gigabyte():
    res = _bench().memory_probe(gigabytes=0.02)
    assert set(res) == {f"{k}_{m}" for k in ("fresh", "reused") for m in ("s_per_gb", "user_s_per_gb",
                                                                            "sys_s_per_gb")}
    assert all(v >= 0 for v in res.values())


def test_bench_writes_wall_and_cpu_time_of_each_stage(tmp_path):
    """``bench.py`` end to end at 10^3 patients: every stage row has wall, user and system
    time and peak memory, consistent with each other; the summary names the core sum."""
    import csv

    out = tmp_path / "results.csv"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--sizes", "1e3",
                           "--stages", "clean,table1,table2,agreement", "--no-memory-probe",
                           "--workdir", str(tmp_path / "work"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["stage"] for r in rows] == ["generate", "clean", "table1", "table2", "agreement"]
    cores = os.cpu_count() or 1
    for r in rows:
        assert r["n_patients"] == "1000" and r["error"] == ""
        wall, user, system = float(r["seconds"]), float(r["user_s"]), float(r["sys_s"])
        assert wall > 0 and user >= 0 and system >= 0
        assert user + system <= wall * cores + 0.05  # rusage ticks are 10 ms at worst
        assert float(r["peak_mb"]) >= float(r["input_mb"]) > 0
        assert r["allocation"].endswith(("free page reporting on", "free page reporting off", "blocks)"))
    clean = next(r for r in rows if r["stage"] == "clean")
    assert float(clean["user_s"]) + float(clean["sys_s"]) > 0
    assert "n=1000: clean + table1 + table2 + agreement = " in proc.stdout
    assert "(CPU time: user " in proc.stdout
