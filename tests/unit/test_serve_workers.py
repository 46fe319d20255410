"""`./run --workers`: `auto` (the default) is one worker process per CPU core."""

from __future__ import annotations

import os

import pytest

from serve import parse_args


def test_by_default_one_worker_process_per_core():
    assert parse_args([]).workers == os.cpu_count()


def test_auto_is_one_per_core_and_a_number_is_taken_as_is():
    assert parse_args(["--workers", "auto"]).workers == os.cpu_count()
    assert parse_args(["--workers", "AUTO"]).workers == os.cpu_count()
    assert parse_args(["--workers", "3"]).workers == 3
    assert parse_args(["--workers", "0"]).workers == 0


@pytest.mark.parametrize("value", ["many", "-1", "1.5"])
def test_anything_else_is_refused_with_a_message_naming_it(value, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--workers", value])
    error = capsys.readouterr().err
    assert "--workers" in error
