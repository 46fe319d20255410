"""Titles: the Submit forms (one, pasted, CSV) and the result view."""

from __future__ import annotations

from collections.abc import Callable

import pydantic
import streamlit as st

from console_kinds.plain_text import as_text
from console_ui import escape_markdown, plural
from db.requests import GenerationRequest
from queue_tasks.bulk_input import MAX_BULK_ROWS, BulkInput, BulkInputRefused, RefusedLine, parse_pasted_topics, parse_titles_csv
from queue_tasks.models import TitlesInput, describe_validation_error
from queue_tasks.titles import KIND

QueueRequests = Callable[..., None]
# Big enough for MAX_BULK_ROWS rows of the longest topics; a larger file is refused by the uploader.
MAX_CSV_MEGABYTES = 20


def show_result(request: GenerationRequest) -> None:
    titles = (request.result or {}).get("titles")
    if isinstance(titles, list) and titles:
        st.markdown("\n".join(f"{i}. {as_text(t)}" for i, t in enumerate(titles, 1)))
    else:
        st.caption("No titles in this result.")


def shortened(text: str, limit: int = 80) -> str:
    """A refused line as the table shows it: a line of 100,000 characters fits its column."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def show_refused_lines(refused: list[RefusedLine], *, left_in_form: bool = False) -> None:
    """Each refused line with its number (as given), its text and why."""
    one = len(refused) == 1
    if left_in_form:
        rest = "it is left in the box: fix it and submit again" if one else "they are left in the box: fix them and submit again"
    else:
        rest = "fix it and submit it again" if one else "fix them and submit them again"
    st.warning(f"{plural(len(refused), 'line')} refused — {rest}:")
    st.dataframe([{"Line": line.line, "Text": shortened(line.text), "Reason": line.reason} for line in refused], hide_index=True,
                 column_config={"Text": st.column_config.TextColumn("Text", width="medium")})


def queue_batch(queue_requests: QueueRequests, batch: BulkInput, *, box: str | None = None) -> None:
    """Queue the valid lines; with `box` (the pasted text's field), only the refused lines stay in it."""
    if batch.requests:
        # On success the page runs again with the box holding only the refused lines (queue_requests).
        queue_requests(KIND, batch.requests, refused=batch.refused,
                       reset={box: batch.refused_text} if box else None, refused_left_in_form=bool(box))
    elif len(batch.refused) == 1:
        st.error("Nothing was queued: the one line was refused.")
    else:
        st.error("Nothing was queued: every line was refused.")
    if batch.refused:
        show_refused_lines(batch.refused)


def titles_options(form: str) -> tuple[str, str, int]:
    left, middle, right = st.columns([2, 2, 1])
    audience = left.text_input("Audience (optional)", placeholder="e.g. city renters", max_chars=200, key=f"{form}_audience")
    tone = middle.text_input("Tone (optional)", placeholder="e.g. friendly", max_chars=200, key=f"{form}_tone")
    count = right.number_input("Number of titles", min_value=1, max_value=20, value=5, step=1, key=f"{form}_count")
    return audience, tone, int(count)


def one_titles_request(queue_requests: QueueRequests) -> None:
    with st.form("one_request"):
        topic = st.text_area("Topic", placeholder="e.g. composting in small apartments", max_chars=500, key="one_topic")
        audience, tone, count = titles_options("one")
        submitted = st.form_submit_button("Submit", type="primary", key="one_submit")
    if submitted:
        try:
            data = TitlesInput(topic=topic, audience=audience, tone=tone, count=count)
        except pydantic.ValidationError as error:
            st.error(f"Nothing was queued. {describe_validation_error(error)}")
        else:
            queue_requests(KIND, [data], reset={"one_topic": "", "one_audience": "", "one_tone": ""})


def pasted_titles_requests(queue_requests: QueueRequests) -> None:
    with st.form("pasted_requests"):
        text = st.text_area(
            "Topics, one per line", height=240, key="pasted_topics",
            placeholder="composting in small apartments\nurban beekeeping\nwinter gardening",
        )
        st.caption("The audience, tone and number of titles below apply to every topic. Blank lines are skipped.")
        audience, tone, count = titles_options("pasted")
        submitted = st.form_submit_button("Submit these topics", type="primary", key="pasted_submit")
    if submitted:
        try:
            queue_batch(queue_requests, parse_pasted_topics(text, audience=audience, tone=tone, count=count), box="pasted_topics")
        except BulkInputRefused as refusal:
            st.error(escape_markdown(str(refusal)))


def csv_titles_requests(queue_requests: QueueRequests) -> None:
    with st.form("csv_requests"):
        upload = st.file_uploader(
            "CSV file", type=["csv", "tsv", "txt"], max_upload_size=MAX_CSV_MEGABYTES, key="csv_file"
        )
        st.caption(
            f"A header row first, naming the columns: **topic** (required), audience, tone, count (1–20, default 5). "
            f"Commas, semicolons or tabs between cells; UTF-8 text; at most {MAX_BULK_ROWS:,} rows."
        )
        submitted = st.form_submit_button("Submit the file's rows", type="primary", key="csv_submit")
    if submitted:
        if upload is None:
            st.warning("Choose a CSV file first.")
            return
        try:
            queue_batch(queue_requests, parse_titles_csv(upload.getvalue()))
        except BulkInputRefused as refusal:
            # The message may quote the file's header line: data, not markup.
            st.error(escape_markdown(f"“{upload.name}” was not queued. {refusal}"))


def forms(queue_requests: QueueRequests) -> None:
    one, pasted, upload = st.tabs(["One request", "Paste many topics", "Upload a CSV"])
    with one:
        one_titles_request(queue_requests)
    with pasted:
        pasted_titles_requests(queue_requests)
    with upload:
        csv_titles_requests(queue_requests)
