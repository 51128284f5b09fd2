"""The conda/Binder environment and the pip lock file pin the same versions."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[=<>!~\[ ;]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "==" in line, f"requirements.lock: {line!r} is not pinned with =="
        name, version = line.split("==", 1)
        pins[_name(name)] = version.strip()
    return pins


def env_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    pins = {}
    for req in pip:
        if req.startswith("-"):
            continue
        assert "==" in req, f"environment.yml: {req!r} is not pinned with =="
        name, version = req.split("==", 1)
        pins[_name(name)] = version.strip()
    return pins


def test_environment_yml_and_lock_agree():
    lock, env = lock_pins(), env_pins()
    only_lock = sorted(set(lock) - set(env))
    only_env = sorted(set(env) - set(lock))
    differ = sorted(n for n in set(lock) & set(env) if lock[n] != env[n])
    assert not (only_lock or only_env or differ), (
        f"pins disagree: only in lock {only_lock}, only in environment.yml {only_env}, "
        f"different versions {[(n, lock[n], env[n]) for n in differ]}")


def test_environment_is_conda_forge_python_311_with_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "--editable ." in pip


def test_every_declared_dependency_is_locked():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    lock = lock_pins()
    missing = sorted({_name(d) for d in declared} - set(lock))
    assert not missing, f"declared in pyproject.toml but not pinned in requirements.lock: {missing}"
