"""Fixtures for the browser tests: the sandbox build on loopback, Chromium through Playwright, the FHIR server
with the scenarios loaded, and a page that reports its text and a screenshot when a test fails.

The FHIR server (``fhir_base_url``) and the service (``live_service``, ``LiveService``) are the fixtures the
integration and HTTP tests use, imported rather than copied.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from cds_service.settings import load_settings
from tests.browser.sandbox import BUILD, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Sandbox, StaticSite
from tests.helpers import REPO, LiveService, free_port
from tests.integration.conftest import fhir_base_url  # noqa: F401  (a fixture, reused)

SCENARIOS = ("new-symptomatic-vcf-no-cancer", "seed-with-neuro-deficit", "no-spine-problem")
PAGE_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def loaded_fhir(fhir_base_url: str) -> str:  # noqa: F811
    """The scenarios the flows use, loaded by the README's CLI command."""
    args = [a for name in SCENARIOS for a in ("--scenario", name)]
    result = subprocess.run([sys.executable, "-m", "cds_service", "load-fixtures", "--fhir-server", fhir_base_url,
                             *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return fhir_base_url


@pytest.fixture(scope="session")
def sandbox_site() -> Iterator[str]:
    site = StaticSite()
    yield site.url
    site.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser_page(playwright: Playwright, tmp_path: Path) -> Iterator[Page]:
    """A fresh Chromium with a new, empty profile (the sandbox keeps its servers in localStorage)."""
    context: BrowserContext = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
        viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    yield page
    context.close()


@pytest.fixture
def open_sandbox(browser_page: Page, sandbox_site: str, loaded_fhir: str) -> Callable[[LiveService], Sandbox]:
    def make(service: LiveService) -> Sandbox:
        return Sandbox(browser_page, sandbox_site, loaded_fhir, service.base_url)
    return make


@pytest.fixture
def sandbox(open_sandbox: Callable[[LiveService], Sandbox], live_service: LiveService) -> Sandbox:
    """The sandbox pointed at the suite's shared service (no client authentication)."""
    return open_sandbox(live_service)


@pytest.fixture
def verifying_service(tmp_path: Path) -> Iterator[LiveService]:
    """The service with client JWT verification on: the sandbox's public key pinned from its own build, and
    CDS_PUBLIC_BASE_URL the loopback URL the browser calls, so ``aud`` is checked against it."""
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": "https://sandbox.cds-hooks.org",
                                    "jku": ["https://sandbox.cds-hooks.org/.well-known/jwks.json"],
                                    "jwks_file": str(BUILD / ".well-known" / "jwks.json"),
                                    "algorithms": ["ES384"]}]))
    port = free_port()
    service = LiveService({"CDS_DATA_DIR": str(tmp_path / "data"), "CDS_LOG_LEVEL": "WARNING",
                           "CDS_TRUSTED_ISSUERS_FILE": str(issuers),
                           "CDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}, port=port)
    yield service
    service.stop()


def stored(service: LiveService, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows from the service's own database (the store URL its settings name)."""
    engine = sa.create_engine(load_settings(service.env).store_url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed browser test: the page's text and a screenshot path go into the failure report."""
    outcome = yield
    report = outcome.get_result()
    page = getattr(item, "funcargs", {}).get("browser_page")
    if report.when != "call" or not report.failed or page is None or page.is_closed():
        return
    path = item.funcargs["tmp_path"] / "failure.png"
    try:
        page.screenshot(path=path, full_page=True)
        text = page.inner_text("body")
    except Exception as exc:  # the page may be the reason for the failure; the report must still come
        text = f"(page unreadable: {exc})"
    report.sections.append(("sandbox page", f"screenshot: {path}\n\n{text}"))
