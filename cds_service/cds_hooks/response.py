"""CDS Hooks 2.0 response invariants, enforced on everything the service emits.

``check_response`` runs on every hook response before it leaves the service; a violation is a bug in the
service, so it raises ``ResponseInvariantError`` (web.py turns that into a logged 500 without details).
Rules (https://cds-hooks.hl7.org/2.0/#cds-service-response and the logical-model invariants cds-resp-1..6):
summary < 140 characters; indicator info|warning|critical; source.label; ``uuid`` on cards and suggestions
(needed for feedback); selectionBehavior whenever suggestions exist; every action has ``type`` and
``description``; delete uses ``resourceId``; override reasons carry ``display``; no ``null`` or empty
members anywhere except ``"cards": []``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from hashlib import sha1
from typing import Any

INDICATORS = frozenset({"info", "warning", "critical"})
SELECTION_BEHAVIORS = frozenset({"at-most-one", "any"})
ACTION_TYPES = frozenset({"create", "update", "delete"})
LINK_TYPES = frozenset({"absolute", "smart"})
_NAMESPACE = uuid.UUID("6f3b8a52-2f0e-4d55-9a3c-2b7f4f7d9c11")  # this service's uuid5 namespace
_NAMESPACE_BYTES = _NAMESPACE.bytes


class ResponseInvariantError(ValueError):
    """The service built a response that breaks CDS Hooks 2.0."""


def stable_uuid(*parts: str) -> str:
    """A uuid5 from the parts, so the same finding in the same hook call always gets the same id.

    ``str(uuid.uuid5(...))`` spelled out (RFC 4122 4.3: SHA-1 of namespace and name, version 5, variant 10):
    the UUID object cost more than the hash, several times per answer."""
    name = _NAMESPACE_BYTES + "\x1f".join(parts).encode("utf-8")
    digest = bytearray(sha1(name, usedforsecurity=False).digest()[:16])  # uuid5 is SHA-1 by definition
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def check_response(response: Mapping[str, Any]) -> None:
    if not isinstance(response, Mapping) or not isinstance(response.get("cards"), list):
        raise ResponseInvariantError("response must be an object with a 'cards' array")
    unknown = set(response) - {"cards", "systemActions", "extension"}
    if unknown:
        raise ResponseInvariantError(f"unknown response members {sorted(unknown)}")
    if not _surely_filled(response):
        _no_empty(response, "response", allow_empty_cards=True)
    for i, card in enumerate(response["cards"]):
        _check_card(card, f"cards[{i}]")
    for i, action in enumerate(response.get("systemActions", [])):
        _check_action(action, f"systemActions[{i}]")


def _fail(where: str, message: str) -> None:
    raise ResponseInvariantError(f"{where}: {message}")


def _surely_filled(response: Mapping[str, Any]) -> bool:
    """True when no member is null or empty, found without the paths ``_no_empty`` builds for its message (a
    path string per member was a tenth of a millisecond for a typical answer). Anything but plain JSON types
    (a tuple, a Mapping that is not a dict, subclasses), and an allowed ``"cards": []``, answer False: then
    ``_no_empty`` decides and names the member."""
    stack: list[Any] = [response]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is dict:
            extend(value.values())
        elif kind is list:
            extend(value)
        elif kind is not str and kind is not int and kind is not float and kind is not bool:
            return False  # None, or a type only the walk with paths judges
        if not value and kind is not int and kind is not float and kind is not bool:
            return False
    return True


def _no_empty(value: Any, where: str, allow_empty_cards: bool = False) -> None:
    if value is None or (isinstance(value, str | list | dict) and not value):
        if not (allow_empty_cards and where == "response.cards"):
            _fail(where, "null or empty members are not allowed")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _no_empty(item, f"{where}.{key}", allow_empty_cards)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_empty(item, f"{where}[{i}]", allow_empty_cards)


def _check_card(card: Any, where: str) -> None:
    if not isinstance(card, Mapping):
        _fail(where, "a card must be an object")
    summary = card.get("summary")
    if not isinstance(summary, str) or len(summary) >= 140:
        _fail(where, "summary is required and must be shorter than 140 characters")
    if card.get("indicator") not in INDICATORS:
        _fail(where, f"indicator must be one of {sorted(INDICATORS)}")
    source = card.get("source")
    if not isinstance(source, Mapping) or not isinstance(source.get("label"), str):
        _fail(where, "source.label is required")
    if "topic" in source:
        _check_coding(source["topic"], f"{where}.source.topic", need_display=False)
    if not isinstance(card.get("uuid"), str):
        _fail(where, "uuid is required (feedback needs it)")
    suggestions = card.get("suggestions")
    if suggestions is not None:
        _check_suggestions(card, suggestions, where)
    elif "selectionBehavior" in card:
        _fail(where, "selectionBehavior without suggestions")
    for i, reason in enumerate(card.get("overrideReasons", [])):
        _check_coding(reason, f"{where}.overrideReasons[{i}]", need_display=True)
    for i, link in enumerate(card.get("links", [])):
        _check_link(link, f"{where}.links[{i}]")


def _check_suggestions(card: Mapping[str, Any], suggestions: Any, where: str) -> None:
    behavior = card.get("selectionBehavior")
    if behavior not in SELECTION_BEHAVIORS:
        _fail(where, "selectionBehavior (at-most-one|any) is required when suggestions are present")
    recommended = 0
    for i, suggestion in enumerate(suggestions):
        at = f"{where}.suggestions[{i}]"
        if not isinstance(suggestion.get("label"), str):
            _fail(at, "label is required")
        if not isinstance(suggestion.get("uuid"), str):
            _fail(at, "uuid is required (feedback needs it)")
        recommended += bool(suggestion.get("isRecommended"))
        for j, action in enumerate(suggestion.get("actions", [])):
            _check_action(action, f"{at}.actions[{j}]")
    if behavior == "at-most-one" and recommended > 1:
        _fail(where, "at-most-one allows at most one recommended suggestion")


def _check_action(action: Any, where: str) -> None:
    if not isinstance(action, Mapping) or action.get("type") not in ACTION_TYPES:
        _fail(where, f"type must be one of {sorted(ACTION_TYPES)}")
    if not isinstance(action.get("description"), str):
        _fail(where, "description is required")
    if action["type"] == "delete":
        if "resource" in action or not isinstance(action.get("resourceId"), list | str):
            _fail(where, "delete uses resourceId, not resource")
    elif not isinstance(action.get("resource"), Mapping) or "resourceType" not in action["resource"]:
        _fail(where, f"{action['type']} needs the whole resource")


def _check_coding(coding: Any, where: str, need_display: bool) -> None:
    if not isinstance(coding, Mapping) or not coding.get("code") or not coding.get("system"):
        _fail(where, "a Coding needs code and system")
    if need_display and not coding.get("display"):
        _fail(where, "display is required")


def _check_link(link: Any, where: str) -> None:
    if not isinstance(link, Mapping) or not all(isinstance(link.get(k), str) for k in ("label", "url")):
        _fail(where, "label and url are required")
    if link.get("type") not in LINK_TYPES:
        _fail(where, "type must be absolute or smart")
    if "appContext" in link and link["type"] != "smart":
        _fail(where, "appContext is only allowed on smart links")
    if not link["url"].startswith(("https://", "http://")):
        _fail(where, "url must be absolute")
