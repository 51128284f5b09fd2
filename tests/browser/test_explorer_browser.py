"""The explorer in a real browser: JupyterLab from .venv, headless Chromium, a control changed, the table follows.

Run by ``make browser-test`` (which installs Chromium, chromedriver and selenium first); ``make test`` leaves this
folder out (``tests/conftest.py``). JupyterLab and the browser get their own temporary settings, runtime and profile
folders, autosave off (the committed notebook is never written), and both are stopped, whole process groups, whether
the test passes or not. Screenshots go to ``scratch/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from imr_analysis import paths, selection
from imr_analysis.cohort import COHORT_FILE, load_cohort
from imr_workflow import explore
from imr_workflow.runner import KERNEL_DISPLAY_NAME

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is installed by `make browser-test`")
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/07_explore.ipynb"
SCREENSHOTS = ROOT / "scratch" / "screenshots"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1600,1400"]
#: JupyterLab's user settings for the test: no autosave (the notebook on disk stays as committed), the notebook's
#: kernel started without asking, no news or update checks (no traffic off this machine).
LAB_SETTINGS = {"@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
                "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True},
                "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
                    "checkForUpdates": False, "fetchNews": "false"}}
STARTUP_SECONDS, RUN_SECONDS, UPDATE_SECONDS = 90, 240, 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen, seconds: float = 10) -> None:
    """Stop ``process`` and its process group (it was started in a session of its own)."""
    if process.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(seconds)
                break
            except subprocess.TimeoutExpired:
                continue
    else:
        try:  # the leader is gone; its children (kernels) may not be
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _tracked_changes() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving the compendium on a free local port, with a random token; stopped at the end."""
    home = tmp_path_factory.mktemp("jupyter")
    settings = home / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(24)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "IPYTHONDIR": str(home / "ipython"), "JUPYTER_PREFER_ENV_PATH": "1", "MPLBACKEND": "Agg"}
    command = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", f"--port={port}",
               "--ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={ROOT}",
               "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])]
    log = (home / "lab.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {server.returncode}: {(home / 'lab.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer within {STARTUP_SECONDS} s: "
                                   f"{(home / 'lab.log').read_text()}")
            time.sleep(0.5)
        yield {"url": url, "token": token, "log": home / "lab.log"}
    finally:
        _stop(server)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium driven by chromedriver, with a new empty profile; quit at the end."""
    from selenium.webdriver.chrome.options import Options

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: `make browser-test` installs Debian's chromium and chromium-driver")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path_factory.mktemp("chromedriver") /
                                                                          "chromedriver.log"),
                      popen_kw={"start_new_session": True})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            if service.process is not None:  # chromedriver and the browsers it started
                _stop(service.process, seconds=5)


def _wait(driver, seconds, condition, what):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.25,
                             ignored_exceptions=[StaleElementReferenceException]).until(lambda d: condition(d))
    except TimeoutException:
        _screenshot(driver, "failure")
        raise AssertionError(f"waited {seconds} s for {what}") from None


def _screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _kernel_status(driver) -> str:
    """The kernel's status in JupyterLab's status bar ("Idle", "Busy"...), "" before it shows."""
    for item in driver.find_elements(By.CSS_SELECTOR, ".jp-StatusBar-TextItem"):
        name, _, status = item.text.partition(" | ")
        if name == KERNEL_DISPLAY_NAME:
            return status.strip()
    return ""


def _checkbox(driver, label: str):
    """The input of the explorer's checkbox labelled ``label``."""
    return driver.find_element(By.XPATH, f"//div[contains(@class, 'widget-checkbox')]"
                                         f"[.//*[normalize-space(text())={json.dumps(label)}]]//input")


def _headers(driver) -> list[str]:
    """The column headers of the tables visible in the explorer (the Table 1 tab at start), read in one script: an
    update replaces the table while a reader looks."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.imr-explorer-output th'))"
        ".filter(th => th.offsetParent !== null).map(th => th.textContent.trim());")


def _visible_cells(driver) -> list[str]:
    """The body cells of the tables visible in the explorer."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.imr-explorer-output td'))"
        ".filter(td => td.offsetParent !== null).map(td => td.textContent.trim());")


