"""Each CDS Hooks 2.0 response invariant fails loudly when violated."""

import copy
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.cds_hooks.response import ResponseInvariantError, check_response, stable_uuid


def good_response() -> dict[str, Any]:
    return {
        "cards": [{
            "uuid": "0c8e3f7a-5d0c-4f0c-9a37-3a3e5f2b9c10",
            "summary": "MRI lumbar spine with contrast: usually not appropriate",
            "indicator": "warning",
            "source": {"label": "ACR Appropriateness Criteria", "url": "https://acsearch.acr.org/docs/70545/Narrative/",
                       "topic": {"system": "https://example.org/topics", "code": "acr-vcf-2022-rating"}},
            "detail": "Variant 1",
            "selectionBehavior": "any",
            "suggestions": [{
                "label": "Order MRI lumbar spine without contrast",
                "uuid": "1c8e3f7a-5d0c-4f0c-9a37-3a3e5f2b9c10",
                "actions": [{"type": "update", "description": "Change to 72148",
                             "resource": {"resourceType": "ServiceRequest", "id": "x"}}],
            }],
            "overrideReasons": [{"system": "https://example.org/override", "code": "clinical", "display": "Clinical"}],
            "links": [{"label": "ACR", "url": "https://acsearch.acr.org/", "type": "absolute"}],
        }],
        "systemActions": [{"type": "update", "description": "Record rating",
                           "resource": {"resourceType": "ServiceRequest", "id": "x"}}],
    }


def test_good_response_and_empty_cards_pass() -> None:
    check_response(good_response())
    check_response({"cards": []})


def mutate(path: str, value: Any) -> dict[str, Any]:
    response = copy.deepcopy(good_response())
    target: Any = response
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is DELETE:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return response


DELETE = object()


@pytest.mark.parametrize("path, value, message", [
    ("cards.0.summary", "x" * 140, "shorter than 140"),
    ("cards.0.summary", DELETE, "summary is required"),
    ("cards.0.indicator", "hard-stop", "indicator"),
    ("cards.0.source.label", DELETE, "source.label"),
    ("cards.0.uuid", DELETE, "uuid is required"),
    ("cards.0.selectionBehavior", DELETE, "selectionBehavior"),
    ("cards.0.selectionBehavior", "all", "selectionBehavior"),
    ("cards.0.suggestions.0.uuid", DELETE, "uuid is required"),
    ("cards.0.suggestions.0.label", DELETE, "label is required"),
    ("cards.0.suggestions.0.actions.0.description", DELETE, "description is required"),
    ("cards.0.suggestions.0.actions.0.type", "UPDATE", "type must be"),
    ("cards.0.suggestions.0.actions.0.resource", DELETE, "needs the whole resource"),
    ("systemActions.0.description", DELETE, "description is required"),
    ("cards.0.overrideReasons.0.display", DELETE, "display is required"),
    ("cards.0.links.0.type", "relative", "absolute or smart"),
    ("cards.0.links.0.appContext", "x", "only allowed on smart links"),
    ("cards.0.detail", None, "null or empty"),
    ("cards.0.detail", "", "null or empty"),
    ("cards.0.links", [], "null or empty"),
    ("systemActions", [], "null or empty"),
    ("cards.0.source.topic.system", DELETE, "code and system"),
])
def test_each_invariant_fails_loudly(path: str, value: Any, message: str) -> None:
    with pytest.raises(ResponseInvariantError, match=message):
        check_response(mutate(path, value))


def test_delete_must_use_resource_id() -> None:
    response = good_response()
    response["systemActions"] = [{"type": "delete", "description": "drop", "resource": {"resourceType": "X"}}]
    with pytest.raises(ResponseInvariantError, match="delete uses resourceId"):
        check_response(response)
    response["systemActions"] = [{"type": "delete", "description": "drop", "resourceId": ["ServiceRequest/x"]}]
    check_response(response)


def test_at_most_one_allows_one_recommended_suggestion() -> None:
    response = good_response()
    card = response["cards"][0]
    card["selectionBehavior"] = "at-most-one"
    second = copy.deepcopy(card["suggestions"][0])
    second["uuid"] = "2c8e3f7a-5d0c-4f0c-9a37-3a3e5f2b9c10"
    card["suggestions"][0]["isRecommended"] = True
    second["isRecommended"] = True
    card["suggestions"].append(second)
    with pytest.raises(ResponseInvariantError, match="at most one recommended"):
        check_response(response)


def test_unknown_top_level_member_and_missing_cards_fail() -> None:
    with pytest.raises(ResponseInvariantError, match="unknown response members"):
        check_response({"cards": [], "warnings": ["x"]})
    with pytest.raises(ResponseInvariantError, match="'cards' array"):
        check_response({"systemActions": []})


def test_stable_uuid_is_deterministic_and_distinct() -> None:
    assert stable_uuid("hook-1", "rating", "ServiceRequest/a") == stable_uuid("hook-1", "rating", "ServiceRequest/a")
    assert stable_uuid("hook-1", "rating", "ServiceRequest/a") != stable_uuid("hook-2", "rating", "ServiceRequest/a")


@pytest.mark.parametrize("path, value, where", [
    ("cards.0.suggestions.0.actions.0.resource.note", [{"text": ""}], "cards[0].suggestions[0].actions[0]"
     ".resource.note[0].text"),
    ("cards.0.source.topic.display", None, "response.cards[0].source.topic.display"),
    ("systemActions.0.resource.code", {}, "response.systemActions[0].resource.code"),
])
def test_empty_members_are_named_wherever_they_are(path: str, value: Any, where: str) -> None:
    with pytest.raises(ResponseInvariantError) as failed:
        check_response(mutate(path, value))
    assert str(failed.value).endswith(f"{where}: null or empty members are not allowed")


@pytest.mark.parametrize("text", ['write [] or {} or "" or null', "null", "[]"])
def test_empty_looking_text_is_not_an_empty_member(text: str) -> None:
    check_response(mutate("cards.0.detail", text))


def test_other_types_and_keys_are_left_to_the_walk_with_paths() -> None:
    check_response(mutate("cards.0.suggestions.0.actions.0.resource.id", ("x",)))  # a tuple: not judged
    with pytest.raises(ResponseInvariantError, match=r"resource\.x\.1: null or empty"):
        check_response(mutate("cards.0.suggestions.0.actions.0.resource.x", {1: None}))  # int key


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=4))
def test_stable_uuid_is_uuid5(parts: list[str]) -> None:
    expected = str(uuid.uuid5(uuid.UUID("6f3b8a52-2f0e-4d55-9a3c-2b7f4f7d9c11"), "\x1f".join(parts)))
    assert stable_uuid(*parts) == expected
