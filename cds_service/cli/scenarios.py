"""CLI commands for the clinical scenarios: ``load-fixtures`` and ``send-scenario``.

``add_commands`` registers both on the main CLI's subparsers; each command takes the parsed arguments
and returns an exit code (0 ok, 1 the other side refused, 2 it could not be reached or bad input).
``send-scenario`` behaves like an EHR: it reads the service's prefetch templates from the discovery
document (``GET .../cds-services``), fills them from the scenario, and posts the hook call.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any, TextIO

import requests

from ..cds_hooks.hook_definitions import HookDefinition
from .fixtures import (
    FIXTURES_DIR,
    HOOKS,
    FixtureError,
    FixtureLoadError,
    hook_request,
    list_scenarios,
    load_into,
    materialise,
)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``load-fixtures`` and ``send-scenario``; the lead's CLI calls ``args.func(args)``."""
    load = subparsers.add_parser("load-fixtures", help="load the clinical scenarios into a FHIR R4 server")
    load.add_argument("--fhir-server", required=True, help="FHIR base URL, e.g. http://127.0.0.1:8090/fhir")
    load.add_argument("--scenario", action="append", choices=list_scenarios(), metavar="NAME",
                      help="load only this scenario (repeatable); default: all")
    load.set_defaults(func=load_fixtures_command)

    send = subparsers.add_parser("send-scenario", help="send one scenario's hook call to a CDS service",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="scenarios (fhir_fixtures/, also --list):\n" + scenario_list())
    send.add_argument("name", nargs="?", choices=list_scenarios(), metavar="NAME",
                      help="scenario name (see below)")
    send.add_argument("--list", action="store_true", help="list the scenarios and exit")
    send.add_argument("--service-url", metavar="URL",
                      help="one service's URL, e.g. http://127.0.0.1:8080/cds-services/spine-order-select")
    send.add_argument("--hook", choices=HOOKS, help="default: the hook the service's discovery entry names")
    send.add_argument("--no-prefetch", action="store_true", help="send no prefetch; the service queries FHIR")
    send.add_argument("--fhir-server", help="FHIR base URL sent as fhirServer (needed with --no-prefetch)")
    send.add_argument("--json", action="store_true", help="also print the whole response JSON")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds for each HTTP request")
    send.set_defaults(func=send_scenario_command)


def scenario_list() -> str:
    """One line per scenario: its name and the first sentence of its description."""
    lines = []
    for name in list_scenarios():  # the scenario file only: every CLI start builds this help text
        description = json.loads((FIXTURES_DIR / f"{name}.scenario.json").read_text())["description"]
        first = description.split("; ")[0].split(". ")[0].rstrip(".")
        lines.append(f"  {name:<36} {first[:80]}")
    return "\n".join(lines)


def load_fixtures_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    names = args.scenario or list_scenarios()
    try:
        loaded = load_into(args.fhir_server, names)
    except FixtureLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for item in loaded:
        print(f"{item.name}: Patient/{item.patient_id}, {len(item.statuses)} resources", file=out)
    return 0


def _service_ids(discovery_url: str, timeout: float) -> str:
    """The ids a discovery URL lists, for an error message; empty when it cannot be read."""
    try:
        services = requests.get(discovery_url, timeout=timeout).json().get("services", [])
        return ", ".join(str(entry.get("id")) for entry in services)
    except (requests.RequestException, ValueError, AttributeError):
        return ""


def _discovered(service_url: str, timeout: float) -> HookDefinition:
    """The service's entry in its discovery document, as a definition (prefetch templates and hook)."""
    if service_url.rstrip("/").endswith("/cds-services"):
        ids = _service_ids(service_url.rstrip("/"), timeout)
        listed = f" (it lists: {ids})" if ids else ""
        raise FixtureError(f"--service-url names the discovery endpoint, not a service: add the service id, "
                           f"e.g. {service_url.rstrip('/')}/spine-order-select{listed}")
    base, _, service_id = service_url.rstrip("/").rpartition("/")
    response = requests.get(base, timeout=timeout, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise FixtureError(f"no discovery document at {base} (HTTP {response.status_code}): --service-url must be "
                           ".../cds-services/<service id>")
    for entry in response.json().get("services", []):
        if entry.get("id") == service_id:
            return HookDefinition(id=service_id, hook=entry["hook"], title=entry.get("title", ""),
                                  description=entry.get("description", ""),
                                  prefetch=entry.get("prefetch", {}), required_prefetch=())
    raise FixtureError(f"{base} lists no service {service_id!r}")


def format_cards(response: dict[str, Any]) -> str:
    """Cards as a clinician would skim them: indicator, summary, source, suggestion labels."""
    lines: list[str] = []
    for card in response.get("cards", []):
        lines.append(f"[{card.get('indicator', '?')}] {card.get('summary', '')}")
        label = (card.get("source") or {}).get("label")
        if label:
            lines.append(f"    source: {label}")
        lines.extend(f"    suggestion: {s.get('label', '')}" for s in card.get("suggestions", []))
    if not lines:
        lines.append("(no cards)")
    actions = response.get("systemActions") or []
    if actions:
        lines.append(f"systemActions: {len(actions)}")
    return "\n".join(lines)


def send_scenario_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up per call: a test runner may have swapped it
    if args.list:
        print(scenario_list(), file=out)
        return 0
    if not args.name or not args.service_url:
        print("error: send-scenario needs a scenario NAME and --service-url (--list shows the names)",
              file=sys.stderr)
        return 2
    if args.no_prefetch and not args.fhir_server:
        print("error: --no-prefetch needs --fhir-server", file=sys.stderr)
        return 2
    try:
        definition = _discovered(args.service_url, args.timeout)
        scenario = materialise(args.name, date.today())
        body = hook_request(scenario, args.hook or definition.hook, with_prefetch=not args.no_prefetch,
                            fhir_server=args.fhir_server, definition=definition)
        response = requests.post(args.service_url, json=body, timeout=args.timeout)
    except (requests.RequestException, FixtureError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if response.status_code != 200:
        print(f"error: {args.service_url} answered {response.status_code}: {response.text[:1000]}", file=sys.stderr)
        return 1
    answer = response.json()
    print(f"{scenario.name} ({body['hook']}): {scenario.description}", file=out)
    print(format_cards(answer), file=out)
    if args.json:
        print(json.dumps(answer, indent=2), file=out)
    return 0
