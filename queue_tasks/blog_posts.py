"""The blog-post job: outline → sections → polish, then auto-save and (optionally) an image.

Three kinds of model call, each with its own structured answer: an outline, one call per section
(so progress follows the writing), and a polish pass for the title, meta description,
introduction and conclusion. The post is assembled in Markdown from those pieces.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import time
import uuid
from typing import Annotated, Literal

import psycopg
from procrastinate import JobContext
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from db.posts import claim_post_image_request, get_post_image_request_id, insert_follow_up_request, save_post
from db.requests import GenerationRequest, NewRequest
from queue_tasks import offline_model
from queue_tasks.images import KIND as IMAGE_KIND, PostImageInput, make_post_image
from queue_tasks.llm import LLMClient
from queue_tasks.models import _clean_text, cut_block, cut_text
from queue_tasks.procrastinate_app import app
from queue_tasks.progress import JobProgress
from queue_tasks.runner import on_ending, retry_strategy, run_request

logger = logging.getLogger("inkwell.jobs")

KIND = "blog_post"
MAX_SECTIONS = 6
META_DESCRIPTION_CHARS = 160
# About how long one section is in the JSON answer; progress is measured against it.
_CHARS_PER_SECTION = 1_400

ShortText = Annotated[str, StringConstraints(max_length=200)] | None


class BusinessInfo(BaseModel):
    """Who the post is written for and in whose voice; every field is optional."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    business_type: ShortText = None
    target_audience: ShortText = None
    brand_voice: ShortText = None

    @field_validator("business_type", "target_audience", "brand_voice", mode="before")
    @classmethod
    def _clean(cls, value: object) -> object:
        return (_clean_text(value) or None) if isinstance(value, str) else value


