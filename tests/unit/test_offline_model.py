"""The offline model: deterministic, topic-specific, through the real openai client."""

from __future__ import annotations

import asyncio
import json

from inkwell_settings import InkwellSettings
from queue_tasks.llm import LLMClient
from queue_tasks.models import TitleList
from queue_tasks.offline_model import OFFLINE_MODEL_NAME, answer
from queue_tasks.titles import titles_prompt
from queue_tasks.models import TitlesInput


def titles_body(topic: str, count: int = 5, **extra) -> dict:
    data = TitlesInput(topic=topic, count=count, **extra)
    return {
        "messages": titles_prompt(data),
        "response_format": {"type": "json_schema", "json_schema": {"name": "TitleList", "schema": {}}},
    }


def test_same_prompt_gives_the_same_titles():
    assert answer(titles_body("sourdough baking")) == answer(titles_body("sourdough baking"))


def test_titles_are_about_the_topic_and_as_many_as_asked():
    titles = json.loads(answer(titles_body("sourdough baking", count=7)))["titles"]
    assert len(titles) == 7
    assert len(set(titles)) == 7
    assert all("Sourdough Baking" in t for t in titles)


def test_different_topics_give_different_titles():
    first = json.loads(answer(titles_body("sourdough baking")))["titles"]
    second = json.loads(answer(titles_body("trail running")))["titles"]
    assert not set(first) & set(second)


def test_audience_appears_where_a_template_names_it():
    titles = json.loads(answer(titles_body("solar panels", count=20, audience="landlords")))["titles"]
    assert any("Landlords" in t for t in titles)


def test_twenty_titles_are_available():
    assert len(json.loads(answer(titles_body("solar panels", count=20)))["titles"]) == 20


def generate(stream: bool):
    settings = InkwellSettings(database_url=None, llm_stream=stream, offline_model_seconds=0)
    client = LLMClient(settings)
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)

    async def run():
        try:
            return await client.generate(
                messages=titles_prompt(TitlesInput(topic="home composting", count=3)), result_type=TitleList, on_text=on_text
            )
        finally:
            await client.close()

    return asyncio.run(run()), seen


def test_offline_answer_goes_through_the_openai_client_streaming():
    answer_, seen = generate(stream=True)
    assert answer_.offline_model is True and answer_.model == OFFLINE_MODEL_NAME
    assert len(answer_.parsed.titles) == 3
    assert len(seen) > 3 and seen[-1].startswith('{"titles"')
    assert answer_.tokens_used and answer_.tokens_used > 0


def test_offline_answer_goes_through_the_openai_client_without_streaming():
    answer_, seen = generate(stream=False)
    assert len(answer_.parsed.titles) == 3
    assert seen == []
