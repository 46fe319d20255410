"""Times as the console shows them, on every page: in the viewer's own time zone (the one the
browser reports, `st.context.timezone`), on a 24-hour clock.

- In text, a time reads relative ("3 min ago", "in 5 min"). Where the element has a tooltip (a
  caption's `help`), the exact time is in it; in a sentence without one (a warning, a success),
  the clock time comes first: "14:02 (3 min ago)".
- In a table, a cell has no tooltip (Streamlit 1.67's data grid shows them on headers only), so a
  table shows the exact time, and the column header's tooltip names the zone.
- A chart's time axis is 24-hour ("%H:%M", "%d %b %H:%M"), its tooltip the exact time.
- A date and time picked in a form (scheduling) is read in the viewer's zone; a wall-clock time
  the zone skips (a daylight-saving gap) is refused rather than moved.

The functions below taking `zone` and `now` are pure (tests/unit/test_console_time.py); the few
that read the viewer's zone from Streamlit say so.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

UTC = dt.timezone.utc
# momentJS formats, for st.column_config.DatetimeColumn.
TABLE_SECONDS = "YYYY-MM-DD HH:mm:ss"
TABLE_MILLISECONDS = "YYYY-MM-DD HH:mm:ss.SSS"
# d3 time formats, for chart axes and tooltips (vega-lite).
AXIS_MINUTES = "%H:%M"
AXIS_DAY_AND_HOUR = "%d %b %H:%M"
CHART_TOOLTIP = "%Y-%m-%d %H:%M"

JUST_NOW_SECONDS = 5
DAYS_SHOWN_RELATIVE = 7


class SkippedLocalTime(ValueError):
    """A wall-clock time that does not exist in the zone: its clocks jump over it (daylight saving)."""


def zone_named(name: str | None) -> dt.tzinfo:
    """The zone of that IANA name; UTC for none, or for a name this server does not know."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def browser_zone() -> dt.tzinfo:
    """The viewer's time zone, as their browser reports it (read from Streamlit); UTC when unknown."""
    return zone_named(st.context.timezone)


def zone_label(zone: dt.tzinfo, at: dt.datetime | None = None) -> str:
    """ "Europe/Berlin (CET)": the zone's name and its abbreviation at that moment (now by default)."""
    abbreviation = (at or dt.datetime.now(UTC)).astimezone(zone).tzname()
    name = str(zone)
    return name if abbreviation in (None, name) else f"{name} ({abbreviation})"


def exact(at: dt.datetime, zone: dt.tzinfo) -> str:
    """ "2026-12-04 14:02:11 CET": the exact time in the zone, 24-hour."""
    return f"{at.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"


def day(at: dt.datetime, zone: dt.tzinfo, now: dt.datetime) -> str:
    """ "3 Dec", with the year when it is not this year's."""
    local, today = at.astimezone(zone), now.astimezone(zone)
    year = f" {local.year}" if local.year != today.year else ""
    return f"{local.day} {local:%b}{year}"


def clock(at: dt.datetime, zone: dt.tzinfo, now: dt.datetime) -> str:
    """ "14:02" today (in the zone), "3 Dec 14:02" another day, "3 Dec 2025 14:02" another year."""
    local = at.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return f"{local:%H:%M}"
    return f"{day(at, zone, now)} {local:%H:%M}"


def relative(at: dt.datetime, now: dt.datetime, zone: dt.tzinfo) -> str:
    """ "just now", "40 s ago", "3 min ago", "2 h 5 min ago", "3 days ago", "in 5 min"; beyond a
    week, the day ("on 3 Dec")."""
    # In UTC: two times of one ZoneInfo subtract as wall clocks, which is an hour off across a change.
    seconds = (at.astimezone(UTC) - now.astimezone(UTC)).total_seconds()
    ahead, span = seconds > 0, abs(seconds)
    if span < JUST_NOW_SECONDS:
        return "in a moment" if ahead else "just now"
    if span < 60:
        text = f"{int(span)} s"
    elif (minutes := round(span / 60)) < 60:
        text = f"{minutes} min"
    elif minutes < 24 * 60:
        hours, minutes = divmod(minutes, 60)
        text = f"{hours} h" + (f" {minutes} min" if minutes else "")
    elif (days := round(span / 86_400)) < DAYS_SHOWN_RELATIVE:
        text = f"{days} day{'' if days == 1 else 's'}"
    else:
        return f"on {day(at, zone, now)}"
    return f"in {text}" if ahead else f"{text} ago"


def clock_and_relative(at: dt.datetime, zone: dt.tzinfo, now: dt.datetime) -> str:
    """ "14:02 (3 min ago)": for a sentence, where no tooltip can hold the exact time."""
    return f"{clock(at, zone, now)} ({relative(at, now, zone)})"


def aware_from_wall_clock(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """A date and time picked without a zone, read in `zone`. A time the clocks skip is refused; a
    time they pass twice (the hour after daylight saving ends) is the first of the two."""
    aware = wall.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
        raise SkippedLocalTime(
            f"{wall:%Y-%m-%d %H:%M} does not exist in {zone}: the clocks skip it (daylight saving). "
            "Choose another time."
        )
    return aware


def chart_wall_clock(instants: list[dt.datetime], zone: dt.tzinfo) -> list[dt.datetime]:
    """Instants as the zone's wall-clock times without a zone, for a chart: Streamlit draws a time
    without a zone at its wall-clock value (in the browser's local time units), so the axis shows
    the viewer's times as the server reckons them."""
    return [at.astimezone(zone).replace(tzinfo=None) for at in instants]


# --- on the page (these read the viewer's zone from Streamlit) ---


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


def in_viewer_zone(at: dt.datetime | None) -> dt.datetime | None:
    """For a table cell: the time in the viewer's zone (the grid shows a cell in its data's zone)."""
    return at.astimezone(browser_zone()) if at else None


def time_column(label: str | None = None, *, milliseconds: bool = False) -> ColumnConfig:
    """A table column of exact times; its header's tooltip names the viewer's zone."""
    return st.column_config.DatetimeColumn(
        label,
        format=TABLE_MILLISECONDS if milliseconds else TABLE_SECONDS,
        help=f"In your time zone, {zone_label(browser_zone())}; 24-hour clock.",
    )


def ago(at: dt.datetime) -> str:
    """ "3 min ago" / "in 5 min" for the viewer (pair it with `exact_here` in a tooltip)."""
    return relative(at, utc_now(), browser_zone())


def exact_here(at: dt.datetime) -> str:
    """The exact time in the viewer's zone, for a tooltip."""
    return exact(at, browser_zone())


def when_here(at: dt.datetime) -> str:
    """ "14:02 (3 min ago)" in the viewer's zone, for a sentence."""
    return clock_and_relative(at, browser_zone(), utc_now())


def clock_here(at: dt.datetime) -> str:
    """ "14:02" or "3 Dec 14:02" in the viewer's zone: for a label that names a thing (a selector's
    option, an expander), which a relative time would change under the reader's eyes."""
    return clock(at, browser_zone(), utc_now())


def duration(seconds: float) -> str:
    """4 min 10 s, 2 h 5 min, 3 d 4 h: precise when close, rounder when far."""
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"
