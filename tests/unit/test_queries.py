"""Named SQL blocks are parsed as Procrastinate's queries.sql is."""

from __future__ import annotations

import pytest

from db.queries import QUERIES, parse_query_blocks


def test_blocks_are_split_by_name_and_lose_their_description():
    text = "-- first --\n-- Does one thing.\nSELECT 1\n\n-- second --\n-- Another.\nSELECT %(x)s\n"
    assert parse_query_blocks(text) == {"first": "SELECT 1", "second": "SELECT %(x)s"}


def test_a_name_defined_twice_is_an_error():
    with pytest.raises(ValueError, match="defined twice"):
        parse_query_blocks("-- same --\nSELECT 1\n-- same --\nSELECT 2\n")


def test_every_query_binds_parameters_instead_of_formatting_them():
    for name, sql in QUERIES.items():
        assert "{" not in sql and "%s" not in sql.replace("%(", ""), name
