"""Per-kind time limits and the graceful shutdown time-out, as the settings give them."""

from __future__ import annotations

import pydantic
import pytest

from inkwell_settings import InkwellSettings


def test_a_kind_without_its_own_limit_gets_the_general_one():
    settings = InkwellSettings(task_time_limit_seconds=120)
    assert settings.time_limit_for("titles") == 120


def test_a_blog_post_gets_a_longer_limit_by_default():
    assert InkwellSettings().time_limit_for("blog_post") == 900


def test_per_kind_limits_override_the_general_one_and_the_defaults():
    settings = InkwellSettings(task_time_limit_seconds=300, task_time_limits=" titles=30, blog_post=1200 ,")
    assert settings.time_limit_for("titles") == 30
    assert settings.time_limit_for("blog_post") == 1200
    assert settings.time_limit_for("site_section") == 300


@pytest.mark.parametrize("value", ["titles", "titles=", "titles=soon", "titles=0", "=30", "titles=-5"])
def test_a_malformed_per_kind_limit_is_refused_with_an_example(value):
    with pytest.raises(pydantic.ValidationError, match="kind=seconds"):
        InkwellSettings(task_time_limits=value)


@pytest.mark.parametrize(
    ("stalled", "graceful", "expected"),
    [(30, 10, 10.0), (10, 10, 10 - 2 * 10 / 3), (2, 10, 2 - 2 * 0.6666666666666666), (30, 3, 3.0)],
)
def test_the_graceful_shutdown_stays_two_heartbeats_under_the_stalled_worker_timeout(monkeypatch, stalled, graceful, expected):
    from inkwell_settings import get_settings
    from queue_tasks import procrastinate_app

    monkeypatch.setenv("INKWELL_STALLED_WORKER_SECONDS", str(stalled))
    monkeypatch.setenv("INKWELL_SHUTDOWN_GRACEFUL_SECONDS", str(graceful))
    get_settings.cache_clear()
    try:
        defaults = procrastinate_app._worker_defaults()
    finally:
        get_settings.cache_clear()
    assert defaults["shutdown_graceful_timeout"] == pytest.approx(expected)
    assert defaults["shutdown_graceful_timeout"] + 2 * defaults["update_heartbeat_interval"] <= stalled + 1e-9