def _tab(driver, title: str):
    """The explorer's tab titled ``title``."""
    [tab] = [t for t in driver.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab") if t.text.strip() == title]
    return tab


def _heading(driver) -> str:
    """The explorer's heading: the selection and its size, or why nothing is shown."""
    return driver.execute_script(
        "const h = document.querySelector('.imr-explorer-heading'); return h ? h.textContent : '';")


def _total_header(n: int) -> str:
    return f"Total (n={n})"


def test_the_explorer_follows_its_controls_in_a_real_browser(lab, browser):
    before = _tracked_changes()
    cohort = load_cohort(paths.input_folder("", paths.processed_dir(), [COHORT_FILE]))  # the one the notebook reads
    everyone = len(cohort)
    two_services = len(selection.select(cohort, services=["CMHC", "SerD"]).cohort)
    women_two_services = len(selection.select(cohort, services=["CMHC", "SerD"], sex=["F"]).cohort)
    assert everyone > two_services > women_two_services > 0

    browser.get(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
    _wait(browser, STARTUP_SECONDS, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell"),
          "the notebook to open")
    _wait(browser, STARTUP_SECONDS, lambda d: _kernel_status(d) == "Idle", "the kernel to start")
    # Run > Run All Cells, as a reader would
    _wait(browser, 10, lambda d: [m for m in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                                  if m.text.strip() == "Run"], "the Run menu")[0].click()
    _wait(browser, 10, lambda d: [m for m in d.find_elements(By.CSS_SELECTOR, ".lm-Menu-item .lm-Menu-itemLabel")
                                  if m.text.strip() == "Run All Cells"], "Run All Cells")[0].click()

    _wait(browser, RUN_SECONDS, lambda d: _total_header(everyone) in _headers(d), "Table 1 of every patient")
    _wait(browser, RUN_SECONDS, lambda d: _kernel_status(d) == "Idle", "the notebook to finish")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'});",
                           _checkbox(browser, "Eating Disorders Programme"))
    shots = [_screenshot(browser, "explorer_1_start")]
    assert any(h.startswith("EDP (n=") for h in _headers(browser))

    _checkbox(browser, "Eating Disorders Programme").click()  # untick the EDP
    _wait(browser, UPDATE_SECONDS, lambda d: _total_header(two_services) in _headers(d), "Table 1 without the EDP")
    assert not any(h.startswith("EDP (n=") for h in _headers(browser))
    shots.append(_screenshot(browser, "explorer_2_without_edp"))

    _checkbox(browser, "Male").click()  # women only
    _wait(browser, UPDATE_SECONDS, lambda d: _total_header(women_two_services) in _headers(d),
          "Table 1 of the women of CMHC and SerD")
    assert "sex F" in _heading(browser)
    shots.append(_screenshot(browser, "explorer_3_women"))

    _tab(browser, "Figure 1").click()
    _wait(browser, UPDATE_SECONDS, lambda d: [i for i in d.find_elements(By.CSS_SELECTOR, "img")
                                              if i.is_displayed() and i.size["width"] > 300], "Figure 1")
    shots.append(_screenshot(browser, "explorer_4_figure1"))

    _tab(browser, "Agreement").click()
    _wait(browser, UPDATE_SECONDS, lambda d: any(c.startswith("ICC(A,1)") for c in _visible_cells(d)),
          "the agreement summary")
    shots.append(_screenshot(browser, "explorer_5_agreement"))

    saved = explore.scratch_dir() / explore.selection_slug({"services": ["CMHC", "SerD"], "sex": ["F"]})
    shutil.rmtree(saved, ignore_errors=True)  # an earlier run's
    [button] = [b for b in browser.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Save this selection"]
    button.click()
    _wait(browser, UPDATE_SECONDS, lambda d: (saved / "colophon.json").exists(), "the selection to be saved")
    assert json.loads((saved / "colophon.json").read_text())["selection"]["description"] == \
        "service type CMHC or SerD; sex F"

    _checkbox(browser, "Female").click()  # no sex ticked: nobody
    _wait(browser, UPDATE_SECONDS, lambda d: "No patients to show" in _heading(d), "the empty-selection message")
    assert not _headers(browser)
    shots.append(_screenshot(browser, "explorer_6_empty"))

    assert all(p.stat().st_size > 10_000 for p in shots)
    assert _tracked_changes() == before, "the browser session changed committed files"
