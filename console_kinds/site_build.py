"""Site builds: the Submit form (upload a YAML/JSON definition, or build one with a small form),
and the result views of a section and of a promotion."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from console_kinds.plain_text import as_text
from console_time import when_here
from console_ui import StartRefused, chosen_start, database, escape_markdown, plural, show_unavailable
from db.connection import QueueUnavailable
from db.requests import GenerationRequest
from inkwell_settings import get_settings
from queue_tasks.site_build import (
    KIND,
    MAX_DEFINITION_MEGABYTES,
    MODE_LABELS,
    TEMPLATES,
    BuildRefused,
    SectionRef,
    SiteDefinition,
    SiteDefinitionError,
    parse_site_definition,
    site_definition_from,
    submit_site_build,
)
from queue_tasks.site_promotion import KIND as PROMOTION_KIND

QueueRequests = Callable[..., None]
SITE_BUILDS_PAGE = "pages/6_Site_builds.py"
EXAMPLE_YAML = """site: Acme Bakery
business:
  business_type: neighbourhood bakery
  target_audience: young families
  brand_voice: warm and playful
routes:
  - path: /
    sections:
      - template: hero
      - template: features
  - path: /pricing
    sections:
      - template: pricing
      - template: faq
"""


def show_content(content: dict | None) -> None:
    """A section's content, as text: it is model output."""
    if not content:
        st.caption("No content yet.")
        return
    st.markdown(f"**{as_text(content.get('headline', ''))}**")
    st.markdown(as_text(content.get("body", "")))
    items = content.get("items") or []
    if isinstance(items, list) and items:
        st.markdown(
            "\n".join(
                f"- **{as_text(item.get('title', ''))}** — {as_text(item.get('text', ''))}"
                for item in items
                if isinstance(item, dict)
            )
        )


def show_result(request: GenerationRequest) -> None:
    result = request.result or {}
    if result.get("skipped"):
        st.caption(f"Left as it was: this section already had content (version {result.get('version')}).")
        return
    st.caption(f"Version {result.get('version')} of this section")
    show_content(result.get("content"))


def show_promotion_result(request: GenerationRequest) -> None:
    result = request.result or {}
    st.markdown(
        f"{as_text(result.get('action', ''))}: {result.get('done', 0)} done, "
        f"{result.get('skipped', 0)} skipped, {result.get('failed', 0)} failed"
    )


def submit_build(definition: SiteDefinition, mode: str, only: list[SectionRef] | None = None, *,
                 empty_the_form: bool = False) -> None:
    """Queue a build (or a regeneration) and say what happened. With `empty_the_form` (the Submit
    page's form), a queued build empties the form: the page runs again to draw it empty."""
    requester = st.session_state.get("requester", "").strip()
    if not requester:
        st.warning("Enter your name in the sidebar first, so your builds can be found later. Nothing was queued.")
        return
    try:
        start = chosen_start()
        with database() as conn:
            submitted = submit_site_build(
                conn, definition, requested_by=requester, mode=mode, only=only, schedule_at=start
            )
    except StartRefused as refusal:
        st.error(f"Nothing was queued. {refusal}")
        return
    except QueueUnavailable:
        show_unavailable()
        return
    except BuildRefused as refusal:
        st.error(f"Nothing was queued. {escape_markdown(str(refusal))}")
        return
    skipped = f" {plural(submitted.skipped, 'section')} already had content and were left as they were." if submitted.skipped else ""
    when = f", to start at {when_here(start)}" if start else ""
    message = f"Queued {plural(len(submitted.request_ids), 'section')}{when}.{skipped}"
    # The Site builds page opens on this build next time (its selector may already be drawn on this run).
    st.session_state["site_batch_pending"] = str(submitted.batch_id)
    if empty_the_form:
        st.session_state["site_form_queued"] = message
        st.rerun()
    show_queued(message)


def show_queued(message: str) -> None:
    st.success(message, icon=":material/check_circle:")
    st.page_link(SITE_BUILDS_PAGE, label="Watch the build on the Site builds page", icon=":material/web:")


def business_fields(form: str) -> dict:
    left, middle, right = st.columns(3)
    return {
        "business_type": left.text_input("Business type", max_chars=200, placeholder="e.g. neighbourhood bakery", key=f"{form}_business_type"),
        "target_audience": middle.text_input("Target audience", max_chars=200, placeholder="e.g. young families", key=f"{form}_audience"),
        "brand_voice": right.text_input("Brand voice", max_chars=200, placeholder="e.g. warm and playful", key=f"{form}_voice"),
    }


def mode_choice(key: str) -> str:
    return st.radio("Mode", list(MODE_LABELS), format_func=MODE_LABELS.get, key=key)


