"""The campaign spec and the client's request models are one definition of what ColdSend takes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.coldsend import CampaignCreate, SequenceStep, Variant
from flows import CampaignSpec, FollowUpSpec, VariantSpec

HELLO = "Hello there, friend."


def test_the_spec_is_built_from_the_client_models() -> None:
    assert VariantSpec is Variant and FollowUpSpec is SequenceStep
    assert issubclass(CampaignSpec, CampaignCreate)
    spec = CampaignSpec(
        name="Q3 outbound test", variants=[VariantSpec(subject_template="Hi", email_content=HELLO)]
    )
    assert set(spec.settings()) == set(CampaignCreate.model_fields)
    assert CampaignCreate(**spec.settings()) == CampaignCreate(name="Q3 outbound test")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "short"}, "at least 8 characters"),
        ({"timezone": "Mars/Olympus"}, "IANA time zone"),
        ({"sending_window_start": 17, "sending_window_end": 9}, "must be after"),
        ({"sending_days": [1, 1]}, "must not repeat"),
        (
            {
                "variants": [
                    Variant(
                        variant_name="A",
                        subject_template="a",
                        email_content=HELLO,
                        distribution_percent=50,
                    ),
                    Variant(
                        variant_name="B",
                        subject_template="b",
                        email_content=HELLO,
                        distribution_percent=40,
                    ),
                ]
            },
            "sum to 100",
        ),
        (
            {"variants": [{"variant_name": "A1", "subject_template": "a", "email_content": HELLO}]},
            "should match pattern",
        ),
        (
            {
                "sequences": [
                    {
                        "step_number": 2,
                        "wait_days": 30,
                        "variants": [{"subject_template": "f", "email_content": HELLO}],
                    },
                    {
                        "step_number": 3,
                        "wait_days": 20,
                        "variants": [{"subject_template": "g", "email_content": HELLO}],
                    },
                ]
            },
            "at most 45",
        ),
    ],
)
def test_the_spec_refuses_what_the_client_would(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "Q3 outbound test"} | kwargs
    with pytest.raises(ValidationError, match=message):
        CampaignSpec.model_validate(fields)
    if not {"variants", "sequences"} & set(kwargs):
        with pytest.raises(ValidationError, match=message):
            CampaignCreate.model_validate(fields)


def test_a_follow_up_defaults_to_not_replied_and_its_variant_to_a() -> None:
    step = FollowUpSpec.model_validate(
        {
            "step_number": 2,
            "wait_days": 3,
            "variants": [{"subject_template": "f", "email_content": HELLO}],
        }
    )
    assert step.trigger_type == "NOT_REPLIED"
    assert step.variants[0].variant_name == "A" and step.variants[0].distribution_percent == 100


def test_a_spec_edited_in_place_is_checked_like_a_new_one() -> None:
    spec = CampaignSpec(
        name="Q3 outbound test", variants=[VariantSpec(subject_template="Hi", email_content=HELLO)]
    )
    spec.variants[0].subject_template = "Second draft"
    assert spec.variants[0].subject_template == "Second draft"
    with pytest.raises(ValidationError, match="at least 10 characters"):
        spec.variants[0].email_content = "short"
    with pytest.raises(ValidationError, match="must be after"):
        spec.sending_window_end = 5