class BlogPostInput(BaseModel):
    """What an editor asks for when they want a blog post."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # The topic is the post's working title; "topic" keeps it searchable in History like other kinds.
    topic: Annotated[str, StringConstraints(min_length=3, max_length=200)]
    subheader: ShortText = None
    business: BusinessInfo = Field(default_factory=BusinessInfo)
    organization: ShortText = None
    additional_instructions: Annotated[str, StringConstraints(max_length=2_000)] | None = None
    auto_save: bool = True
    status: Literal["draft", "published"] = "draft"
    include_visuals: bool = False

    @field_validator("topic", "subheader", "organization", mode="before")
    @classmethod
    def _clean(cls, value: object) -> object:
        return _clean_text(value) if isinstance(value, str) else value

    @field_validator("additional_instructions", mode="before")
    @classmethod
    def _clean_instructions(cls, value: object) -> object:
        # Newlines are kept (several instructions), other control characters dropped.
        return _clean_text(value) if isinstance(value, str) else value

    @field_validator("subheader", "organization", "additional_instructions")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _visuals_need_a_saved_post(self) -> BlogPostInput:
        if self.include_visuals and not self.auto_save:
            raise ValueError("include_visuals needs auto_save: an image is made for a saved post")
        return self


# --- Structured answers asked of the model -------------------------------------------------------


# Model text is cleaned (no NUL, control or invisible characters: PostgreSQL cannot store a NUL)
# and capped as it is parsed, so a runaway or hostile answer cannot bloat or break the saved post.
MAX_HEADING_CHARS = 200
MAX_KEY_POINT_CHARS = 300
MAX_KEY_POINTS = 10
MAX_OUTLINE_SECTIONS = 20
MAX_SECTION_CHARS = 20_000
MAX_META_DESCRIPTION_CHARS = 300
MAX_PARAGRAPH_CHARS = 5_000


def _line(max_chars: int):
    return Annotated[str, AfterValidator(lambda value: cut_text(value, max_chars))]


def _block(max_chars: int):
    return Annotated[str, AfterValidator(lambda value: cut_block(value, max_chars))]


Heading = _line(MAX_HEADING_CHARS)


class OutlineSection(BaseModel):
    heading: Heading
    key_points: list[str]

    @field_validator("key_points")
    @classmethod
    def _clean_points(cls, points: list[str]) -> list[str]:
        return [cut_text(point, MAX_KEY_POINT_CHARS) for point in points[: MAX_KEY_POINTS * 2] if point.strip()][:MAX_KEY_POINTS]


class BlogOutline(BaseModel):
    title: Heading
    sections: Annotated[list[OutlineSection], AfterValidator(lambda sections: sections[:MAX_OUTLINE_SECTIONS])]


class BlogSectionDraft(BaseModel):
    heading: Heading
    markdown: _block(MAX_SECTION_CHARS)


class BlogPolish(BaseModel):
    title: Heading
    meta_description: _line(MAX_META_DESCRIPTION_CHARS)
    introduction: _block(MAX_PARAGRAPH_CHARS)
    conclusion: _block(MAX_PARAGRAPH_CHARS)


class BlogPostResult(BaseModel):
    title: str
    meta_description: str
    outline: list[OutlineSection]
    body_markdown: str
    word_count: int
    tokens_used: int | None = None
    model: str
    offline_model: bool
    post_id: uuid.UUID | None = None
    image_request_id: uuid.UUID | None = None


# --- Prompts ---------------------------------------------------------------------------------------

_SYSTEM = (
    "You are a careful content writer for small businesses. You write clear, specific, useful blog posts "
    "in the brand's voice, for the stated audience, without hype, filler or invented facts and figures. "
    "Answer with JSON only."
)


def context_lines(data: BlogPostInput) -> list[str]:
    lines = [f"Topic: {data.topic}"]
    if data.subheader:
        lines.append(f"Subheader: {data.subheader}")
    if data.business.business_type:
        lines.append(f"Business type: {data.business.business_type}")
    if data.business.target_audience:
        lines.append(f"Target audience: {data.business.target_audience}")
    if data.business.brand_voice:
        lines.append(f"Brand voice: {data.business.brand_voice}")
    if data.organization:
        lines.append(f"Organization: {data.organization}")
    if data.additional_instructions:
        lines.append(f"Additional instructions: {' '.join(data.additional_instructions.split())}")
    return lines


def outline_prompt(data: BlogPostInput) -> list[dict]:
    task = (
        f"Plan a blog post: a working title and 3 to {MAX_SECTIONS} sections, each with a heading and "
        "2 to 4 key points. Do not include an introduction or conclusion section."
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n".join([task, *context_lines(data)])}]


def section_prompt(data: BlogPostInput, outline: BlogOutline, index: int) -> list[dict]:
    section = outline.sections[index]
    lines = [
        "Write one section of a blog post in Markdown: 2 or 3 paragraphs, a short bullet list if it helps. "
        "No heading (it is added for you), no links, no images, no HTML.",
        *context_lines(data),
        f"Post title: {outline.title}",
        f"All sections: {' | '.join(s.heading for s in outline.sections)}",
        f"Section number: {index + 1} of {len(outline.sections)}",
        f"Section heading: {section.heading}",
        f"Key points: {' | '.join(section.key_points)}",
    ]
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def polish_prompt(data: BlogPostInput, outline: BlogOutline, sections: list[BlogSectionDraft]) -> list[dict]:
    lines = [
        "Polish a blog post: give its final title (under 70 characters), a meta description (under "
        f"{META_DESCRIPTION_CHARS} characters, no quotes), a one-paragraph introduction and a one-paragraph "
        "conclusion with one next step for the reader. Plain text, no HTML.",
        *context_lines(data),
        f"Post title: {outline.title}",
        f"All sections: {' | '.join(s.heading for s in outline.sections)}",
        "Opening of the first section: " + " ".join(sections[0].markdown.split())[:400] if sections else "",
    ]
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n".join(l for l in lines if l)}]


# --- Assembling the post ---------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


def count_words(markdown: str) -> int:
    return len(_WORD.findall(markdown))


def short_meta_description(text: str, limit: int = META_DESCRIPTION_CHARS) -> str:
    text = " ".join(text.split()).strip("\"'“”")
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-–—")
    return cut + "…"


def _plain_heading(text: str) -> str:
    # A heading is one line; leading #'s from the model would change its level.
    return " ".join(text.split()).lstrip("#").strip() or "Section"


def assemble_body(polish: BlogPolish, sections: list[BlogSectionDraft], outline: BlogOutline) -> str:
    parts = [polish.introduction.strip()]
    for planned, written in zip(outline.sections, sections):
        parts.append(f"## {_plain_heading(planned.heading)}")
        parts.append(written.markdown.strip())
    parts.append("## Conclusion")
    parts.append(polish.conclusion.strip())
    return "\n\n".join(p for p in parts if p) + "\n"


def _add_tokens(total: int | None, more: int | None) -> int | None:
    if total is None and more is None:
        return None
    return (total or 0) + (more or 0)


async def write_blog_post(request: GenerationRequest, llm: LLMClient, progress: JobProgress) -> BlogPostResult:
    data = BlogPostInput.model_validate(request.input)
    tokens: int | None = None

    await progress.set_step("Outline: planning the sections…", 3)
    started = time.monotonic()

    async def outline_text(text: str) -> None:
        await progress.streaming(text, expected_chars=600, started=started, start_pct=5, end_pct=15)

    answer = await llm.generate(messages=outline_prompt(data), result_type=BlogOutline, on_text=outline_text, text_due=progress.write_due)
    tokens = _add_tokens(tokens, answer.tokens_used)
    outline = answer.parsed
    outline.sections = [s for s in outline.sections if s.heading.strip()][:MAX_SECTIONS]
    if not outline.sections:
        outline.sections = [OutlineSection(heading=data.topic, key_points=[])]

    drafts: list[BlogSectionDraft] = []
    count = len(outline.sections)
    span = 70 / count  # the sections share 15 % → 85 %
    for index, section in enumerate(outline.sections):
        start_pct = 15 + int(span * index)
        end_pct = 15 + int(span * (index + 1))
        await progress.set_step(f"Sections: writing {index + 1} of {count} — {_plain_heading(section.heading)[:80]}", start_pct)
        started = time.monotonic()

        async def section_text(text: str, start_pct: int = start_pct, end_pct: int = end_pct, started: float = started) -> None:
            await progress.streaming(text, expected_chars=_CHARS_PER_SECTION, started=started, start_pct=start_pct, end_pct=end_pct)

        answer = await llm.generate(messages=section_prompt(data, outline, index), result_type=BlogSectionDraft, on_text=section_text, text_due=progress.write_due)
        tokens = _add_tokens(tokens, answer.tokens_used)
        drafts.append(answer.parsed)

    await progress.set_step("Polish: title, meta description, introduction and conclusion…", 86)
    started = time.monotonic()

    async def polish_text(text: str) -> None:
        await progress.streaming(text, expected_chars=900, started=started, start_pct=86, end_pct=95)

    answer = await llm.generate(messages=polish_prompt(data, outline, drafts), result_type=BlogPolish, on_text=polish_text, text_due=progress.write_due)
    tokens = _add_tokens(tokens, answer.tokens_used)
    polish = answer.parsed

    body = assemble_body(polish, drafts, outline)
    result = BlogPostResult(
        title=" ".join(polish.title.split()) or data.topic,
        meta_description=short_meta_description(polish.meta_description),
        outline=outline.sections,
        body_markdown=body,
        word_count=count_words(body),
        tokens_used=tokens,
        model=answer.model,
        offline_model=answer.offline_model,
    )
    if data.auto_save:
        await progress.set_step("Saving the post…", 97)
        # The post (and its image request) commit with the result and the job's end, or not at all.
        on_ending(functools.partial(_save_post, request=request, data=data))
    return result


async def _save_post(conn, result: BlogPostResult, *, request: GenerationRequest, data: BlogPostInput) -> None:
    saved = await save_post(
        conn,
        request_id=request.id,
        title=result.title,
        subheader=data.subheader,
        meta_description=result.meta_description,
        outline=[s.model_dump() for s in result.outline],
        body_markdown=result.body_markdown,
        word_count=result.word_count,
        organization=data.organization,
        status=data.status,
    )
    result.post_id = saved.id
    if data.include_visuals:
        result.image_request_id = await queue_post_image(conn, request, result)


async def queue_post_image(conn: psycopg.AsyncConnection, request: GenerationRequest, post: BlogPostResult) -> uuid.UUID:
    """Queue the post's image request, once per post: a re-run finds the one already queued.

    The request row, its job and the post's image_request_id are written in the caller's transaction
    (the one that ends the blog post's job); the post is claimed with `WHERE image_request_id IS NULL`,
    so two runs can never both queue one.
    """
    assert post.post_id is not None
    image_request_id = uuid.uuid4()
    data = PostImageInput(
        topic=post.title[:200],
        post_id=post.post_id,
        parent_request_id=request.id,
        description=f"{post.title}. {post.meta_description}"[:1_000],
    )
    existing = await get_post_image_request_id(conn, post.post_id)
    if existing is not None:
        return existing
    async with conn.transaction() as tx:
        job_id = await make_post_image.configure(connection=conn, queue=request.queue_name).defer_async(
            request_id=str(image_request_id)
        )
        await insert_follow_up_request(
            conn,
            NewRequest(
                id=image_request_id,
                kind=IMAGE_KIND,
                input=data.model_dump(mode="json"),
                requested_by=request.requested_by,
                queue_name=request.queue_name,
                scheduled_at=None,
                job_id=job_id,
            ),
        )
        claimed = await claim_post_image_request(conn, post.post_id, image_request_id)
        if not claimed:
            # Another run queued the image first: undo this request and its job.
            raise psycopg.Rollback(tx)
    if claimed:
        logger.info("request %s: image request %s (job %s) queued for post %s", request.id, image_request_id, job_id, post.post_id)
        return image_request_id
    return await get_post_image_request_id(conn, post.post_id)


@app.task(name="inkwell.write_blog_post", pass_context=True, retry=retry_strategy())
async def write_blog_post_task(context: JobContext, request_id: str) -> dict:
    return await run_request(context, request_id, write_blog_post)


# --- The offline model's answers for these schemas -------------------------------------------------


def _lines_field(prompt: str, label: str) -> str | None:
    return offline_model._field(prompt, label)


def _phrase(text: str | None, fallback: str) -> str:
    return " ".join((text or fallback).split()).rstrip(".")


def _lower_start(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[:2].isupper() else text


def write_offline_outline(prompt: str, rng: random.Random) -> dict:
    topic = _phrase(_lines_field(prompt, "Topic"), "your topic")
    audience = _phrase(_lines_field(prompt, "Target audience"), "your customers")
    business = _phrase(_lines_field(prompt, "Business type"), "small business")
    t = _lower_start(topic)
    candidates = [
        (f"Why {t} matters to {audience}", [f"the problem {audience} face without it", f"what good {t} looks like", "the cost of waiting"]),
        (f"The basics of {t}", ["the key terms in plain words", "what you need before you start", "how long it really takes"]),
        (f"How a {business} puts {t} to work", [f"a typical week at a {business}", "the tools that help", "what to measure"]),
        (f"Common mistakes with {t}", ["doing too much at once", "copying what others do", "skipping the follow-up"]),
        (f"A simple plan to start with {t}", ["one small first step", "a routine for the first month", "when to ask for help"]),
        (f"Questions {audience} ask about {t}", ["is it worth the effort", "what it costs", "how to tell it is working"]),
    ]
    first, *rest = candidates
    chosen = [first] + rng.sample(rest, k=3)
    # Keep the plan in a sensible reading order (basics before plans).
    chosen.sort(key=candidates.index)
    return {
        "title": offline_model._headline_case(topic),
        "sections": [{"heading": heading, "key_points": points} for heading, points in chosen],
    }


# What the offline model says about each key point its outlines use; other points get a general line.
_POINT_ADVICE = {
    "the problem": "name it in their words, not yours: what goes wrong, how often, and what it costs them",
    "what good": "describe the finished result in one sentence, so everyone can tell when you are there",
    "the cost of waiting": "small problems compound; a month of delay is usually a month of the same problem",
    "the key terms": "a short glossary saves more confusion than any long explanation",
    "what you need": "list the tools and the time it takes; most people already have more than they think",
    "how long": "set expectations honestly: the first results take weeks, not days",
    "a typical week": "walk through one real week, step by step, with the moments where it pays off",
    "the tools": "fewer, simpler tools used every week beat a perfect setup used once",
    "what to measure": "pick one number that moves when things improve, and check it monthly",
    "doing too much": "choose one change at a time, and give it long enough to show a result",
    "copying what others": "what works for a big company rarely fits a small team; adapt, don't copy",
    "skipping the follow-up": "most of the value comes from the second and third look, not the first",
    "one small first step": "make it something you can finish today, in under an hour",
    "a routine": "tie it to something that already happens every week, so it never needs a reminder",
    "when to ask for help": "if the same question comes back three times, it is time to ask someone who knows",
    "is it worth": "compare the time it takes with the time it saves over a season, not a day",
    "what it costs": "count time as well as money; the time is usually the bigger part",
    "how to tell it is working": "look for fewer repeated problems, not for a sudden jump",
}
_GENERAL_ADVICE = ["start with what you have", "keep it short and specific", "write it down once and reuse it"]

_SECTION_MIDDLES = [
    "At {we}, we see the same pattern again and again: the {audience} who do well here keep things small, "
    "repeatable and tied to something they already do.",
    "It helps to think of this as a habit rather than a project. A project ends; a habit keeps paying off for "
    "{audience} long after the first week.",
    "This is also where most of the questions we hear at {we} come from, so it is worth slowing down for a moment.",
    "None of it needs a big budget. It needs a clear owner, a little time each week, and the patience to let "
    "results show.",
]
_SECTION_CLOSINGS = [
    "If you only take one thing from this part, make it this: decide what success looks like before you begin.",
    "Write down what you try and what changes. In a month, those notes will be worth more than any checklist.",
    "The payoff comes from consistency: a little attention to {topic} each week beats one big push a year.",
    "Done this way, {topic} stops being one more task and becomes part of how you already work.",
]


def _advice(point: str, rng: random.Random) -> str:
    lowered = point.lower()
    return next((advice for start, advice in _POINT_ADVICE.items() if lowered.startswith(start)), rng.choice(_GENERAL_ADVICE))


def write_offline_section(prompt: str, rng: random.Random) -> dict:
    topic = _lower_start(_phrase(_lines_field(prompt, "Topic"), "your topic"))
    heading = _phrase(_lines_field(prompt, "Section heading"), topic)
    audience = _phrase(_lines_field(prompt, "Target audience"), "your customers")
    business = _phrase(_lines_field(prompt, "Business type"), "small business")
    organization = _lines_field(prompt, "Organization")
    voice = (_lines_field(prompt, "Brand voice") or "").lower()
    points = [p.strip() for p in (_lines_field(prompt, "Key points") or "").split("|") if p.strip()]
    number_text = (_lines_field(prompt, "Section number") or "1").split()[0]
    number = int(number_text) - 1 if number_text.isdigit() else 0
    friendly = any(word in voice for word in ("friendly", "playful", "warm", "casual"))
    we = organization or f"a {business} like ours"
    opener = rng.choice([
        f"{heading} is where most {audience} either gain momentum or lose it.",
        f"When people talk about {topic}, one subject comes up again and again: {_lower_start(heading)}.",
        f"{heading} deserves a closer look, because it is where {audience} usually start asking questions.",
    ])
    if friendly:
        opener += rng.choice([" Don't worry — it's simpler than it sounds.", " The good news: you're probably closer than you think."])
    middle = _SECTION_MIDDLES[number % len(_SECTION_MIDDLES)].format(we=we, audience=audience)
    paragraphs = [f"{opener} {middle}"]
    if points:
        bullets = "\n".join(f"- **{p[:1].upper() + p[1:]}**: {_advice(p, rng)}." for p in points)
        paragraphs.append(f"{'Here is what to keep in mind' if friendly else 'Three points matter most'}:\n\n{bullets}")
    paragraphs.append(_SECTION_CLOSINGS[number % len(_SECTION_CLOSINGS)].format(topic=topic))
    return {"heading": heading, "markdown": "\n\n".join(paragraphs)}


def write_offline_polish(prompt: str, rng: random.Random) -> dict:
    topic = _phrase(_lines_field(prompt, "Topic"), "your topic")
    subheader = _lines_field(prompt, "Subheader")
    audience = _phrase(_lines_field(prompt, "Target audience"), "your customers")
    organization = _lines_field(prompt, "Organization")
    business = _phrase(_lines_field(prompt, "Business type"), "small business")
    title = offline_model._headline_case(topic)
    if subheader and len(title) + len(subheader) < 68:
        title = f"{title}: {offline_model._headline_case(subheader)}"
    t = _lower_start(topic)
    who = organization or f"a {business}"
    return {
        "title": title,
        "meta_description": (
            f"{offline_model._headline_case(topic)} for {audience}, made simple: why it matters, how to start "
            f"and the mistakes to avoid. Practical advice from {who}."
        ),
        "introduction": (
            f"{offline_model._headline_case(topic)} can feel like one more thing on a long list. "
            f"This guide from {who} is for {audience} who want a clear, honest picture: "
            f"what it is, why it matters, and how to start without wasting a week."
        ),
        "conclusion": rng.choice([
            f"You don't have to do everything at once. Pick one idea from this post, try it for a month, and see what changes for {audience}.",
            f"Start small, measure what matters and adjust. If you want a hand with {t}, {who} is happy to help.",
        ]),
    }


offline_model.ANSWER_WRITERS.update(
    {"BlogOutline": write_offline_outline, "BlogSectionDraft": write_offline_section, "BlogPolish": write_offline_polish}
)
