"""Blog posts end to end: a real worker subprocess writes the post through the openai SDK (the local
test server or the offline model), saves it exactly once, and queues its image exactly once."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from db.posts import get_post_by_request, get_post_image, list_posts, save_post
from db.requests import get_request
from queue_tasks.blog_posts import BlogPostInput, BlogPostResult, queue_post_image
from queue_tasks.images import PostImageInput, placeholder_png
from queue_tasks.submit import submit_requests
from tests.conftest import wait_for
from tests.support.console import make_user, signed_in_app
from tests.support.llm_server import error, ok

pytestmark = pytest.mark.timeout(150)

# Workers on the built-in offline model (empty variables count as unset), answering quickly.
OFFLINE = {"INKWELL_LLM_BASE_URL": "", "INKWELL_LLM_API_KEY": "", "INKWELL_OFFLINE_MODEL_SECONDS": "0.1"}
FAST_STALL_DETECTION = {"INKWELL_STALLED_WORKER_SECONDS": "2", "INKWELL_STALLED_CHECK_SECONDS": "1"}


def blog_input(**fields) -> BlogPostInput:
    values = {
        "topic": "composting in small apartments",
        "subheader": "no garden needed",
        "business": {"business_type": "garden shop", "target_audience": "city renters", "brand_voice": "friendly"},
        "organization": "Green Corner",
        "additional_instructions": "Mention bokashi once.",
    }
    return BlogPostInput.model_validate({**values, **fields})


def submit(db: psycopg.Connection, data: BlogPostInput | None = None) -> uuid.UUID:
    return submit_requests(db, "blog_post", [data or blog_input()], requested_by="ana")[0]


def finished(db: psycopg.Connection, request_id, timeout: float = 40.0):
    return wait_for(
        lambda: (r := get_request(db, request_id)) and r.is_finished and r, timeout=timeout,
        message=f"request {request_id} to finish",
    )


def test_blog_post_is_written_outline_then_sections_then_polish_and_saved_as_a_draft(db, start_worker, llm_server):
    llm_server.default_behaviour = ok(delay_per_chunk=0.04, chunks=10)
    request_id = submit(db)
    start_worker()

    steps: list[tuple[str, int]] = []

    def record_until_finished():
        request = get_request(db, request_id)
        if request.status == "running":
            steps.append((request.current_step, request.progress))
        return request.is_finished

    wait_for(record_until_finished, timeout=40, interval=0.03, message="the blog post to finish")
    request = get_request(db, request_id)
    assert request.status == "succeeded", request.error_message

    # The current step moves through outline → sections → polish, and the bar only moves forward.
    phases = []
    for step, _ in steps:
        phase = step.split(":")[0]
        if phase in ("Outline", "Sections", "Polish") and (not phases or phases[-1] != phase):
            phases.append(phase)
    assert phases == ["Outline", "Sections", "Polish"], steps
    assert [p for _, p in steps] == sorted(p for _, p in steps)
    assert len({step for step, _ in steps if step.startswith("Sections")}) >= 2, "each section is a step of its own"

    # One outline call, one call per section (the test server plans 3), one polish call.
    assert len(llm_server.chat_requests) == 5
    schemas = [r.body["response_format"]["json_schema"]["name"] for r in llm_server.chat_requests]
    assert schemas == ["BlogOutline", "BlogSectionDraft", "BlogSectionDraft", "BlogSectionDraft", "BlogPolish"]
    first_prompt = json.dumps(llm_server.chat_requests[0].body)
    for given in ("composting in small apartments", "garden shop", "city renters", "friendly", "Green Corner", "bokashi"):
        assert given in first_prompt

    result = request.result
    assert set(result) >= {"title", "meta_description", "outline", "body_markdown", "word_count", "tokens_used"}
    assert len(result["outline"]) == 3 and all(s["heading"] for s in result["outline"])
    assert result["body_markdown"].count("\n## ") == 4  # three sections and the conclusion
    assert result["word_count"] > 10
    assert result["tokens_used"] > 0
    assert len(result["meta_description"]) <= 160

    post = get_post_by_request(db, request_id)
    assert post is not None and str(post.id) == result["post_id"]
    assert (post.status, post.title, post.body_markdown, post.word_count) == (
        "draft", result["title"], result["body_markdown"], result["word_count"]
    )
    assert post.image_request_id is None and result["image_request_id"] is None


def test_offline_model_writes_a_plausible_post_about_the_topic(db, start_worker):
    request_id = submit(db, blog_input(status="published"))
    start_worker(extra_env=OFFLINE)
    request = finished(db, request_id)

    assert request.status == "succeeded", request.error_message
    assert request.offline_model is True
    result = request.result
    body = result["body_markdown"]
    assert "Composting in Small Apartments" in result["title"]
    assert "composting in small apartments" in body and "city renters" in body and "Green Corner" in body
    assert 4 <= len(result["outline"]) <= 6
    assert all(len(section["key_points"]) >= 2 for section in result["outline"])
    assert result["word_count"] > 250
    assert "<" not in body, "the offline model writes Markdown, never HTML"
    assert get_post_by_request(db, request_id).status == "published"


def test_auto_save_off_keeps_the_result_but_saves_no_post(db, start_worker):
    request_id = submit(db, blog_input(auto_save=False))
    start_worker(extra_env=OFFLINE)
    request = finished(db, request_id)

    assert request.status == "succeeded"
    assert request.result["body_markdown"]
    assert request.result["post_id"] is None
    assert list_posts(db) == []


def test_transient_model_failure_is_retried_and_the_post_saved_once(db, start_worker, llm_server):
    llm_server.set_script([ok(), error(503)])  # the first section call fails once
    request_id = submit(db)
    start_worker()
    request = finished(db, request_id)

    assert request.status == "succeeded", request.error_message
    assert request.attempts == 2
    assert db.execute("SELECT count(*) FROM inkwell.posts").fetchone()[0] == 1


def test_saving_the_same_request_twice_rewrites_its_post_instead_of_adding_one(db, database_url):
    request_id = submit(db)

    async def save(title: str):
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await save_post(
                conn, request_id=request_id, title=title, subheader=None, meta_description="m",
                outline=[], body_markdown="Body.", word_count=1, organization=None, status="draft",
            )

    first = asyncio.run(save("First try"))
    second = asyncio.run(save("Second try"))

    assert first.id == second.id
    rows = db.execute("SELECT title FROM inkwell.posts WHERE request_id = %s", (request_id,)).fetchall()
    assert rows == [("Second try",)]


def test_include_visuals_queues_one_image_request_as_a_child_of_the_post(db, start_worker):
    request_id = submit(db, blog_input(include_visuals=True))
    start_worker(extra_env=OFFLINE)
    parent = finished(db, request_id)
    assert parent.status == "succeeded", parent.error_message

    image_request_id = uuid.UUID(parent.result["image_request_id"])
    child = finished(db, image_request_id)
    assert child.status == "succeeded", child.error_message
    assert child.kind == "post_image"
    assert child.requested_by == "ana"
    assert child.input["parent_request_id"] == str(request_id)
    assert child.input["post_id"] == parent.result["post_id"]

    post = get_post_by_request(db, request_id)
    assert post.image_request_id == image_request_id
    assert (post.image_status, post.has_image) == ("succeeded", True)
    image = get_post_image(db, post.id)
    assert image.content_type == "image/png" and image.image.startswith(b"\x89PNG\r\n\x1a\n")
    assert (image.width, image.height) == (child.result["width"], child.result["height"])
    assert child.result["placeholder"] is True


def test_post_and_image_are_saved_exactly_once_when_the_worker_is_killed_while_ending_the_job(db, start_worker):
    # Hold the first attempt inside the transaction that ends its job (post, image request, result and
    # the job's status together), so the kill lands in the middle of it: nothing of it may remain.
    db.execute(
        "CREATE FUNCTION public.hold_first_result() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$"
    )
    db.execute(
        """
        CREATE TRIGGER hold_first_result BEFORE UPDATE OF result ON inkwell.requests FOR EACH ROW
        WHEN (OLD.result IS NULL AND NEW.result IS NOT NULL AND NEW.kind = 'blog_post' AND NEW.attempts = 1)
        EXECUTE FUNCTION public.hold_first_result()
        """
    )
    request_id = submit(db, blog_input(include_visuals=True))
    doomed = start_worker(extra_env={**OFFLINE, **FAST_STALL_DETECTION})
    wait_for(
        lambda: db.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'").fetchone(),
        timeout=30, message="the first attempt to be held while ending its job",
    )
    assert db.execute("SELECT count(*) FROM inkwell.posts WHERE request_id = %s", (request_id,)).fetchone()[0] == 0, \
        "the post commits with the result, not before it"
    doomed.kill()

    survivor = start_worker(extra_env={**OFFLINE, **FAST_STALL_DETECTION})
    request = finished(db, request_id, timeout=60)

    assert request.status == "succeeded", survivor.log
    assert request.attempts == 2
    assert db.execute("SELECT count(*) FROM inkwell.posts WHERE request_id = %s", (request_id,)).fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM inkwell.requests WHERE kind = 'post_image'").fetchone()[0] == 1
    assert db.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'inkwell.make_post_image'"
    ).fetchone()[0] == 1
    post = get_post_by_request(db, request_id)
    assert str(post.image_request_id) == request.result["image_request_id"]


# --- The console ------------------------------------------------------------------------------------

HOSTILE_BODY = (
    "Intro with <img src=x onerror=alert(1)> and <script>alert(2)</script>.\n\n"
    "## A heading\n\n"
    "![tracker](http://evil.example/pixel.png) and [a link](http://evil.example/) and :red[colour] and $x^2$.\n\n"
    "![ref image][pic]\n\n[pic]: http://evil.example/ref.png\n\n"
    "- a **bold** point\n"
)


def saved_post(db, database_url, body: str = HOSTILE_BODY) -> uuid.UUID:
    request_id = submit(db)

    async def save():
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await save_post(
                conn, request_id=request_id, title="Composting <b>indoors</b>", subheader=None,
                meta_description="How to compost in a flat.", outline=[{"heading": "A heading", "key_points": []}],
                body_markdown=body, word_count=42, organization="Green Corner", status="draft",
            )

    return asyncio.run(save()).id


def test_submit_page_queues_a_blog_post_with_its_business_info_and_options(console_as, db):
    at = console_as("editor", "pages/1_Submit.py").run()
    at.selectbox(key="submit_kind").select("blog_post").run()
    at.text_input(key="blog_topic").input("composting in small apartments")
    at.text_input(key="blog_business_type").input("garden shop")
    at.text_input(key="blog_audience").input("city renters")
    at.text_input(key="blog_voice").input("friendly")
    at.checkbox(key="blog_visuals").check()
    at.button(key="blog_submit").click().run()

    assert not at.exception
    assert "Queued 1 request." in "\n".join(s.value for s in at.success)
    (row,) = db.execute("SELECT kind, input FROM inkwell.requests").fetchall()
    assert row[0] == "blog_post"
    data = BlogPostInput.model_validate(row[1])
    assert data.business.business_type == "garden shop" and data.business.target_audience == "city renters"
    assert (data.auto_save, data.status, data.include_visuals) == (True, "draft", True)


def test_posts_page_lists_posts_and_renders_a_body_without_html_links_or_remote_images(console_as, db, database_url):
    post_id = saved_post(db, database_url)
    at = console_as(page="pages/5_Posts.py")
    at.query_params["post"] = str(post_id)
    at.run()

    assert not at.exception
    rendered = "\n".join(m.value for m in at.markdown)
    assert "\\<img src=x onerror=alert(1)\\>" in rendered and "\\<script\\>" in rendered
    assert "http" not in rendered.replace("http\\:", ""), "no live URL is left in the body"
    assert "](" not in rendered and "\\!" not in rendered.replace("tracker", "")
    assert "tracker" in rendered and "a link" in rendered, "images and links keep their text"
    assert "## A heading" in rendered and "**bold**" in rendered, "Markdown structure is kept"
    assert "\\:red\\[colour\\]" in rendered and "\\$x^2\\$" in rendered
    assert "Composting \\<b\\>indoors\\</b\\>" in at.subheader[0].value
    assert [link.label for link in at.get("page_link")][0].startswith("Blog-post request")


# --- The images API, when an endpoint is configured ------------------------------------------------


class ImagesEndpoint:
    """`POST /v1/images/generations` as OpenAI answers it (base64 image data), recording each call."""

    def __init__(self, image: bytes):
        self.calls: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.calls.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization")})
                payload = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(image).decode()}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_with_an_endpoint_configured_the_image_comes_from_the_images_api(db, database_url, start_worker):
    image = placeholder_png("from the API", size=(64, 32))
    endpoint = ImagesEndpoint(image)
    try:
        post_id = saved_post(db, database_url, body="A plain body.")
        parent_id = db.execute("SELECT request_id FROM inkwell.posts WHERE id = %s", (post_id,)).fetchone()[0]
        # The post stands in for a finished one: its own request is not to run here.
        db.execute("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = %s", (get_request(db, parent_id).job_id,))
        (image_request_id,) = submit_requests(
            db, "post_image",
            [PostImageInput(topic="Composting indoors", post_id=post_id, parent_request_id=parent_id, description="Composting indoors.")],
            requested_by="ana",
        )
        start_worker(extra_env={"INKWELL_LLM_BASE_URL": endpoint.base_url, "INKWELL_IMAGE_MODEL": "gpt-image-1"})
        request = finished(db, image_request_id)
    finally:
        endpoint.close()

    assert request.status == "succeeded", request.error_message
    (call,) = endpoint.calls
    assert call["path"] == "/v1/images/generations"
    assert call["body"]["model"] == "gpt-image-1" and "Composting indoors." in call["body"]["prompt"]
    assert call["authorization"] == "Bearer test-key"
    assert (request.result["placeholder"], request.result["width"], request.result["height"]) == (False, 64, 32)
    assert get_post_image(db, post_id).image == image


def test_console_shows_the_post_with_its_image_and_the_parent_child_chain(db, start_worker, console_env):
    request_id = submit(db, blog_input(include_visuals=True))
    worker = start_worker(extra_env=OFFLINE)
    parent = finished(db, request_id)
    child = finished(db, uuid.UUID(parent.result["image_request_id"]))
    assert (parent.status, child.status) == ("succeeded", "succeeded"), worker.log
    operator = make_user(db, "operator")

    at = signed_in_app(operator, "pages/3_History.py")
    at.query_params["request"] = str(request_id)
    at.run()
    assert not at.exception
    links = {link.label: link for link in at.get("page_link")}
    assert "Open the saved post" in links and "Open the image request (child)" in links
    assert parent.result["title"].split()[0] in "\n".join(m.value for m in at.markdown)

    at = signed_in_app(operator, "pages/3_History.py")
    at.query_params["request"] = str(child.id)
    at.run()
    assert not at.exception
    assert "Open the blog-post request (parent)" in [link.label for link in at.get("page_link")]
    assert len(at.get("image")) == 1, "the child shows the image it made"

    at = signed_in_app(operator, "pages/5_Posts.py")
    at.query_params["post"] = parent.result["post_id"]
    at.run()
    assert not at.exception
    assert len(at.get("image")) == 1, "the post shows its image once it is made"
    labels = [link.label for link in at.get("page_link")]
    assert len(labels) == 2 and labels[0].startswith("Blog-post request") and labels[1].startswith("→ Image request")


def test_two_runs_queueing_a_post_image_at_once_queue_exactly_one(db, database_url):
    post_id = saved_post(db, database_url, body="A plain body.")
    request = get_request(db, db.execute("SELECT request_id FROM inkwell.posts WHERE id = %s", (post_id,)).fetchone()[0])
    post = BlogPostResult(title="T", meta_description="M", outline=[], body_markdown="B", word_count=1,
                          model="m", offline_model=True, post_id=post_id)

    async def race():
        async with AsyncConnectionPool(database_url, min_size=2, max_size=4, open=False) as pool:
            async def one_run():
                # Each run queues it in the transaction that ends its own job.
                async with pool.connection() as conn, conn.transaction():
                    return await queue_post_image(conn, request, post)

            return await asyncio.gather(*(one_run() for _ in range(4)))

    queued = asyncio.run(race())

    assert len(set(queued)) == 1
    assert db.execute("SELECT count(*) FROM inkwell.requests WHERE kind = 'post_image'").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'inkwell.make_post_image'").fetchone()[0] == 1
    assert db.execute("SELECT image_request_id FROM inkwell.posts WHERE id = %s", (post_id,)).fetchone()[0] == queued[0]
