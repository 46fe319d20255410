"""The image of a blog post: a follow-up request queued by the blog-post job ("include visuals").

With a configured endpoint the image comes from its images API (the openai SDK); with the offline
model it is a generated placeholder PNG, made here with the standard library. Either way the bytes
are kept in inkwell.post_images, so the console never loads a remote image.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import struct
import uuid
import zlib
from typing import Annotated

import openai
from procrastinate import JobContext
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, StringConstraints

from db.posts import get_post_async, save_post_image
from db.requests import GenerationRequest
from inkwell_settings import InkwellSettings, get_settings
from queue_tasks.errors import PermanentJobError
from queue_tasks.llm import LLMClient, classify_api_error, request_headers
from queue_tasks.procrastinate_app import app
from queue_tasks.progress import JobProgress
from queue_tasks.runner import on_ending, retry_strategy, run_request

KIND = "post_image"
MAX_IMAGE_BYTES = 20_000_000
PLACEHOLDER_SIZE = (960, 504)  # about the 1.91:1 of a social preview card


class PostImageInput(BaseModel):
    """Queued by the blog-post job, never typed in: which post, and what the image should show."""

    model_config = ConfigDict(extra="forbid")

    topic: Annotated[str, StringConstraints(min_length=1, max_length=200)]  # the post's title, for History
    post_id: uuid.UUID
    parent_request_id: uuid.UUID
    description: Annotated[str, StringConstraints(min_length=1, max_length=1_000)]


class PostImageResult(BaseModel):
    post_id: uuid.UUID
    parent_request_id: uuid.UUID
    content_type: str
    width: int | None
    height: int | None
    size_bytes: int
    placeholder: bool
    model: str
    offline_model: bool
    tokens_used: int | None = None


def image_prompt(data: PostImageInput) -> str:
    return (
        "A clean, modern editorial illustration for a blog post, no text or lettering in the image, "
        f"no logos. The post: {data.description}"
    )


# --- Placeholder PNG (offline model) ---------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def placeholder_png(seed_text: str, size: tuple[int, int] = PLACEHOLDER_SIZE) -> bytes:
    """A diagonal two-colour gradient with soft bands, its colours chosen by the text: the same
    post always gets the same picture, different posts get different ones."""
    width, height = size
    digest = hashlib.sha256(seed_text.encode()).digest()
    start, end = digest[0:3], digest[3:6]
    # Keep the colours mid-bright so the placeholder is neither black nor white.
    start = bytes(64 + c // 2 for c in start)
    end = bytes(64 + c // 2 for c in end)
    bands = 3 + digest[6] % 5
    # Each pixel's colour depends on x + y only, so one diagonal strip serves every row.
    span = width + height
    strip = bytearray()
    for s in range(span):
        t = s / span
        shade = 0.92 + 0.08 * (int(t * bands * 2) % 2)
        strip += bytes(int((start[c] * (1 - t) + end[c] * t) * shade) for c in range(3))
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        rows += strip[y * 3 : (y + width) * 3]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )


def describe_image(image: bytes) -> tuple[str, int | None, int | None]:
    """Content type, width and height of image bytes; refuses anything that is not PNG, JPEG or WebP."""
    if image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) >= 24:
        width, height = struct.unpack(">II", image[16:24])
        return "image/png", width, height
    if image.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", None, None
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp", None, None
    raise PermanentJobError("image_bad_format", "The images API answered with something that is not a PNG, JPEG or WebP image.")


# --- Images API (configured endpoint) --------------------------------------------------------------


@functools.cache
def _images_client(base_url: str | None, api_key: str, timeout: float) -> openai.AsyncOpenAI:
    # One client per worker process; the queue owns retries, as for chat.
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)


async def generate_image(settings: InkwellSettings, prompt: str) -> bytes:
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
    client = _images_client(settings.llm_base_url, api_key, max(settings.llm_timeout_seconds, 120.0))
    options = {}
    if settings.image_model.startswith("dall-e"):
        options["response_format"] = "b64_json"  # gpt-image models always answer in base64
    try:
        response = await client.images.generate(model=settings.image_model, prompt=prompt, size=settings.image_size, n=1,
                                              extra_headers=request_headers(), **options)
    except openai.APIError as error:
        raise classify_api_error(error, settings.image_model) from None
    encoded = response.data[0].b64_json if response.data else None
    if not encoded:
        raise PermanentJobError("image_bad_response", "The images API answered without image data (b64_json).")
    if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise PermanentJobError("image_too_large", f"The images API answered with an image over {MAX_IMAGE_BYTES // 1_000_000} MB.")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentJobError("image_bad_response", "The images API answered with data that is not valid base64.") from None


async def make_image(
    request: GenerationRequest, llm: LLMClient, progress: JobProgress, *, pool: AsyncConnectionPool
) -> PostImageResult:
    data = PostImageInput.model_validate(request.input)
    async with pool.connection() as conn:
        post = await get_post_async(conn, data.post_id)
    if post is None:
        raise PermanentJobError("post_missing", f"Post {data.post_id} no longer exists; there is nothing to illustrate.")
    settings = get_settings()
    if llm.offline_model:
        await progress.set_step("Drawing a placeholder image…", 20)
        image = placeholder_png(f"{post.title}\n{post.id}")
        model = llm.model
    else:
        await progress.set_step("Asking the images API…", 20)
        image = await generate_image(settings, image_prompt(data))
        model = settings.image_model
    content_type, width, height = describe_image(image)
    await progress.set_step("Saving the image…", 90)

    async def save(conn, _result) -> None:
        # With the result and the job's end, in one transaction.
        await save_post_image(
            conn,
            post_id=post.id,
            request_id=request.id,
            content_type=content_type,
            image=image,
            width=width,
            height=height,
            description=image_prompt(data),
        )

    on_ending(save)
    return PostImageResult(
        post_id=post.id,
        parent_request_id=data.parent_request_id,
        content_type=content_type,
        width=width,
        height=height,
        size_bytes=len(image),
        placeholder=llm.offline_model,
        model=model,
        offline_model=llm.offline_model,
    )


@app.task(name="inkwell.make_post_image", pass_context=True, retry=retry_strategy())
async def make_post_image(context: JobContext, request_id: str) -> dict:
    return await run_request(context, request_id, functools.partial(make_image, pool=context.app.connector.pool))
