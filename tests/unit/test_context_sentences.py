"""The ConText rule table (clinical/shared/context.json) on sentences written as radiology reports and problem lists.

Each row: concept of codes.json, sentence, expected result of the text search (positive = the finding is affirmed
for the patient now; negated / historical / hypothetical / family otherwise; None = the phrase is absent).
"""

from __future__ import annotations

import time

import pytest

from cds_service.clinical.facts import load_fact_rules

RULES = load_fact_rules()
P, N, H, Y, F = "positive", "negated", "historical", "hypothetical", "family"

CORD = "neuro_always"  # cord compression, cauda equina syndrome, retropulsion with canal compromise
DEFICIT = "neuro_if_new"  # leg weakness, urinary retention, bowel/bladder dysfunction, numbness
EDEMA = "marrow_edema"
PAIN = "back_pain"
SURGERY = "prior_augmentation_or_surgery"
CANCER = "malignancy"
RETRO = "retropulsion"
KYPHOSIS = "deformity"

SENTENCES: list[tuple[str, str, str | None]] = [
    # plain positives
    (CORD, "Severe cord compression at T12.", P),
    (CORD, "Retropulsed fragment causing cord compression.", P),
    (CORD, "Findings consistent with cauda equina syndrome.", P),
    (CORD, "Compression of the spinal cord at T11-T12.", P),
    (CORD, "Clinical concern: cauda equina syndrome, MRI today.", P),
    (CORD, "Saddle anesthesia since this morning.", P),
    (CORD, "Retropulsion with moderate canal compromise at L1.", P),
    (CORD, "T12 fracture with retropulsion causing severe narrowing of the spinal canal.", P),
    (CORD, "New cord compression compared with the prior study.", P),
    (CORD, "Cord compression cannot be excluded.", P),
    (CORD, "Cord compression is not ruled out.", P),
    (CORD, "No increase in the known cord compression.", P),
    (CORD, "No change in cord compression at T12.", P),
    (CORD, "No interval change of the cord compression.", P),
    (CORD, "No worsening of the cord compression.", P),
    (CORD, "No fracture at L1 but cord compression at T12.", P),
    (CORD, "No fever, however cord compression at T10 on MRI.", P),
    (CORD, "Patient denies trauma; cord compression on today's MRI.", P),
    (CORD, "82-year-old woman with cord compression.", P),
    (CORD, "Cord compression, worse than before.", P),
    # pre-negations
    (CORD, "No cord compression.", N),
    (CORD, "No evidence of cord compression.", N),
    (CORD, "No signs of cauda equina syndrome.", N),
    (CORD, "Without cord compression.", N),
    (CORD, "Negative for cord compression.", N),
    (CORD, "Free of cord compression.", N),
    (CORD, "Absence of cord compression.", N),
    (CORD, "No spinal canal stenosis, cord compression, or cauda equina syndrome.", N),
    (CORD, "No fracture, retropulsion or cord compression.", N),
    (CORD, "No significant cord compression.", N),
    (CORD, "There is no new cord compression.", N),
    (CORD, "Ruled out cord compression.", N),
    (CORD, "Denies saddle anesthesia.", N),
    (CORD, "Retropulsion without canal compromise.", None),
    (CORD, "Retropulsion with no canal compromise.", None),
    # post-negations
    (CORD, "Cord compression is not identified.", N),
    (CORD, "Compression of the cord is not seen.", N),
    (CORD, "Cord compression: none.", N),
    (CORD, "Cord compression not present.", N),
    (CORD, "Cord compression was ruled out.", N),
    (CORD, "Cord compression has been ruled out.", N),
    (CORD, "Cauda equina syndrome is unlikely.", N),
    (CORD, "Cord compression was excluded on MRI.", N),
    (CORD, "Cauda equina syndrome absent.", N),
    (CORD, "Compression of the spinal cord is not demonstrated.", N),
    # anatomy is not pathology
    (CORD, "Conus medullaris and cauda equina unremarkable.", None),
    (CORD, "The cauda equina nerve roots are normal in distribution.", None),
    (CORD, "Normal signal of the spinal cord.", None),
    (CORD, "The conus terminates at L1; cauda equina normal.", None),
    # historical
    (CORD, "History of cord compression in 2018.", H),
    (CORD, "Prior cord compression in 2018, treated with decompression.", H),
    (CORD, "Cord compression in 2019, s/p laminectomy.", H),
    (CORD, "S/p cord compression surgery.", H),
    (CORD, "Remote cauda equina syndrome.", H),
    (CORD, "Cord compression 3 years ago.", H),
    (CORD, "Status post cauda equina syndrome.", H),
    (CORD, "Previous cord compression at C5.", H),
    (CORD, "Cauda equina syndrome in the past.", H),
    # hypothetical
    (CORD, "Rule out cord compression.", Y),
    (CORD, "MRI to evaluate for cord compression.", Y),
    (CORD, "R/O cauda equina syndrome.", Y),
    (CORD, "Return if saddle anesthesia develops.", Y),
    (CORD, "If cord compression, consult neurosurgery.", Y),
    (CORD, "Assess for cord compression.", Y),
    (CORD, "Cord compression should be ruled out.", Y),
    (CORD, "Warning signs of cauda equina syndrome reviewed with patient.", Y),
    (CORD, "Risk of cord compression discussed.", Y),
    (CORD, "Should there be saddle anesthesia, go to the ED.", Y),
    # family
    (CORD, "Mother had cauda equina syndrome.", F),
    (CORD, "Family history of cord compression.", F),
    (CORD, "Cauda equina syndrome in her mother.", F),
    # deficits
    (DEFICIT, "New leg weakness since Monday.", P),
    (DEFICIT, "Progressive bilateral leg weakness.", P),
    (DEFICIT, "Urinary retention, post-void residual 600 mL.", P),
    (DEFICIT, "Bowel incontinence since yesterday.", P),
    (DEFICIT, "New numbness in both legs.", P),
    (DEFICIT, "Leg weakness, reflexes absent at the ankles.", P),
    (DEFICIT, "Leg weakness, no bowel or bladder dysfunction.", P),
    (DEFICIT, "No fever but new leg weakness.", P),
    (DEFICIT, "Weakness in the legs not resolved.", P),
    (DEFICIT, "Denies fever, reports urinary retention.", P),
    (DEFICIT, "Foot drop on the left.", P),
    (DEFICIT, "Myelopathy with gait disturbance.", P),
    (DEFICIT, "No leg weakness.", N),
    (DEFICIT, "Denies leg weakness or incontinence.", N),
    (DEFICIT, "No longer has leg weakness.", N),
    (DEFICIT, "Leg weakness resolved.", N),
    (DEFICIT, "Bilateral leg weakness has since resolved.", N),
    (DEFICIT, "Urinary retention absent.", N),
    (DEFICIT, "No bowel or bladder dysfunction.", N),
    (DEFICIT, "Without foot drop.", N),
    (DEFICIT, "No urinary retention, no saddle anesthesia.", N),
    (DEFICIT, "Negative for leg weakness and numbness.", N),
    (DEFICIT, "Leg weakness is not present.", N),
    (DEFICIT, "Bladder dysfunction: none.", N),
    (DEFICIT, "History of urinary retention after surgery in 2015.", H),
    (DEFICIT, "Prior foot drop, resolved.", H),  # the comma stops "resolved"; "prior" still makes it history
    (DEFICIT, "Myelopathy in 2012.", H),
    (DEFICIT, "Call if leg weakness develops.", Y),
    (DEFICIT, "Return for urinary retention or leg weakness.", Y),
    (DEFICIT, "Father has leg weakness from polio.", F),
    (DEFICIT, "Father had leg weakness from polio.", F),
    # marrow edema
    (EDEMA, "T12 fracture with bone marrow edema.", P),
    (EDEMA, "Intravertebral cleft at L1.", P),
    (EDEMA, "STIR hyperintensity in the T12 vertebral body.", P),
    (EDEMA, "Fluid sign at L2, consistent with nonunion.", P),
    (EDEMA, "No marrow edema.", N),
    (EDEMA, "Without marrow oedema.", N),
    (EDEMA, "Marrow edema is not identified.", N),
    (EDEMA, "Old T12 fracture without marrow edema, no cleft.", N),
    (EDEMA, "Marrow edema has resolved.", N),
    (EDEMA, "No STIR hyperintensity to suggest an acute fracture.", N),
    (EDEMA, "Marrow edema absent at T12, present at L1.", N),
    (EDEMA, "No increase in marrow edema at T12.", P),
    # back pain
    (PAIN, "Back pain for two weeks.", P),
    (PAIN, "Severe mechanical back pain.", P),
    (PAIN, "New back pain after lifting.", P),
    (PAIN, "No back pain.", N),
    (PAIN, "Denies back pain.", N),
    (PAIN, "Back pain resolved.", N),
    (PAIN, "Back pain has resolved after bracing.", N),
    (PAIN, "History of back pain in 2010.", H),
    (PAIN, "Prior back pain, now pain-free.", H),
    (PAIN, "No longer reports back pain.", N),
    (PAIN, "Return if back pain recurs.", Y),
    # prior surgery: history counts
    (SURGERY, "History of vertebroplasty at L1 in 2018.", P),
    (SURGERY, "S/p kyphoplasty T12.", P),
    (SURGERY, "Prior lumbar fusion.", P),
    (SURGERY, "Status post laminectomy L4-L5.", P),
    (SURGERY, "No prior spine surgery.", N),
    (SURGERY, "Never had vertebroplasty.", N),
    (SURGERY, "Kyphoplasty discussed, if pain persists.", P),
    (SURGERY, "Mother had spinal fusion.", F),
    # malignancy: history counts (the malignancy fact grades it)
    (CANCER, "History of breast cancer in 2015.", P),
    (CANCER, "Metastatic breast cancer.", P),
    (CANCER, "No evidence of malignancy.", N),
    (CANCER, "Negative for metastatic disease.", N),
    (CANCER, "Family history of breast cancer.", F),
    (CANCER, "Breast cancer in her mother.", F),
    (CANCER, "Rule out metastatic disease.", Y),
    # retropulsion fact (not a red flag by itself)
    (RETRO, "Mild retropulsion of the posterior superior endplate.", P),
    (RETRO, "No retropulsion.", N),
    (RETRO, "Retropulsion is not seen.", N),
    (RETRO, "Without retropulsed fragments.", N),
    # deformity
    (KYPHOSIS, "Progressive thoracic kyphosis.", P),
    (KYPHOSIS, "Interval loss of vertebral body height at T12.", P),
    (KYPHOSIS, "Height loss of 40% at L1.", P),
    (KYPHOSIS, "No loss of vertebral body height.", N),
    (KYPHOSIS, "No kyphosis.", N),
    (KYPHOSIS, "Stooped posture, worse over 3 months.", P),
    # scope: sentence ends and terminators
    (CORD, "No fracture. Cord compression at T12.", P),
    (CORD, "Negative for fracture; cord compression at T10.", P),
    (CORD, "No acute fracture, although there is cord compression at T12.", P),
    (CORD, "No fracture of the sacrum, aside from cord compression at T11.", P),
    (DEFICIT, "No fever or chills - new urinary retention.", P),
    (DEFICIT, "No trauma. Urinary retention since last night.", P),
    (EDEMA, "Measuring 2.5 cm, no marrow edema.", N),
    (CORD, "Patient denies trauma. Has cord compression at T12.", P),
]


def test_the_table_is_large_and_covers_every_category() -> None:
    assert len(SENTENCES) >= 150
    assert {expected for _, _, expected in SENTENCES} == {P, N, H, Y, F, None}


@pytest.mark.parametrize(("concept", "sentence", "expected"), SENTENCES,
                         ids=[f"{i:03d}-{s[:40]}" for i, (_, s, _) in enumerate(SENTENCES)])
def test_sentence(concept: str, sentence: str, expected: str | None) -> None:
    assert RULES.concept(concept).text.search(sentence) == expected


def test_context_is_fast_enough_to_run_on_every_resource() -> None:
    texts = [s for _, s, _ in SENTENCES]
    concepts = [RULES.concept(c).text for c, _, _ in SENTENCES]
    start = time.perf_counter()
    for _ in range(20):
        for concept, text in zip(concepts, texts, strict=True):
            concept.search(text)
    per_sentence = (time.perf_counter() - start) / (20 * len(texts))
    assert per_sentence < 0.0005, per_sentence  # well under medspaCy's 1.2 ms a sentence, on a shared machine
