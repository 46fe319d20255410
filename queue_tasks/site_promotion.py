"""Promote a build's preview content to production, or roll production back, as one job per action.

Each job walks the batch's sections; every entity is handled in its own transaction together
with its status row, so a re-run after a crash does only what is still pending. Promoting adds
a production version copying the preview's current content (and remembering which production
version it replaced); rolling back points production at exactly that replaced version again.
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Literal

import psycopg
from pydantic import BaseModel, ConfigDict

from db import sites
from db.connection import database_errors_as_unavailable
from db.credits import refusals_as
from db.requests import GenerationRequest
from queue_tasks.enqueue import enqueue_requests
from queue_tasks.errors import PermanentJobError
from queue_tasks.llm import LLMClient
from queue_tasks.procrastinate_app import app
from queue_tasks.progress import JobProgress
from queue_tasks.runner import retry_strategy, run_request
from queue_tasks.site_build import BuildRefused, entity_id

logger = logging.getLogger("inkwell.jobs")

KIND = "site_promotion"
Action = Literal["promote", "rollback"]
ACTION_LABELS = {"promote": "Promote to production", "rollback": "Roll back production"}


class SitePromotionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str
    promotion_id: uuid.UUID
    batch_id: uuid.UUID
    action: Action


class SitePromotionResult(BaseModel):
    action: Action
    done: int
    skipped: int
    failed: int
    model: str = ""
    offline_model: bool = False


async def _promote_one(conn, promotion: sites.Promotion, row: sites.PromotionEntity) -> tuple[str, str | None, int | None, int | None]:
    preview_id = entity_id(promotion.site_name, row.route, row.section, "preview")
    preview = await sites.get_current_content(conn, preview_id)
    if preview is None:
        return "skipped", "No preview content to promote.", None, None
    production_id = entity_id(promotion.site_name, row.route, row.section, "production")
    current_id = await sites.lock_entity(
        conn,
        entity_id=production_id,
        site=promotion.site_name,
        route=row.route,
        section=row.section,
        environment="production",
        template=row.template,
    )
    current = await sites.get_version(conn, current_id) if current_id is not None else None
    if current is not None and current.source_version_id == preview.id:
        return "skipped", "Production already has this preview version.", current.id, current.id
    version = await sites.add_version(
        conn,
        entity_id=production_id,
        content=preview.content,
        source="promoted",
        request_id=None,
        source_version_id=preview.id,
        model_name=preview.model_name,
        offline_model=preview.offline_model,
    )
    return "done", f"Production is now version {version.version}.", current_id, version.id


async def _rollback_one(conn, promotion: sites.Promotion, row: sites.PromotionEntity) -> tuple[str, str | None, int | None, int | None]:
    production_id = entity_id(promotion.site_name, row.route, row.section, "production")
    current = await sites.get_current_content(conn, production_id)
    if current is None:
        return "skipped", "Nothing in production to roll back.", None, None
    if current.replaces_version_id is None:
        return "skipped", "Production has no earlier version to return to.", current.id, None
    await sites.set_current_version(conn, production_id, current.replaces_version_id)
    previous = await sites.get_version(conn, current.replaces_version_id)
    return "done", f"Production is back to version {previous.version}.", current.id, previous.id


async def run_promotion(request: GenerationRequest, llm: LLMClient, progress: JobProgress, *, pool) -> SitePromotionResult:
    data = SitePromotionInput.model_validate(request.input)
    async with pool.connection() as conn:
        promotion = await sites.get_promotion(conn, data.promotion_id)
        if promotion is None:
            raise PermanentJobError("promotion_missing", f"No promotion {data.promotion_id} exists.")
        rows = await sites.list_promotion_entities_async(conn, data.promotion_id)
    step = "Promoting" if data.action == "promote" else "Rolling back"
    for index, row in enumerate(rows):
        await progress.set_step(f"{step} {row.route} · {row.section}", int(100 * index / max(1, len(rows))))
        if row.status != "pending":
            continue
        handle = _promote_one if data.action == "promote" else _rollback_one
        async with pool.connection() as conn, conn.transaction():
            if not await sites.lock_pending_promotion_entity(conn, data.promotion_id, row.position):
                continue
            status, message, from_id, to_id = await handle(conn, promotion, row)
            await sites.finish_promotion_entity(
                conn, data.promotion_id, row.position, status=status, message=message, from_version_id=from_id, to_version_id=to_id
            )
    async with pool.connection() as conn:
        rows = await sites.list_promotion_entities_async(conn, data.promotion_id)
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("done", "skipped", "failed")}
    return SitePromotionResult(action=data.action, **counts)


@app.task(name="inkwell.promote_site", pass_context=True, retry=retry_strategy())
async def promote_site(context, request_id: str) -> dict:
    return await run_request(context, request_id, functools.partial(run_promotion, pool=context.app.connector.pool))


PROMOTION_REFUSED = "Only who started this build, an operator or an admin can promote or roll it back."


def submit_promotion(
    conn: psycopg.Connection, batch_id: uuid.UUID, action: Action, *, requested_by: str, queue: str = "default"
) -> uuid.UUID:
    """Queue a promote or rollback of the batch's sections: request, job and per-entity rows in one transaction."""
    requester = (requested_by or "").strip()
    if not requester:
        raise BuildRefused("Say who is asking: the requester name is empty.")
    if action not in ACTION_LABELS:
        raise BuildRefused(f"Unknown action {action!r}.")
    # The database may refuse the submission (credits, per-user limits): nothing is queued then.
    with refusals_as(BuildRefused, role_message=PROMOTION_REFUSED), database_errors_as_unavailable(), conn.transaction():
        batch = sites.get_batch(conn, batch_id)
        if batch is None:
            raise BuildRefused(f"No site build {batch_id}.")
        if batch.environment != "preview":
            raise BuildRefused("Only a build written to preview can be promoted or rolled back.")
        promotion_id = uuid.uuid4()
        data = SitePromotionInput(
            topic=f"{batch.site_name} · {ACTION_LABELS[action]}", promotion_id=promotion_id, batch_id=batch_id, action=action
        )
        [(request_id, _)] = enqueue_requests(conn, promote_site, KIND, [data], requested_by=requester, queue=queue)
        sites.insert_promotion(
            conn, promotion_id=promotion_id, batch_id=batch_id, action=action, request_id=request_id, requested_by=requester
        )
    logger.info("site build %s: %s queued by %s (request %s)", batch_id, action, requester, request_id)
    return promotion_id
