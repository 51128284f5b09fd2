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
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench
    finally:
        sys.path.pop(0)
    text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    mode = bench._thp_mode("enabled")
    assert f"[{mode}]" in text and mode in {"always", "madvise", "never"}
