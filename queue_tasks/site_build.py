"""Site builds: a site definition (routes → sections → template) fans out into one job per section.

A definition comes as YAML or JSON (parsed defensively: size, depth, section count and YAML
aliases are capped before anything is built) or from the console's small form. Submitting a
build writes the batch, one `site_section` request per route × section and one Procrastinate
job each in ONE transaction. Each section job asks the model for the section's content and
stores it as a new version of a content entity whose id is derived from (site, route, section,
environment), so building the same site again updates the same entities.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import random
import re
import time
import uuid
from typing import Annotated, Any, Literal

import psycopg
import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from db import sites
from db.connection import database_errors_as_unavailable
from db.credits import refusals_as
from db.requests import GenerationRequest
from queue_tasks.enqueue import enqueue_requests
from inkwell_settings import get_settings
from queue_tasks.llm import LLMClient
from queue_tasks.models import _clean_text, cut_block, cut_text, describe_validation_error
from queue_tasks.offline_model import ANSWER_WRITERS, _field, _headline_case
from queue_tasks.procrastinate_app import app
from queue_tasks.progress import JobProgress
from queue_tasks.runner import on_ending, retry_strategy, run_request

logger = logging.getLogger("inkwell.jobs")

KIND = "site_section"
TEMPLATES = ("hero", "features", "faq", "cta", "testimonials", "pricing", "about", "contact")
Template = Literal["hero", "features", "faq", "cta", "testimonials", "pricing", "about", "contact"]
Mode = Literal["new", "leave", "with_current"]
Environment = Literal["preview", "production"]
MODE_LABELS = {
    "new": "New: replace every section's content",
    "leave": "Leave: only sections that have no content yet",
    "with_current": "With current: rewrite, giving the model the current content",
}

# Defensive caps on an uploaded definition, checked before it is turned into objects. The size cap
# is the one the console's uploader states and enforces (Streamlit counts it in whole megabytes).
MAX_DEFINITION_MEGABYTES = 1
MAX_DEFINITION_BYTES = MAX_DEFINITION_MEGABYTES * 1_000_000
MAX_DEPTH = 20
MAX_YAML_NODES = 100_000
# A site, a business, a route and a section each have a few fields: more keys than this are junk
# that would take seconds to parse and validate.
MAX_KEYS_PER_MAPPING = 20
# Entity ids are uuid5 in this namespace; never change it, or every entity gets a new id.
ENTITY_NAMESPACE = uuid.UUID("6f1d3a52-9c1e-4d8a-bb0e-3c2f5e7a9d10")

_SECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
_ROUTE = re.compile(r"^/[A-Za-z0-9._~/-]{0,199}$")

ShortText = Annotated[str, StringConstraints(max_length=200)]


class SiteDefinitionError(ValueError):
    """The site definition cannot be used; the message says what to change."""


class BusinessInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    business_type: Annotated[str, StringConstraints(min_length=2, max_length=200)]
    target_audience: ShortText = ""
    brand_voice: ShortText = ""

    @field_validator("business_type", "target_audience", "brand_voice", mode="before")
    @classmethod
    def _strip_control_characters(cls, value: object) -> object:
        return _clean_text(value) if isinstance(value, str) else value


class SiteSection(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    template: Template
    # The section's name within its route (part of the entity's identity); defaults to the template.
    name: str = ""
    brief: Annotated[str, StringConstraints(max_length=1000)] = ""

    @field_validator("brief", mode="before")
    @classmethod
    def _strip_control_characters(cls, value: object) -> object:
        # A NUL would even stop the submit: PostgreSQL cannot store it in the request's JSON.
        return _clean_text(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_name(self) -> SiteSection:
        self.name = (self.name or self.template).lower()
        if not _SECTION_NAME.match(self.name):
            raise ValueError(f"section name {self.name!r}: use lower-case letters, digits, - and _ (at most 60)")
        return self


class SiteRoute(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    path: str
    sections: list[SiteSection] = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _normal_path(cls, value: str) -> str:
        path = value if value.startswith("/") else "/" + value
        path = path.rstrip("/") or "/"
        if not _ROUTE.match(path):
            raise ValueError(f"route {value!r} is not a page path like / or /pricing")
        return path

    @model_validator(mode="after")
    def _distinct_sections(self) -> SiteRoute:
        seen: set[str] = set()
        for section in self.sections:
            if section.name in seen:
                raise ValueError(f"route {self.path} has two sections named {section.name!r}: give them distinct names")
            seen.add(section.name)
        return self


class SiteDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site: Annotated[str, StringConstraints(min_length=2, max_length=120)]
    business: BusinessInfo
    routes: list[SiteRoute] = Field(min_length=1)

    @field_validator("site", mode="before")
    @classmethod
    def _strip_control_characters(cls, value: object) -> object:
        return _clean_text(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _distinct_routes(self) -> SiteDefinition:
        paths = [route.path for route in self.routes]
        duplicates = sorted({p for p in paths if paths.count(p) > 1})
        if duplicates:
            raise ValueError(f"route {duplicates[0]} is listed twice: merge its sections into one entry")
        return self

    @property
    def section_count(self) -> int:
        return sum(len(route.sections) for route in self.routes)


# --- Parsing uploads ------------------------------------------------------------------------------


def _routes_cap_message(routes: str, cap: int) -> str:
    return (
        f"The site definition has {routes} routes; a build may have at most {cap:,} sections "
        "(setting INKWELL_MAX_SITE_SECTIONS), and every route needs one. Split the site into several builds."
    )


def _sections_cap_message(cap: int) -> str:
    return (
        f"The site definition has more than {cap:,} sections; a build may have at most {cap:,} "
        "(setting INKWELL_MAX_SITE_SECTIONS). Split the site into several builds."
    )


def _check_json_depth(text: str) -> None:
    """Refuse deep nesting before json.loads recurses into it."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise SiteDefinitionError(f"The site definition is nested more than {MAX_DEPTH} levels deep.")
        elif ch in "]}":
            depth -= 1


