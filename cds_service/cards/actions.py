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
from ..clinical.orders import DraftOrder
from ..clinical.ratings import Rating
from ..clinical.topic import Topic
from .content import CATEGORIES, URLS, CardInput


def consult_id(request: HookRequest, order: DraftOrder) -> str:
    """The PAMA consultation id written onto ``order`` in this hook call (``urn:uuid:...``); stable per call."""
    return f"urn:uuid:{stable_uuid(request.hook_instance, order.reference)}"


def pama_code(rating: Rating) -> str | None:
    """appropriate | not-appropriate | no-criteria-apply; None when the order gets no rating written."""
    if rating.status == "no-criteria-apply":
        return "no-criteria-apply"
    if rating.status == "rated" and rating.category:
        return CATEGORIES[rating.category]["pama"]
    return None


def rating_extensions(inp: CardInput, rating: Rating, pama: str, category: str | None) -> list[dict[str, Any]]:
    order = rating.order
    extensions: list[dict[str, Any]] = [
        {"url": URLS["pama_rating_extension"],
         "valueCodeableConcept": {"coding": [{"system": URLS["pama_rating_system"], "code": pama}]}},
        {"url": URLS["pama_consult_id_extension"], "valueUri": consult_id(inp.request, order)},
        {"url": URLS["pama_auc_applied_extension"], "valueUri": inp.topic_of(rating).pack.url},
    ]
    if category:
        extensions.append({"url": URLS["acr_rating_extension"], "valueCodeableConcept": {"coding": [
            {"system": URLS["acr_rating_system"], "code": category, "display": CATEGORIES[category]["display"]}]}})
    return extensions


def system_actions(inp: CardInput) -> list[dict[str, Any]]:
    """One rating update per coded, rated order; text-only and unrated orders get none."""
    actions = []
    for rating in inp.ratings:
        pama = pama_code(rating)
        if pama is None or rating.order.recognised_by != "code":
            continue
        resource = with_extensions(rating.order.resource, rating_extensions(inp, rating, pama, rating.category))
        what = CATEGORIES[rating.category]["display"] if rating.category else "no criteria apply"
        actions.append({"type": "update", "resource": resource,
                        "description": f"Record the ACR appropriateness rating ({what}) on {rating.order.display}"})
    return actions


def swap_action(inp: CardInput, rating: Rating, alternative: Mapping[str, Any],
                coding: Mapping[str, str]) -> dict[str, Any]:
    """Rewrite the draft order to the alternative: same id, subject and reasons, new code, its rating."""
    order = rating.order
    resource = with_extensions(order.resource, rating_extensions(inp, rating, "appropriate", alternative["category"]))
    resource["code"] = {"coding": [dict(coding)], "text": coding["display"]}
    resource.setdefault("subject", {"reference": f"Patient/{inp.request.patient_id}"})
    reason_entry = inp.topic_of(rating).text.get("fracture_reason")
    if not resource.get("reasonCode") and reason_entry:  # the sandbox reads reasonCode[].coding[0]
        reason = reason_entry["coding"]
        resource["reasonCode"] = [{"coding": [dict(reason)], "text": reason["display"]}]
    return {"type": "update", "resource": resource,
            "description": f"Change {order.display} to {coding['display']} ({alternative['name']}, "
                           f"{CATEGORIES[alternative['category']]['display']})"}


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
    if isinstance(value, Mapping):
        items = {k: _plain(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if not _empty(v)}
    if isinstance(value, list | tuple):
        return [v for v in (_plain(item) for item in value) if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)
