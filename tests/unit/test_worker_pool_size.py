"""How many database connections a worker's pool may open (queue_tasks/procrastinate_app.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inkwell_settings import InkwellSettings
from queue_tasks.procrastinate_app import worker_pool_size


@pytest.mark.parametrize(
    ("concurrency", "expected"),
    [(1, 4), (2, 4), (5, 7), (6, 8), (10, 8), (100, 8)],
)
def test_by_default_concurrency_plus_two_between_four_and_eight(concurrency, expected):
    assert worker_pool_size(InkwellSettings(database_url=None, worker_concurrency=concurrency)) == expected


def test_the_setting_wins_over_the_default(monkeypatch):
    monkeypatch.setenv("INKWELL_WORKER_POOL_SIZE", "20")
    monkeypatch.setenv("INKWELL_WORKER_CONCURRENCY", "100")
    assert worker_pool_size(InkwellSettings(database_url=None)) == 20


def test_a_negative_pool_size_is_refused_with_the_setting_named(monkeypatch):
    monkeypatch.setenv("INKWELL_WORKER_POOL_SIZE", "-1")
    with pytest.raises(ValidationError, match="worker_pool_size"):
        InkwellSettings(database_url=None)
