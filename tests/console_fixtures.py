"""What the console tests share: accounts of every role, an app with the console, a real server on
127.0.0.1 in a thread, and a headless Chromium driven by Selenium (skipped only when Chromium is absent).

Screenshots go to a temporary folder (printed at the end of the session, kept for looking at).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from api import console
from api.http.app import create_app
from engine.clock import FixedClock

from .api_fixtures import GRID, OTHER_GRID, UNIT
from .conftest import T0, grid_matter_upload, registered

PASSWORD = "console-pass-123"
SECRET = "console-test-secret-0123456789abcdef0123"
# name: (role, scope fields)
ACCOUNTS = {
    "王网格": ("grid_worker", {"grid_code": GRID}),
    "赵网格": ("grid_worker", {"grid_code": OTHER_GRID}),
    "东风社区网格站": ("grid_agency", {"level": "community", "area_code": GRID[:12]}),
    "街道网格中心": ("grid_agency", {"level": "township", "area_code": GRID[:9]}),
    "区城管局": ("responsible_unit", {"unit": UNIT}),
    "纪检组": ("auditor", {}),
    "流程管理员": ("process_admin", {}),
    "市平台": ("platform", {}),
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def add_accounts(engine) -> None:
    for name, (role, scope) in ACCOUNTS.items():
        engine.accounts.add(name, role, PASSWORD, by="test", **scope)


def console_app(engine, clock=None, **config):
    clock = clock or FixedClock(T0)
    registered(engine, clock)   # reports name grids in force, dispatches name registered units
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    add_accounts(engine)
    return console.register(create_app(engine, {"GRIDFLOW_CLOCK": clock, "GRIDFLOW_CONSOLE_SECRET": SECRET,
                                                **config}))


class LiveServer:
    """The app served by werkzeug on a free port of 127.0.0.1, in a thread, until `stop`."""

    def __init__(self, app):
        from werkzeug.serving import make_server
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._thread.join(timeout=10)


SHOTS = Path(os.environ.get("GRIDFLOW_SCREENSHOTS") or tempfile.mkdtemp(prefix="gridflow-console-shots-"))


class Browser:
    """A headless Chromium at 1366×768 with the helpers the console tests use."""

    def __init__(self, base_url: str):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1366,768", "--lang=zh-CN"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_window_size(1366, 768)
        self.base = base_url
        self.errors: list[str] = []
        self._documents: set[str] = set()

    # -- navigation --------------------------------------------------------------------------------
    def go(self, path: str):
        self.driver.get(self.base + path)
        self._collect()
        return self

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def fill(self, css: str, value: str):
        field = self.find(css)
        field.clear()
        field.send_keys(value)
        return self

    def select(self, css: str, value: str):
        from selenium.webdriver.support.ui import Select
        Select(self.find(css)).select_by_value(value)
        return self

    def click(self, css: str):
        """Click something that leads to another page, and wait for that page."""
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait
        from selenium.common.exceptions import WebDriverException
        page = self.find("html")
        self.find(css).click()

        def gone(_driver):
            # Chromium may answer for a page being torn down with "Node with given id does not belong
            # to the document" instead of a stale reference: either way the old page is gone.
            try:
                return ec.staleness_of(page)(_driver)
            except WebDriverException as exc:
                if "does not belong to the document" in str(exc):
                    return True
                raise
        WebDriverWait(self.driver, 15).until(gone)
        self.wait_for("body")
        self._collect()
        return self

    def tick(self, css: str):
        """Click something on the page that stays (a radio button, a checkbox)."""
        self.find(css).click()
        return self

    def wait_for(self, css: str, timeout: float = 15):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
        return self.find(css)

    @property
    def path(self) -> str:
        return self.driver.current_url[len(self.base):]

    # -- accounts ----------------------------------------------------------------------------------
    def sign_in(self, name: str, password: str = PASSWORD):
        self.sign_out()
        self.go("/console/sign-in")
        self.fill("#name", name).fill("#password", password).click("#sign-in")
        return self

    def sign_out(self):
        if self.find_all("#sign-out"):
            self.click("#sign-out")
        return self

    # -- evidence ----------------------------------------------------------------------------------
    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self._collect()
        return path

    def _collect(self):
        self._documents.add(self.driver.current_url.split("?")[0])
        for entry in self.driver.get_log("browser"):
            if entry.get("level") not in ("SEVERE", "ERROR"):
                continue
            message = entry.get("message", "")
            # A page answered with an error status on purpose (a refused sign-in, a case out of scope) is
            # logged as "Failed to load resource" for the page itself; any other failure is an error.
            address = message.split(" ", 1)[0]
            if "Failed to load resource" in message and address.split("?")[0] in self._documents:
                continue
            self.errors.append(f"{self.driver.current_url}: {message}")
        self._documents = {self.driver.current_url.split("?")[0]}  # the page the next entries may be about

    def console_errors(self) -> list[str]:
        self._collect()
        return list(self.errors)

    def quit(self):
        self.driver.quit()


@pytest.fixture
def live_console(tmp_path):
    """(engine, server) on a SQLite file, with the console accounts."""
    if CHROMIUM is None or not Path(CHROMEDRIVER).exists():
        pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    from engine.service import Engine
    engine = Engine(f"sqlite:///{tmp_path / 'console.db'}")
    server = LiveServer(console_app(engine))
    yield engine, server
    server.stop()
    engine.close()


@pytest.fixture
def browser(live_console):
    _, server = live_console
    b = Browser(server.url)
    yield b
    b.quit()
    print(f"\nconsole screenshots: {SHOTS}")
