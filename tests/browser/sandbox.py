"""The real CDS Hooks Sandbox (``shared/clients/cds-hooks-sandbox/build``) driven in Debian's Chromium.

Why a page object: the sandbox is a React app whose class names carry build hashes, so its selectors (taken from
its README) live here once and the tests read as a clinician's steps: open a patient, pick an order, read the
cards, press a button. Only loopback requests leave the browser; every other one is aborted and recorded.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, Request

from tests.helpers import SHARED

BUILD = SHARED / "clients" / "cds-hooks-sandbox" / "build"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SCREENSHOT_DIR_ENV = "SANDBOX_SCREENSHOTS"  # set by `make screenshots`: where flows write their PNGs
SCREENSHOT_ZOOM = 0.8  # smaller text, still legible: keeps each PNG under 200 KB
VIEWPORT = {"width": 1200, "height": 2400}  # tall: the flows and their screenshots never scroll

ORDER_INPUT = 'input[id^="react-select-"][id$="-input"]'  # first: orders, second: reasons, third: services
OPTION = '[id^="react-select-"][id*="-option-"]'
CARD = ".MuiCard-root"
CARD_SUMMARY = ".MuiCardContent-root > p.MuiTypography-root"
SUGGESTION = "button.MuiButton-contained"
DISMISS = 'button[aria-label="select dismiss reason"]'
MENU_ITEM = 'li[role="menuitem"]'
COLUMN = '[class*="pama__pama"]'
RATING_BOX = '[class*="pama__rating-box"]'
CURRENT_ORDER = '[class*="pama__current-selection"]'
INDICATOR = re.compile(r"alert-(info|warning|critical)")


class StaticSite:
    """The sandbox build served by the standard library on a free loopback port, in a thread."""

    def __init__(self, directory: Path = BUILD) -> None:
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(Quiet, directory=str(directory)))
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Card:
    """A card as rendered: its indicator (from the sandbox's alert class), summary and suggestion buttons."""

    indicator: str
    summary: str
    buttons: tuple[str, ...]


@dataclass
class ServiceCall:
    method: str
    url: str
    authorization: str | None
    status: int | None = None


@dataclass
class Sandbox:
    """One sandbox tab on a page, pointed at a FHIR server and a CDS service (both loopback)."""

    page: Page
    site_url: str
    fhir_url: str
    service_url: str  # base URL of the CDS service, without /cds-services
    blocked: list[str] = field(default_factory=list)
    calls: list[ServiceCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.route("**/*", self._only_loopback)
        self.page.on("request", self._record)
        self.page.on("response", lambda r: self._answered(r.request, r.status))
        self.page.on("requestfailed", lambda r: self._answered(r, None))

    def _only_loopback(self, route: Any) -> None:
        if urllib.parse.urlsplit(route.request.url).hostname in LOOPBACK_HOSTS:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _record(self, request: Request) -> None:
        if request.url.startswith(self.service_url) and request.method != "OPTIONS":
            self.calls.append(ServiceCall(request.method, request.url, request.headers.get("authorization")))

    def _answered(self, request: Request, status: int | None) -> None:
        for call in reversed(self.calls):
            if call.url == request.url and call.method == request.method and call.status is None:
                call.status = status
                return

    def open(self, patient_id: str) -> None:
        """The PAMA Imaging tab for one patient; returns once the tab has sent its first hook call."""
        query = urllib.parse.urlencode({"fhirServiceUrl": self.fhir_url, "patientId": patient_id,
                                        "serviceDiscoveryURL": f"{self.service_url}/cds-services",
                                        "hook": "order-select", "screen": "pama"})
        with self.page.expect_response(self._is_hook_call):
            self.page.goto(f"{self.site_url}/index.html?{query}")
        self.page.locator(RATING_BOX).wait_for()

    def _is_hook_call(self, response: Any) -> bool:
        return (response.request.method == "POST" and response.url.startswith(f"{self.service_url}/cds-services/")
                and not response.url.endswith("/feedback"))

    def remove_order(self) -> dict[str, Any]:
        """Remove the chosen order; returns the answer to the call the tab sends for the empty order (waited for,
        so that the next ``choose_order`` gets the answer to its own call, not this one)."""
        with self.page.expect_response(self._is_hook_call) as answer:
            self.page.get_by_title("Remove").click()
        return answer.value.json()

    def choose_order(self, search: str, option: str) -> dict[str, Any]:
        """Type into "Search orders", pick the option containing ``option``; returns the service's answer."""
        self.page.locator(ORDER_INPUT).first.fill(search)
        with self.page.expect_response(self._is_hook_call) as answer:
            self.page.locator(OPTION, has_text=option).first.click()
        return answer.value.json()

    def cards(self) -> list[Card]:
        found = []
        for card in self.page.locator(CARD).all():
            indicator = INDICATOR.search(card.get_attribute("class") or "")
            found.append(Card(indicator.group(1) if indicator else "?",
                              card.locator(CARD_SUMMARY).first.inner_text().strip(),
                              tuple(b.strip() for b in card.locator(SUGGESTION).all_inner_texts())))
        return found

    def card(self, index: int) -> Locator:
        return self.page.locator(CARD).nth(index)

    def buttons(self, index: int) -> Locator:
        """The suggestion buttons of one card."""
        return self.card(index).locator(SUGGESTION)

    def menu(self) -> Locator:
        return self.page.locator(MENU_ITEM)

    @property
    def rating_box(self) -> Locator:
        return self.page.locator(RATING_BOX)

    @property
    def current_order(self) -> Locator:
        """The chosen order (the reasons chosen below it share its class and come after it)."""
        return self.page.locator(CURRENT_ORDER).first

    def accept(self, card_index: int) -> dict[str, Any]:
        """Press the card's suggestion button; returns the feedback item the sandbox posted."""
        with self.page.expect_response(lambda r: r.url.endswith("/feedback")) as posted:
            self.card(card_index).locator(SUGGESTION).first.click()
        return self._feedback_item(posted.value)

    def open_dismiss_menu(self, card_index: int) -> list[str]:
        self.card(card_index).locator(DISMISS).click()
        self.page.locator(MENU_ITEM).first.wait_for()
        return [text.strip() for text in self.page.locator(MENU_ITEM).all_inner_texts()]

    def dismiss_with(self, reason: str) -> dict[str, Any]:
        """Pick the open dismiss menu's item containing ``reason``; returns the feedback item posted."""
        with self.page.expect_response(lambda r: r.url.endswith("/feedback")) as posted:
            self.page.locator(MENU_ITEM, has_text=reason).click()
        return self._feedback_item(posted.value)

    @staticmethod
    def _feedback_item(response: Any) -> dict[str, Any]:
        assert response.status == 200, f"feedback answered {response.status}"
        return json.loads(response.request.post_data)["feedback"][0]

    def text(self) -> str:
        return self.page.inner_text("body")

    def snapshot(self, name: str, start: Locator | None = None, until: Locator | None = None) -> Path | None:
        """For `make screenshots`: a PNG of the card column, from the top of ``start`` (default: the column's
        top) to the bottom of ``until`` (e.g. a card's button), written to $SANDBOX_SCREENSHOTS. The viewport is
        tall enough that nothing scrolls (a scrolled page would paint the sandbox's fixed header over it)."""
        directory = os.environ.get(SCREENSHOT_DIR_ENV)
        if not directory:
            return None
        self.page.mouse.move(0, 0)  # no hover highlight in the picture
        self.page.evaluate(f"document.body.style.zoom = '{SCREENSHOT_ZOOM}'")
        self.page.wait_for_timeout(400)  # let MUI ripples and menus settle
        column = self.page.locator(COLUMN).bounding_box()
        top = (start or self.page.locator(COLUMN)).first.bounding_box()
        end = (until or self.page.locator(COLUMN)).last.bounding_box()
        assert column and top and end, "the PAMA card column is not on the page"
        path = Path(directory) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=path, clip={"x": column["x"], "y": top["y"] - 6, "width": column["width"],
                                              "height": end["y"] + end["height"] + 60 - top["y"]})
        self.page.evaluate("document.body.style.zoom = ''")
        return path