def upload_form() -> None:
    with st.form("site_upload"):
        upload = st.file_uploader(
            "Site definition (YAML or JSON)", type=["yaml", "yml", "json"], max_upload_size=MAX_DEFINITION_MEGABYTES,
            key="site_file",
        )
        st.caption(
            f"{size_cap()}; templates: {', '.join(TEMPLATES)}. "
            "Business info in the file is used unless you fill it in below."
        )
        business = business_fields("upload")
        mode = mode_choice("upload_mode")
        submitted = st.form_submit_button("Build the site", type="primary", key="site_upload_submit")
    with st.expander("Example definition"):
        st.code(EXAMPLE_YAML, language="yaml")
        st.download_button("Download it", EXAMPLE_YAML, file_name="acme-bakery.yaml", mime="application/yaml",
                           on_click="ignore", icon=":material/download:", key="site_example_download")
        st.caption("Or fill the “Build with a form” tab with it: “Use this example” there.")
    if not submitted:
        return
    if upload is None:
        st.warning("Choose a YAML or JSON file first.")
        return
    try:
        definition = parse_site_definition(upload.getvalue(), filename=upload.name, business=business)
    except SiteDefinitionError as refusal:
        st.error(escape_markdown(f"“{upload.name}” was not queued. {refusal}"))
        return
    submit_build(definition, mode)


def size_cap() -> str:
    """The caps the validator enforces (queue_tasks/site_build.py), said the same way on both forms."""
    return f"At most {MAX_DEFINITION_MEGABYTES} MB and {get_settings().max_site_sections:,} sections (routes × sections)"


def use_the_example() -> None:
    """Fills the form with the example definition (a callback: before the form's widgets are drawn)."""
    example = parse_site_definition(EXAMPLE_YAML, filename="example.yaml")
    st.session_state["site_form_name"] = example.site
    st.session_state["form_business_type"] = example.business.business_type
    st.session_state["form_audience"] = example.business.target_audience
    st.session_state["form_voice"] = example.business.brand_voice
    st.session_state["site_form_rows"] = [
        {"route": route.path, "template": section.template, "name": "" if section.name == section.template else section.name}
        for route in example.routes
        for section in route.sections
    ]
    # A new table: the old one's edits would otherwise be laid over the example's rows.
    st.session_state["site_form_version"] = st.session_state.get("site_form_version", 0) + 1


def form_builder() -> None:
    if queued := st.session_state.pop("site_form_queued", None):
        # Queued on the run before: the form starts again empty (its widgets are not drawn yet).
        for key in ("site_form_name", "form_business_type", "form_audience", "form_voice"):
            st.session_state[key] = ""
        st.session_state.pop("site_form_rows", None)
        st.session_state["site_form_version"] = st.session_state.get("site_form_version", 0) + 1
        show_queued(queued)
    st.session_state.setdefault("site_form_rows", [{"route": "/", "template": "hero", "name": ""}])
    st.button("Use this example", key="site_form_example", icon=":material/auto_fix_high:", on_click=use_the_example,
              help="Fills the form with the example definition (Acme Bakery): its business, pages and sections.")
    with st.form("site_form"):
        site = st.text_input("Site name", max_chars=120, placeholder="e.g. Acme Bakery", key="site_form_name")
        business = business_fields("form")
        rows = st.data_editor(
            st.session_state["site_form_rows"],
            num_rows="dynamic",
            column_config={
                "route": st.column_config.TextColumn("Route", help="The page path, e.g. / or /pricing", required=True),
                "template": st.column_config.SelectboxColumn("Template", options=list(TEMPLATES), required=True),
                "name": st.column_config.TextColumn("Section name (optional)", help="Defaults to the template"),
            },
            key=f"site_form_sections_{st.session_state.get('site_form_version', 0)}",
        )
        st.caption(f"{size_cap()}. Rows without a route are skipped.")
        mode = mode_choice("form_mode")
        submitted = st.form_submit_button("Build the site", type="primary", key="site_form_submit")
    if not submitted:
        return
    routes: dict[str, list[dict]] = {}
    for row in rows:
        if not (row.get("route") or "").strip() or not row.get("template"):
            continue
        routes.setdefault(row["route"].strip(), []).append({"template": row["template"], "name": (row.get("name") or "").strip()})
    try:
        definition = site_definition_from(
            {"site": site, "business": business, "routes": [{"path": p, "sections": s} for p, s in routes.items()]}
        )
    except SiteDefinitionError as refusal:
        st.error(f"Nothing was queued. {escape_markdown(str(refusal))}")
        return
    submit_build(definition, mode, empty_the_form=True)


def forms(queue_requests: QueueRequests) -> None:
    st.caption(
        "A site build queues one job per route × section, all at once, to start as chosen above. "
        "Watch, retry, regenerate and promote it on the Site builds page."
    )
    upload, form = st.tabs(["Upload a definition", "Build with a form"])
    with upload:
        upload_form()
    with form:
        form_builder()


__all__ = ["KIND", "PROMOTION_KIND", "forms", "show_result", "show_promotion_result", "show_content", "submit_build"]
