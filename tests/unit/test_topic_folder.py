"""Adding a topic is adding a folder: a test-only topic in tests/data/topics/ is loaded, routed and rated
without any code change, and a broken topic folder stops start-up with a message naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.clinical.topic import InvalidTopic, load_topics
from cds_service.settings import load_settings

TOPICS_DIR = Path(__file__).resolve().parents[1] / "data" / "topics"
CPT = "http://www.ama-assn.org/go/cpt"


def order(oid: str, code: str) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": oid, "status": "draft", "intent": "order",
            "code": {"coding": [{"system": CPT, "code": code}]}, "subject": {"reference": "Patient/p1"}}


def call(client: Any, *orders: dict[str, Any]) -> dict[str, Any]:
    body = {"hook": "order-sign", "hookInstance": "6a4d8c1e-3f0b-4b1e-9c55-0d7c2a1f9b10",
            "context": {"userId": "Practitioner/dr", "patientId": "p1",
                        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]}},
            "prefetch": {"patient": {"resourceType": "Patient", "id": "p1"},
                         **{key: {"resourceType": "Bundle", "type": "searchset", "entry": []}
                            for key in ("conditions", "painScores", "boneDensity", "observations", "medications",
                                        "imagingReports", "imagingStudies", "procedures")}}}
    response = client.post("/cds-services/spine-order-sign", json=body)
    assert response.status_code == 200, response.text
    return response.get_json()


def test_the_extra_folder_adds_a_topic_asked_in_its_rank() -> None:
    topics = load_topics("", str(TOPICS_DIR))
    assert [(t.id, t.rank) for t in topics] == [("spinal-trauma", 3), ("spine-infection", 4), ("myelopathy", 5),
                                                ("test-neck-pain", 5), ("inflammatory-back-pain", 6),
                                                ("cervical-pain", 8), ("vcf", 10), ("low-back-pain", 30),
                                                ("thoracic-back-pain", 31)]
    test_topic = next(t for t in topics if t.id == "test-neck-pain")
    assert (test_topic.pack.id, test_topic.facts_read()) == ("test-neck-pain-2099", ("neuro_red_flag",))


def test_the_engine_rates_an_order_under_the_test_topic_without_code_change(tmp_path: Path) -> None:
    settings = load_settings({"CDS_EXTRA_TOPICS_DIR": str(TOPICS_DIR)}, data_dir=str(tmp_path))
    response = call(create_app(settings).test_client(), order("neck", "72141"), order("lumbar", "72148"))
    neck = [c for c in response["cards"] if c["source"]["topic"]["code"] == "test-neck-pain-2099-rating"]
    assert [c["summary"] for c in neck] == ["MRI cervical spine without contrast: usually not appropriate (ACR 2/9)"]
    assert neck[0]["detail"].startswith("Neck pain without a neurologic red flag. Initial imaging. (ACR variant 1).")
    assert "- neurologic red flag: no" in neck[0]["detail"]
    [swap] = neck[0]["suggestions"]
    assert swap["actions"][0]["resource"]["code"]["coding"][0]["code"] == "72125"  # CT cervical spine
    written = {a["resource"]["id"]: a["resource"]["extension"] for a in response["systemActions"]}
    assert "neck" in written  # the lumbar MRI went to the low back pain topic, not to the test topic
    assert written["neck"][0]["valueCodeableConcept"]["coding"][0]["code"] == "not-appropriate"
    assert written["neck"][2]["valueUri"] == "https://acsearch.acr.org/list"  # the topic's own criteria


def test_without_the_setting_the_test_topic_is_not_loaded(tmp_path: Path) -> None:
    response = call(create_app(load_settings({}, data_dir=str(tmp_path))).test_client(), order("neck", "72141"))
    assert all(not c["source"]["topic"]["code"].startswith("test-neck") for c in response["cards"])
    [card] = response["cards"]  # the built cervical pain topic: it is for adults, and the record has no birth date
    assert card["source"]["topic"]["code"] == "acr-cervical-pain-2024-no-variant"
    assert "To rate it, document: age (date of birth)." in card["detail"]
    assert "systemActions" not in response  # nothing is written onto an order that could not be rated


@pytest.mark.parametrize(("file", "change", "message"), [
    ("rules.json", lambda d: d["packs"]["test-neck-pain-2099"]["variants"]["v1"].update(when={"fact": "x"}),
     "a leaf needs one of fact/order and one test"),
    ("rules.json", lambda d: d["gates"][0].update(reason="no-text-for-this"),
     "no reason text for ['no-text-for-this']"),
    ("rules.json", lambda d: d["packs"]["test-neck-pain-2099"]["order"].update(imaging=["v2"]),
     "order names variants without rules"),
    ("topic.json", lambda d: d.pop("precedence"), "topic.json is invalid"),
    ("test-neck-pain-2099.json", lambda d: d["variants"]["v1"].update(number=2), "does not match the id"),
])
def test_a_broken_topic_folder_stops_start_up(tmp_path: Path, file: str, change: Any, message: str) -> None:
    folder = tmp_path / "topics" / "test-neck-pain"
    shutil.copytree(TOPICS_DIR / "test-neck-pain", folder)
    data = json.loads((folder / file).read_text())
    change(data)
    (folder / file).write_text(json.dumps(data))
    with pytest.raises((InvalidTopic, ValueError), match=message.replace("[", r"\[").replace("]", r"\]")):
        load_topics("", str(tmp_path / "topics"))


def test_criteria_setting_names_at_most_one_pack_per_topic() -> None:
    with pytest.raises(InvalidTopic, match="two packs of topic 'vcf'"):
        load_topics("acr-vcf-2022,acr-vcf-2018")
    assert [t.pack.id for t in load_topics("acr-vcf-2018")] == ["acr-vcf-2018"]
