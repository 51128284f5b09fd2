"""Binder: repo2docker installs environment.yml (the lock's pins, the compendium editable), then runs postBuild; the
image must let the explorer (notebook 07) draw its widgets. Docker is not at hand in the tests: postBuild is checked
as shell, run against stand-in commands, and the README's launch link against the notebooks."""

from __future__ import annotations

import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from imr_workflow import runner

ROOT = Path(__file__).resolve().parents[1]
POSTBUILD = ROOT / "postBuild"
BINDER_URL = re.compile(r"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/HEAD\?urlpath=lab/tree/([\w./-]+)")


def test_postbuild_is_an_executable_bash_script():
    assert POSTBUILD.read_text().startswith("#!/bin/bash\n")
    assert os.access(POSTBUILD, os.X_OK)
    check = subprocess.run(["bash", "-n", str(POSTBUILD)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def _stand_ins(folder: Path, labextensions: str) -> dict:
    """``python`` and ``jupyter`` that log their arguments; ``jupyter labextension list`` prints ``labextensions``."""
    folder.mkdir()
    log = folder / "calls.log"
    for name in ("python", "jupyter"):
        script = folder / name
        script.write_text(f'#!/bin/bash\necho "{name} $*" >> "{log}"\n'
                          + (f'[ "$1 $2" = "labextension list" ] && printf "%s\\n" "{labextensions}" >&2\n'
                             if name == "jupyter" else "") + "exit 0\n")
        script.chmod(0o755)
    return {"PATH": f"{folder}:/usr/bin:/bin", "HOME": str(folder)}


def test_postbuild_installs_the_kernel_as_make_install_does(tmp_path):
    env = _stand_ins(tmp_path / "bin", "        @jupyter-widgets/jupyterlab-manager v5.0.16 enabled OK (python, "
                                       "jupyterlab_widgets)")
    done = subprocess.run(["bash", str(POSTBUILD)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "bin" / "calls.log").read_text().splitlines()
    kernel = (f"python -m ipykernel install --sys-prefix --name {runner.KERNEL_NAME} "
              f"--display-name {runner.KERNEL_DISPLAY_NAME}")
    assert calls == [kernel, "python -c import imr_analysis, imr_workflow.explore, ipywidgets",
                     "jupyter labextension list"]
    makefile = (ROOT / "Makefile").read_text()
    assert f"KERNEL_NAME    := {runner.KERNEL_NAME}" in makefile
    assert f"KERNEL_DISPLAY := {runner.KERNEL_DISPLAY_NAME}" in makefile


def test_postbuild_stops_the_build_without_the_widgets_front_end(tmp_path):
    env = _stand_ins(tmp_path / "bin", "        jupyterlab_pygments v0.3.0 enabled OK")
    done = subprocess.run(["bash", str(POSTBUILD)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode != 0


def test_the_environment_brings_the_widgets_and_the_compendium():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    pins = dict(p.split("==") for p in pip if "==" in p)
    for name in ("ipywidgets", "jupyterlab_widgets", "widgetsnbextension", "jupyterlab", "ipykernel"):
        assert name in pins, f"environment.yml does not pin {name}"
        assert metadata.version(name) == pins[name], f"{name}: .venv has {metadata.version(name)}, pinned {pins[name]}"
    assert "--editable ." in pip  # repo2docker installs a local requirement once the repository is in place


def test_the_readme_launches_the_explorer_on_binder():
    readme = (ROOT / "README.md").read_text()
    targets = BINDER_URL.findall(readme)
    assert "notebooks/07_explore.ipynb" in targets
    assert all((ROOT / t).is_file() for t in targets)
    assert "https://mybinder.org/badge_logo.svg" in readme

