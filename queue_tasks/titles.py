"""The titles job: a list of headline ideas for a topic."""

from __future__ import annotations

import time

from db.requests import GenerationRequest
from queue_tasks.llm import LLMClient
from queue_tasks.models import TitleList, TitlesInput, TitlesResult
from queue_tasks.procrastinate_app import app
from queue_tasks.progress import JobProgress
from queue_tasks.runner import retry_strategy, run_request

KIND = "titles"
# About how long one title is in the JSON answer; the progress bar is measured against it.
_CHARS_PER_TITLE = 60


def titles_prompt(data: TitlesInput) -> list[dict]:
    lines = [f"Topic: {data.topic}", f"Number of titles: {data.count}"]
    if data.audience:
        lines.append(f"Audience: {data.audience}")
    if data.tone:
        lines.append(f"Tone: {data.tone}")
    return [
        {
            "role": "system",
            "content": "You write titles for blog posts and web pages: specific, concrete, under 90 characters, "
            "no clickbait, no quotes around them. Answer with JSON only.",
        },
        {"role": "user", "content": "\n".join(lines)},
    ]


async def write_titles(request: GenerationRequest, llm: LLMClient, progress: JobProgress) -> TitlesResult:
    data = TitlesInput.model_validate(request.input)
    # Not a write of its own: it goes with the job's first progress write, one window in (see JobProgress).
    await progress.set_step("Generating titles…", 5)
    started = time.monotonic()
    expected_chars = 20 + data.count * _CHARS_PER_TITLE

    async def on_text(text: str) -> None:
        await progress.streaming(text, expected_chars=expected_chars, started=started, start_pct=10, end_pct=95)

    answer = await llm.generate(
        messages=titles_prompt(data), result_type=TitleList, on_text=on_text, text_due=progress.write_due
    )
    titles = [t.strip() for t in answer.parsed.titles if t.strip()][: data.count]
    return TitlesResult(titles=titles, model=answer.model, offline_model=answer.offline_model, tokens_used=answer.tokens_used)


@app.task(name="inkwell.generate_titles", pass_context=True, retry=retry_strategy())
async def generate_titles(context, request_id: str) -> dict:
    return await run_request(context, request_id, write_titles)
