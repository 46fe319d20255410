"""Validation of a titles request at the edge, with messages a person can act on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from queue_tasks.models import TitlesInput, describe_validation_error


def message_for(**fields) -> str:
    with pytest.raises(ValidationError) as caught:
        TitlesInput.model_validate(fields)
    return describe_validation_error(caught.value)


def test_topic_is_trimmed_and_defaults_apply():
    data = TitlesInput(topic="  urban beekeeping \n")
    assert (data.topic, data.count, data.audience, data.tone) == ("urban beekeeping", 5, None, None)


@pytest.mark.parametrize("topic", ["", "   ", "\t\n", "ab", " a "])
def test_empty_whitespace_or_short_topic_names_the_minimum(topic):
    assert message_for(topic=topic) == "topic: must be at least 3 characters (after trimming spaces)"


def test_missing_topic_is_reported_as_required():
    assert message_for() == "topic: is required"


def test_too_long_topic_names_the_maximum():
    assert message_for(topic="x" * 501) == "topic: must be at most 500 characters"


def test_topic_of_exactly_500_characters_is_accepted():
    assert len(TitlesInput(topic="x" * 500).topic) == 500


@pytest.mark.parametrize(("count", "message"), [(0, "count: must be at least 1"), (21, "count: must be at most 20"),
                                              (-3, "count: must be at least 1")])
def test_count_outside_one_to_twenty_is_refused_in_plain_words(count, message):
    assert message_for(topic="urban beekeeping", count=count) == message


@pytest.mark.parametrize("value", ["5", 5.5, None, [5]])
def test_count_of_the_wrong_type_is_refused(value):
    assert message_for(topic="urban beekeeping", count=value) == "count: must be a whole number"


@pytest.mark.parametrize("value", [5, None, ["a"], {"a": 1}])
def test_topic_of_the_wrong_type_is_refused(value):
    assert message_for(topic=value) == "topic: must be text"


def test_unknown_field_is_refused_by_name():
    assert message_for(topic="urban beekeeping", colour="red") == "colour: is not a field of this request"


def test_control_characters_and_nul_bytes_are_removed():
    assert TitlesInput(topic="bee\x00keep\x07ing\x1b").topic == "beekeeping"


def test_blank_audience_and_tone_mean_none():
    data = TitlesInput(topic="urban beekeeping", audience="   ", tone="")
    assert (data.audience, data.tone) == (None, None)


def test_several_problems_are_all_named():
    message = message_for(topic="x", count=99)
    assert "topic: must be at least 3 characters" in message and "count:" in message
