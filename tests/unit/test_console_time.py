"""The console's one time convention (console_time): relative times, the viewer's zone, 24-hour
clocks, and the daylight-saving edges."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from console_time import (
    UTC,
    SkippedLocalTime,
    aware_from_wall_clock,
    chart_wall_clock,
    clock,
    clock_and_relative,
    exact,
    relative,
    zone_label,
    zone_named,
)

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 12, 4, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (dt.timedelta(seconds=-2), "just now"),
        (dt.timedelta(seconds=-40), "40 s ago"),
        (dt.timedelta(minutes=-3, seconds=-10), "3 min ago"),
        (dt.timedelta(minutes=-59, seconds=-50), "1 h ago"),
        (dt.timedelta(hours=-2, minutes=-5), "2 h 5 min ago"),
        (dt.timedelta(days=-1), "1 day ago"),
        (dt.timedelta(days=-3, hours=-2), "3 days ago"),
        (dt.timedelta(seconds=3), "in a moment"),
        (dt.timedelta(minutes=4, seconds=50), "in 5 min"),
        (dt.timedelta(hours=1, minutes=30), "in 1 h 30 min"),
    ],
)
def test_a_time_reads_relative_to_now(offset, text):
    assert relative(NOW + offset, NOW, BERLIN) == text


def test_beyond_a_week_a_relative_time_is_the_day_in_the_viewers_zone():
    # 23:30 UTC on 20 Nov is already 21 Nov in Kolkata.
    assert relative(dt.datetime(2026, 11, 20, 23, 30, tzinfo=UTC), NOW, KOLKATA) == "on 21 Nov"
    assert relative(dt.datetime(2025, 11, 20, 12, 0, tzinfo=UTC), NOW, KOLKATA) == "on 20 Nov 2025"


def test_the_exact_time_is_in_the_viewers_zone_on_a_24_hour_clock():
    at = dt.datetime(2026, 12, 4, 13, 2, 11, tzinfo=UTC)
    assert exact(at, KOLKATA) == "2026-12-04 18:32:11 IST"
    assert exact(at, NEW_YORK) == "2026-12-04 08:02:11 EST"
    assert exact(dt.datetime(2026, 12, 4, 21, 0, tzinfo=UTC), BERLIN) == "2026-12-04 22:00:00 CET"


def test_a_clock_time_carries_its_day_unless_it_is_today_in_the_viewers_zone():
    assert clock(dt.datetime(2026, 12, 4, 12, 2, tzinfo=UTC), BERLIN, NOW) == "13:02"
    # 23:10 UTC on 3 Dec is 00:10 on 4 Dec in Berlin: today there.
    assert clock(dt.datetime(2026, 12, 3, 23, 10, tzinfo=UTC), BERLIN, NOW) == "00:10"
    assert clock(dt.datetime(2026, 12, 3, 23, 10, tzinfo=UTC), NEW_YORK, NOW) == "3 Dec 18:10"
    assert clock(dt.datetime(2025, 12, 31, 22, 0, tzinfo=UTC), NEW_YORK, NOW) == "31 Dec 2025 17:00"


def test_a_sentence_gets_the_clock_time_then_the_relative_time():
    assert clock_and_relative(NOW - dt.timedelta(minutes=3), KOLKATA, NOW) == "18:57 (3 min ago)"


def test_across_a_daylight_saving_change_a_relative_time_counts_real_time_not_the_wall_clock():
    # Berlin's clocks jump from 02:00 to 03:00 on 29 March 2026: 01:30 CET to 03:30 CEST is one hour.
    before = dt.datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    after = dt.datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    assert relative(before, after, BERLIN) == "1 h ago"
    assert exact(before, BERLIN) == "2026-03-29 01:30:00 CET"
    assert exact(after, BERLIN) == "2026-03-29 03:30:00 CEST"


def test_a_wall_clock_time_the_clocks_skip_is_refused():
    with pytest.raises(SkippedLocalTime, match="2026-03-29 02:30 does not exist in Europe/Berlin"):
        aware_from_wall_clock(dt.datetime(2026, 3, 29, 2, 30), BERLIN)


def test_a_wall_clock_time_the_clocks_pass_twice_is_the_first_of_the_two():
    # Berlin's clocks go back from 03:00 CEST to 02:00 CET on 25 October 2026: 02:30 happens twice.
    aware = aware_from_wall_clock(dt.datetime(2026, 10, 25, 2, 30), BERLIN)
    assert aware.astimezone(UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_an_ordinary_wall_clock_time_is_read_in_the_viewers_zone():
    aware = aware_from_wall_clock(dt.datetime(2026, 12, 4, 20, 0), KOLKATA)
    assert aware.astimezone(UTC) == dt.datetime(2026, 12, 4, 14, 30, tzinfo=UTC)


def test_a_charts_times_are_the_viewers_wall_clock():
    assert chart_wall_clock([dt.datetime(2026, 12, 4, 13, 0, tzinfo=UTC)], KOLKATA) == [dt.datetime(2026, 12, 4, 18, 30)]


def test_an_unknown_or_missing_zone_is_utc():
    assert zone_named("Mars/Olympus_Mons") is UTC
    assert zone_named(None) is UTC
    assert zone_named("Asia/Kolkata") == KOLKATA


def test_a_zone_is_labelled_with_its_abbreviation_at_that_moment():
    assert zone_label(BERLIN, dt.datetime(2026, 7, 1, tzinfo=UTC)) == "Europe/Berlin (CEST)"
    assert zone_label(BERLIN, dt.datetime(2026, 12, 1, tzinfo=UTC)) == "Europe/Berlin (CET)"
    assert zone_label(UTC) == "UTC"