@dataclasses.dataclass
class _Frame:
    is_mapping: bool
    key: str | None = None
    expecting_key: bool = True
    counts_sections: bool = False
    counts_routes: bool = False
    keys: int = 0


def _scan_yaml(text: str, max_sections: int) -> None:
    """Walk the YAML event stream (no objects built) and refuse aliases, depth and size bombs.

    Aliases are refused outright: a site definition never needs them, and they are how a tiny
    file expands into billions of nodes ("billion laughs").
    """
    stack: list[_Frame] = []
    nodes = sections = routes = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise SiteDefinitionError(
                    "The site definition uses a YAML alias (*name); aliases and anchors are not allowed here."
                )
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                if stack and stack[-1].is_mapping:
                    stack[-1].expecting_key = True
                continue
            if not isinstance(event, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                continue
            if getattr(event, "anchor", None):
                raise SiteDefinitionError(
                    "The site definition uses a YAML anchor (&name); aliases and anchors are not allowed here."
                )
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise SiteDefinitionError(f"The site definition has more than {MAX_YAML_NODES:,} values.")
            parent = stack[-1] if stack else None
            is_key = parent is not None and parent.is_mapping and parent.expecting_key
            if parent is not None and parent.counts_sections:
                sections += 1
                if sections > max_sections:
                    raise SiteDefinitionError(_sections_cap_message(max_sections))
            if parent is not None and parent.counts_routes:
                routes += 1
                if routes > max_sections:  # stops reading here: 30,000 routes take seconds to parse
                    raise SiteDefinitionError(_routes_cap_message(f"more than {max_sections:,}", max_sections))
            if is_key:
                if not isinstance(event, yaml.ScalarEvent):
                    raise SiteDefinitionError("The site definition uses a list or mapping as a key.")
                parent.key = event.value
                parent.expecting_key = False
                parent.keys += 1
                if parent.keys > MAX_KEYS_PER_MAPPING:
                    raise SiteDefinitionError(
                        f"The site definition has a mapping with more than {MAX_KEYS_PER_MAPPING} keys "
                        f"(line {event.start_mark.line + 1}); a site, a route or a section has only a few fields."
                    )
                continue
            if isinstance(event, yaml.ScalarEvent):
                if parent is not None and parent.is_mapping:
                    parent.expecting_key = True
                continue
            if len(stack) >= MAX_DEPTH:
                raise SiteDefinitionError(f"The site definition is nested more than {MAX_DEPTH} levels deep.")
            counts = (
                isinstance(event, yaml.SequenceStartEvent) and parent is not None and parent.is_mapping and parent.key == "sections"
            )
            top_routes = isinstance(event, yaml.SequenceStartEvent) and len(stack) == 1 and parent.is_mapping and parent.key == "routes"
            stack.append(
                _Frame(is_mapping=isinstance(event, yaml.MappingStartEvent), counts_sections=counts, counts_routes=top_routes)
            )
    except yaml.YAMLError as error:
        raise SiteDefinitionError(f"The file is not valid YAML: {_yaml_problem(error)}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else str(problem)


def parse_site_definition(data: bytes | str, *, filename: str = "", business: dict | None = None) -> SiteDefinition:
    """A validated site definition from an uploaded YAML or JSON file, or a refusal saying why.

    `business` fields that are filled in (the console's form) take the place of the file's.
    """
    max_sections = get_settings().max_site_sections
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_DEFINITION_BYTES:
        raise SiteDefinitionError(
            f"The file is larger than {MAX_DEFINITION_MEGABYTES} MB ({len(raw):,} bytes; at most {MAX_DEFINITION_BYTES:,})."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SiteDefinitionError("The file is not UTF-8 text.") from None
    if not text.strip():
        raise SiteDefinitionError("The file is empty.")
    is_json = filename.lower().endswith(".json") or (
        not filename.lower().endswith((".yaml", ".yml")) and text.lstrip()[:1] in "{["
    )
    if is_json:
        _check_json_depth(text)
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            raise SiteDefinitionError(f"The file is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno}).") from None
        except ValueError as error:  # e.g. an integer longer than Python converts
            raise SiteDefinitionError(f"The file is not valid JSON: {error}") from None
    else:
        _scan_yaml(text, max_sections)
        try:
            loaded = yaml.load(text, Loader=yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)
        except yaml.YAMLError as error:  # several documents, unknown tags (!!python/...), ...
            raise SiteDefinitionError(f"The file is not a usable YAML site definition: {_yaml_problem(error)}") from None
        except ValueError as error:
            raise SiteDefinitionError(f"The file is not a usable YAML site definition: {error}") from None
    filled = {k: v for k, v in (business or {}).items() if isinstance(v, str) and v.strip()}
    if filled and isinstance(loaded, dict):
        file_business = loaded.get("business") if isinstance(loaded.get("business"), dict) else {}
        loaded = {**loaded, "business": {**file_business, **filled}}
    return site_definition_from(loaded)


def site_definition_from(loaded: Any) -> SiteDefinition:
    """Validate already-parsed data (an upload, or the console's form)."""
    max_sections = get_settings().max_site_sections
    if not isinstance(loaded, dict):
        raise SiteDefinitionError("The site definition must be a mapping with site, business and routes.")
    routes = loaded.get("routes")
    if isinstance(routes, list):
        if not routes:
            raise SiteDefinitionError("The site definition has no routes: list at least one page with its sections.")
        if len(routes) > max_sections:
            # Each route needs a section: refused before 30,000 routes are validated one by one.
            raise SiteDefinitionError(_routes_cap_message(f"{len(routes):,}", max_sections))
        count = sum(len(r["sections"]) for r in routes if isinstance(r, dict) and isinstance(r.get("sections"), list))
        if count > max_sections:
            raise SiteDefinitionError(_sections_cap_message(max_sections))
    try:
        return SiteDefinition.model_validate(loaded)
    except pydantic.ValidationError as error:
        raise SiteDefinitionError(describe_validation_error(error)) from None


# --- Identity -------------------------------------------------------------------------------------


def entity_id(site: str, route: str, section: str, environment: str) -> uuid.UUID:
    """The content entity of one section of one site in one environment: the same inputs, the same id."""
    return uuid.uuid5(ENTITY_NAMESPACE, json.dumps([site.strip(), route, section, environment]))


# --- The section job ------------------------------------------------------------------------------


class SiteSectionInput(BaseModel):
    """One section of a build, as stored on its request."""

    model_config = ConfigDict(extra="forbid")

    # What Live and History show for the request.
    topic: str
    batch_id: uuid.UUID
    site: str
    environment: Environment = "preview"
    route: str
    section: str
    template: Template
    brief: str = ""
    business: BusinessInfo
    mode: Mode = "new"

    @property
    def entity_id(self) -> uuid.UUID:
        return entity_id(self.site, self.route, self.section, self.environment)


MAX_HEADLINE_CHARS = 200
MAX_BODY_CHARS = 4_000
MAX_ITEM_TEXT_CHARS = 1_000
MAX_ITEMS = 12


class SectionItem(BaseModel):
    title: str
    text: str


class SiteSectionContent(BaseModel):
    """The structured answer asked of the model for every template."""

    headline: str
    body: str
    items: list[SectionItem]

    # Model output is capped here, not in the schema (strict structured outputs refuse maxLength):
    # a section is a few lines, never a page.
    @model_validator(mode="after")
    def _capped(self) -> SiteSectionContent:
        self.headline = cut_text(self.headline, MAX_HEADLINE_CHARS)
        self.body = cut_block(self.body, MAX_BODY_CHARS)
        self.items = [
            SectionItem(title=cut_text(item.title, MAX_HEADLINE_CHARS), text=cut_block(item.text, MAX_ITEM_TEXT_CHARS))
            for item in self.items[:MAX_ITEMS]
        ]
        return self


class SiteSectionResult(BaseModel):
    entity_id: uuid.UUID
    version: int | None
    # True when a "leave" build found content already there and wrote nothing.
    skipped: bool = False
    content: SiteSectionContent | None
    model: str
    offline_model: bool
    tokens_used: int | None = None


TEMPLATE_GUIDANCE = {
    "hero": "The top of the page: a short headline (under 70 characters), one or two sentences of body, "
    "and 1-2 items that are calls to action.",
    "features": "What the business offers: a headline, one sentence of body, and 3-6 items, each a feature and why it matters.",
    "faq": "Frequently asked questions: a headline, a one-sentence intro, and 4-6 items, each a question (title) and its answer.",
    "cta": "A call to action: a headline, one persuasive sentence, and 1 item: the button label (title) and what happens next.",
    "testimonials": "What customers say: a headline, a one-sentence intro, and 3 items: a customer (title) and their quote.",
    "pricing": "Plans and prices: a headline, one sentence of body, and 2-4 items: a plan name (title) and what it includes.",
    "about": "Who the business is: a headline, a paragraph of body, and 2-4 items: values or milestones.",
    "contact": "How to get in touch: a headline, one sentence of body, and 2-3 items: ways to reach the business.",
}


def section_prompt(data: SiteSectionInput, current: dict | None) -> list[dict]:
    lines = [
        f"Site: {data.site}",
        f"Page route: {data.route}",
        f"Section: {data.section}",
        f"Template: {data.template}",
        f"Business type: {data.business.business_type}",
    ]
    if data.business.target_audience:
        lines.append(f"Target audience: {data.business.target_audience}")
    if data.business.brand_voice:
        lines.append(f"Brand voice: {data.business.brand_voice}")
    if data.brief:
        lines.append(f"Section brief: {data.brief}")
    lines.append(f"Template guidance: {TEMPLATE_GUIDANCE[data.template]}")
    if current is not None:
        lines.append(
            "Current content (improve it; keep what works, fix what does not): " + json.dumps(current, ensure_ascii=False)
        )
    return [
        {
            "role": "system",
            "content": "You write the content of one section of a business's website, in the brand's voice, "
            "for its audience: concrete, plain, no placeholders, no markup. Answer with JSON only.",
        },
        {"role": "user", "content": "\n".join(lines)},
    ]


async def write_section(request: GenerationRequest, llm: LLMClient, progress: JobProgress, *, pool) -> SiteSectionResult:
    data = SiteSectionInput.model_validate(request.input)
    entity = data.entity_id
    async with pool.connection() as conn:
        stored = await sites.get_version_by_request(conn, entity, request.id)
        current = await sites.get_current_content(conn, entity)
    if stored is not None:
        # This request already wrote its version (a re-run after a crash): keep it, ask nothing.
        return _result(data, stored.version, stored.content, model=stored.model_name or "", offline=bool(stored.offline_model))
    if data.mode == "leave" and current is not None:
        return SiteSectionResult(
            entity_id=entity, version=current.version, skipped=True, content=None, model="", offline_model=False
        )
    await progress.set_step(f"Writing the {data.template} section…", 5)
    started = time.monotonic()

    async def on_text(text: str) -> None:
        await progress.streaming(text, expected_chars=700, started=started, start_pct=10, end_pct=90)

    context = current.content if (data.mode == "with_current" and current is not None) else None
    answer = await llm.generate(messages=section_prompt(data, context), result_type=SiteSectionContent, on_text=on_text, text_due=progress.write_due)
    await progress.set_step("Saving the section", 95)
    content = answer.parsed.model_dump(mode="json")
    result = _result(data, 0, content, model=answer.model, offline=answer.offline_model)
    result.tokens_used = answer.tokens_used

    async def save(conn, result: SiteSectionResult) -> None:
        # The version commits with the result and the job's end, in one transaction.
        version = await sites.write_generated_version(
            conn,
            entity_id=entity,
            site=data.site,
            route=data.route,
            section=data.section,
            environment=data.environment,
            template=data.template,
            content=content,
            request_id=request.id,
            model_name=answer.model,
            offline_model=answer.offline_model,
        )
        result.version = version.version

    on_ending(save)
    return result


def _result(data: SiteSectionInput, version: int, content: dict, *, model: str, offline: bool) -> SiteSectionResult:
    return SiteSectionResult(
        entity_id=data.entity_id,
        version=version,
        content=SiteSectionContent.model_validate({k: content[k] for k in ("headline", "body", "items")}),
        model=model,
        offline_model=offline,
    )


@app.task(name="inkwell.write_site_section", pass_context=True, retry=retry_strategy())
async def write_site_section(context, request_id: str) -> dict:
    return await run_request(
        context, request_id, functools.partial(write_section, pool=context.app.connector.pool)
    )


# --- Submitting a build ---------------------------------------------------------------------------


class BuildRefused(ValueError):
    """The build was refused before anything was written (`sqlstate`: the database's refusal, if it was)."""

    sqlstate: str | None = None


@dataclasses.dataclass(frozen=True)
class SectionRef:
    route: str
    section: str


@dataclasses.dataclass
class BuildSubmitted:
    batch_id: uuid.UUID
    request_ids: list[uuid.UUID]
    skipped: int


def section_inputs(definition: SiteDefinition, batch_id: uuid.UUID, *, mode: str, environment: str) -> list[SiteSectionInput]:
    return [
        SiteSectionInput(
            topic=f"{definition.site} · {route.path} · {section.name}",
            batch_id=batch_id,
            site=definition.site,
            environment=environment,
            route=route.path,
            section=section.name,
            template=section.template,
            brief=section.brief,
            business=definition.business,
            mode=mode,
        )
        for route in definition.routes
        for section in route.sections
    ]


def submit_site_build(
    conn: psycopg.Connection,
    definition: SiteDefinition,
    *,
    requested_by: str,
    mode: Mode = "new",
    environment: Environment = "preview",
    only: list[SectionRef] | None = None,
    queue: str = "default",
    schedule_at: dt.datetime | None = None,
) -> BuildSubmitted:
    """The batch, one request per route × section and one job each, in one transaction.

    `only` limits the build to some sections (regenerating one section). In "leave" mode the
    sections that already have content are not queued at all (their job would do nothing).
    """
    requester = (requested_by or "").strip()
    if not requester:
        raise BuildRefused("Say who is asking: the requester name is empty.")
    if len(requester) > 100:
        raise BuildRefused("The requester name is longer than 100 characters.")
    if mode not in MODE_LABELS:
        raise BuildRefused(f"Unknown mode {mode!r}; use one of {', '.join(MODE_LABELS)}.")
    if schedule_at is not None and schedule_at.tzinfo is None:
        raise BuildRefused("A scheduled start needs a time zone.")
    batch_id = uuid.uuid4()
    inputs = section_inputs(definition, batch_id, mode=mode, environment=environment)
    if only is not None:
        wanted = {(ref.route, ref.section) for ref in only}
        inputs = [i for i in inputs if (i.route, i.section) in wanted]
        if not inputs:
            raise BuildRefused("None of the chosen sections is in this site definition.")
    # The database may refuse the submission (credits, per-user limits): nothing is queued then.
    with refusals_as(BuildRefused), database_errors_as_unavailable(), conn.transaction():
        skipped = 0
        if mode == "leave":
            filled = sites.entities_with_content(conn, [i.entity_id for i in inputs])
            skipped = sum(1 for i in inputs if i.entity_id in filled)
            inputs = [i for i in inputs if i.entity_id not in filled]
            if not inputs:
                raise BuildRefused("Every chosen section already has content; in “leave” mode nothing is left to write.")
        sites.insert_batch(
            conn,
            batch_id=batch_id,
            site_name=definition.site,
            environment=environment,
            mode=mode,
            requested_by=requester,
            business=definition.business.model_dump(mode="json"),
            definition=definition.model_dump(mode="json"),
            skipped_sections=skipped,
        )
        queued = enqueue_requests(
            conn, write_site_section, KIND, inputs, requested_by=requester, schedule_at=schedule_at, queue=queue
        )
        request_ids = [request_id for request_id, _ in queued]
        sites.link_batch_sections(
            conn,
            batch_id,
            [(request_id, position, i.route, i.section, i.template) for position, (request_id, i) in enumerate(zip(request_ids, inputs))],
        )
    logger.info("site build %s (%s, %s): %d sections queued by %s", batch_id, definition.site, mode, len(inputs), requester)
    return BuildSubmitted(batch_id=batch_id, request_ids=request_ids, skipped=skipped)


# --- Offline model --------------------------------------------------------------------------------


def write_offline_section(prompt: str, rng: random.Random) -> dict:
    """Plausible, deterministic section content from the prompt's business info and names."""
    site = _field(prompt, "Site") or "Our business"
    template = (_field(prompt, "Template") or "features").lower()
    business = _field(prompt, "Business type") or "business"
    audience = _field(prompt, "Target audience") or "our customers"
    voice = (_field(prompt, "Brand voice") or "").lower()
    route = _field(prompt, "Page route") or "/"
    page = "home page" if route == "/" else route.strip("/").replace("-", " ").replace("/", " / ") + " page"
    revising = "\nCurrent content (" in prompt
    closer = "!" if any(w in voice for w in ("playful", "bold", "energetic")) else "."
    b, a = business.lower(), audience.lower()
    s = _headline_case(site)
    benefits = ["quality you can count on", "friendly, local service", "honest prices", "fast turnaround",
                "people who know their craft", "flexible options", "a personal touch", "results that last"]
    rng.shuffle(benefits)
    by_template: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
        "hero": (
            f"{s}: the {b} {a} recommend",
            f"Welcome to {s}, a {b} made for {a}{closer} Start here and see what we can do for you.",
            [("Get started", f"Tell us what you need and {s} takes it from there."), ("See our work", f"Browse the {page}.")],
        ),
        "features": (
            f"Why {a} choose {s}",
            f"Everything a good {b} should be, and a little more{closer}",
            [(_headline_case(x), f"At {s}, {x} is part of every job for {a}.") for x in benefits[:4]],
        ),
        "faq": (
            f"Questions {a} ask us",
            f"Short answers about {s}; ask us anything else.",
            [
                (f"What does {s} offer?", f"We are a {b} serving {a}, with {benefits[0]} and {benefits[1]}."),
                ("How do I get started?", "Get in touch through the contact page; we answer within one working day."),
                ("What does it cost?", "Prices depend on what you need; the pricing page shows our usual plans."),
                ("Can I change my mind?", "Yes. Tell us in time and we adjust or cancel without fuss."),
            ],
        ),
        "cta": (
            f"Ready when you are{closer}",
            f"Join the {a} who already rely on {s}.",
            [("Contact us today", f"A person from {s} replies within one working day.")],
        ),
        "testimonials": (
            f"What {a} say about {s}",
            "Real words from people we have worked with.",
            [
                ("A regular customer", f"“{_headline_case(benefits[0])}, every time. {s} is our first call.”"),
                ("A first-time visitor", f"“I did not expect {benefits[1]} from a {b}. I will be back.”"),
                ("A long-time client", f"“Years on, still {benefits[2]}. Recommended.”"),
            ],
        ),
        "pricing": (
            f"Simple plans from {s}",
            f"Clear prices for {a}; no surprises.",
            [("Starter", f"The essentials of our {b} service."), ("Standard", f"Our most chosen plan, with {benefits[0]}."),
             ("Premium", f"Everything, plus {benefits[1]}.")],
        ),
        "about": (
            f"About {s}",
            f"{s} is a {b} built around {a}. We care about {benefits[0]} and {benefits[1]}, and it shows in every job{closer}",
            [("Our promise", f"{_headline_case(benefits[2])}."), ("Our people", f"A team that knows {a} well.")],
        ),
        "contact": (
            f"Get in touch with {s}",
            f"We are happy to help {a}; pick the way that suits you.",
            [("Write to us", "Send a message from this page; we reply within one working day."),
             ("Visit us", f"Drop by during opening hours and meet the {b} team.")],
        ),
    }
    headline, body, items = by_template.get(template, by_template["features"])
    if revising:
        body = body + " (Revised from the current version.)"
    return {"headline": headline, "body": body, "items": [{"title": t, "text": x} for t, x in items]}


ANSWER_WRITERS["SiteSectionContent"] = write_offline_section
