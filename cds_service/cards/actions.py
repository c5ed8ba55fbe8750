"""FHIR actions: the rating written onto each draft order, the swap to an alternative, the stat referral.

A rating is an ``update`` of the same ServiceRequest that only adds extensions (CDS Hooks for PAMA):
``pama-rating``, ``pama-rating-consult-id`` (deterministic, so the audit can reuse it via ``consult_id``),
``pama-rating-auc-applied`` (the criteria pack URL) and the project's ``acr-rating`` (the ACR category, which
the three-valued PAMA code cannot carry). ``pama-rating-qcdsm-consulted`` is omitted: it holds a CMS G-code
and the AUC program was rescinded effective 2024-01-01. Existing pama extensions are replaced, never doubled.
Empty members of the order as sent are dropped, because CDS Hooks responses may not carry empty values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..cds_hooks.response import stable_uuid
from ..cds_hooks.validate import HookRequest
from ..clinical.facts.resources import is_mapping
from ..clinical.orders import DraftOrder
from ..clinical.ratings import Category, Rating
from ..clinical.topic import Topic
from .content import CATEGORIES, URLS, CardInput


def consult_id(request: HookRequest, order: DraftOrder) -> str:
    """The PAMA consultation id written onto ``order`` in this hook call (``urn:uuid:...``); stable per call."""
    return f"urn:uuid:{stable_uuid(request.hook_instance, order.reference)}"


def pama_code(rating: Rating) -> str | None:
    """appropriate | not-appropriate | no-criteria-apply; None when the order gets no rating written.

    An order outside the criteria's scope is no-criteria-apply (the Argonaut PAMA guide's answer for it); an
    undecided variant writes nothing."""
    if rating.status == "no-criteria-apply" or rating.variant.outcome == "out-of-scope":
        return "no-criteria-apply"
    if rating.status == "rated" and rating.category:
        return CATEGORIES[rating.category]["pama"]
    return None


def rating_extensions(inp: CardInput, order: DraftOrder, pama: str, category: str | None,
                      criteria_url: str | None) -> list[dict[str, Any]]:
    extensions: list[dict[str, Any]] = [
        {"url": URLS["pama_rating_extension"],
         "valueCodeableConcept": {"coding": [{"system": URLS["pama_rating_system"], "code": pama}]}},
        {"url": URLS["pama_consult_id_extension"], "valueUri": consult_id(inp.request, order)},
    ]
    if criteria_url:
        extensions.append({"url": URLS["pama_auc_applied_extension"], "valueUri": criteria_url})
    if category:
        extensions.append({"url": URLS["acr_rating_extension"], "valueCodeableConcept": {"coding": [
            {"system": URLS["acr_rating_system"], "code": category, "display": CATEGORIES[category]["display"]}]}})
    return extensions


def system_actions(inp: CardInput) -> list[dict[str, Any]]:
    """One rating update per coded, rated order, and no-criteria-apply on coded orders no criteria cover;
    text-only orders and undecided variants get none."""
    entries: list[tuple[DraftOrder, str | None, Category | None, str | None]] = [
        (r.order, pama_code(r), r.category if r.status == "rated" else None, inp.topic_of(r).pack.url)
        for r in inp.ratings]
    entries += [(order, "no-criteria-apply", None, None) for order in inp.unrouted]
    actions = []
    for order, pama, category, criteria_url in entries:
        if pama is None or order.recognised_by != "code":
            continue
        resource = with_extensions(order.resource, rating_extensions(inp, order, pama, category, criteria_url))
        what = CATEGORIES[category]["display"] if category else "no criteria apply"
        actions.append({"type": "update", "resource": resource,
                        "description": f"Record the ACR appropriateness rating ({what}) on {order.display}"})
    return actions


def swap_action(inp: CardInput, rating: Rating, alternative: Mapping[str, Any],
                coding: Mapping[str, str]) -> dict[str, Any]:
    """Rewrite the draft order to the alternative: same id, subject and reasons, new code, its rating.

    The order keeps its own reasonCode. One without a reason gets the code of the recorded Condition that
    established the fracture (and a reasonReference to it): a reason the record already holds, so reading it
    back on the next call adds no evidence; nothing is invented (the CDS Hooks sandbox needs a reasonCode)."""
    order = rating.order
    resource = with_extensions(order.resource, rating_extensions(inp, order, "appropriate", alternative["category"],
                                                                 inp.topic_of(rating).pack.url))
    resource["code"] = {"coding": [dict(coding)], "text": coding["display"]}
    resource.setdefault("subject", {"reference": f"Patient/{inp.request.patient_id}"})
    if not resource.get("reasonCode"):
        resource.update(_recorded_reason(inp))
    return {"type": "update", "resource": resource,
            "description": f"Change {order.display} to {coding['display']} ({alternative['name']}, "
                           f"{CATEGORIES[alternative['category']]['display']})"}


def _recorded_reason(inp: CardInput) -> dict[str, Any]:
    """reasonCode + reasonReference from the Condition behind the fracture fact, or nothing."""
    fact = inp.facts.facts.get("fracture")
    ids = [s.removeprefix("Condition/") for s in (fact.sources if fact else ()) if s.startswith("Condition/")]
    for condition in inp.data.of_type("Condition"):
        code = condition.get("code") if condition.get("id") in ids[:1] else None
        if isinstance(code, Mapping) and code.get("coding"):
            return {"reasonCode": [_plain(code)], "reasonReference": [{"reference": f"Condition/{condition['id']}"}]}
    return {}


def referral_action(inp: CardInput, topic: Topic, entry: Mapping[str, Any]) -> dict[str, Any]:
    """A stat draft referral to neurosurgery for the neurologic red flag (coding from the topic's cards.json)."""
    coding = topic.text["neuro_referral"]["coding"]
    resource = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order", "priority": "stat",
                "code": {"coding": [dict(coding)], "text": coding["display"]},
                "subject": {"reference": f"Patient/{inp.request.patient_id}"}}
    return {"type": "create", "resource": resource, "description": entry["action"]}


def with_extensions(resource: Mapping[str, Any], extensions: list[dict[str, Any]]) -> dict[str, Any]:
    """A plain copy of the order without our earlier rating extensions, plus the new ones."""
    copy = _plain(resource)
    prefix, ours = URLS["pama_extension_prefix"], URLS["acr_rating_extension"]
    kept = [e for e in copy.get("extension", []) if not str(e.get("url", "")).startswith((prefix, ours))]
    copy["extension"] = kept + extensions
    return copy


def _plain(value: Any) -> Any:
    """Deep copy into dicts and lists, dropping null and empty members (not allowed in a response)."""
    if is_mapping(value):
        items = {k: _plain(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if not _empty(v)}
    if isinstance(value, list | tuple):
        return [v for v in (_plain(item) for item in value) if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)
