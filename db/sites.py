"""Site builds, content entities and their versions, promotions: the console uses the sync
functions, the worker the async ones."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from db.queries import QUERIES


class SiteBatchSummary(BaseModel):
    """A build with the states of its sections."""

    id: uuid.UUID
    site_name: str
    environment: str
    mode: str
    requested_by: str
    created_at: dt.datetime
    skipped_sections: int
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    progress_sum: int

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def progress(self) -> float:
        """0–1 across the sections; a finished section (whatever its end) counts as whole."""
        return self.progress_sum / (100 * self.total) if self.total else 1.0

    @property
    def state(self) -> str:
        if self.queued or self.running:
            return "running"
        if self.succeeded == self.total:
            return "succeeded"
        if self.succeeded:
            return "partially succeeded"
        return "cancelled" if self.cancelled == self.total else "failed"


class BatchSection(BaseModel):
    position: int
    route: str
    section: str
    template: str
    request_id: uuid.UUID
    status: str
    progress: int
    current_step: str
    error_code: str | None
    error_message: str | None
    attempts: int
    result: dict[str, Any] | None
    entity_id: uuid.UUID | None
    current_version: int | None
    current_content: dict[str, Any] | None


class ContentVersion(BaseModel):
    id: int
    version: int
    content: dict[str, Any]
    source: str
    request_id: uuid.UUID | None
    source_version_id: int | None
    replaces_version_id: int | None
    model_name: str | None
    offline_model: bool | None
    created_at: dt.datetime


class PromotionSummary(BaseModel):
    id: uuid.UUID
    action: str
    requested_by: str
    created_at: dt.datetime
    status: str
    error_message: str | None
    total: int
    done: int
    skipped: int
    failed: int


class Promotion(BaseModel):
    id: uuid.UUID
    batch_id: uuid.UUID
    action: str
    request_id: uuid.UUID
    requested_by: str
    created_at: dt.datetime
    site_name: str


class PromotionEntity(BaseModel):
    position: int
    route: str
    section: str
    template: str
    status: str
    message: str | None
    from_version_id: int | None
    to_version_id: int | None


# --- Builds (console, sync) -----------------------------------------------------------------------


def insert_batch(
    conn: psycopg.Connection,
    *,
    batch_id: uuid.UUID,
    site_name: str,
    environment: str,
    mode: str,
    requested_by: str,
    business: dict,
    definition: dict,
    skipped_sections: int,
) -> None:
    conn.execute(
        QUERIES["insert_site_batch"],
        {
            "id": batch_id,
            "site_name": site_name,
            "environment": environment,
            "mode": mode,
            "requested_by": requested_by,
            "business": Jsonb(business),
            "definition": Jsonb(definition),
            "skipped_sections": skipped_sections,
        },
    )


def link_batch_sections(
    conn: psycopg.Connection, batch_id: uuid.UUID, rows: Sequence[tuple[uuid.UUID, int, str, str, str]]
) -> None:
    """rows: (request_id, position, route, section, template)."""
    conn.execute(
        QUERIES["link_site_batch_sections"],
        {
            "batch_id": batch_id,
            "request_ids": [r[0] for r in rows],
            "positions": [r[1] for r in rows],
            "routes": [r[2] for r in rows],
            "sections": [r[3] for r in rows],
            "templates": [r[4] for r in rows],
        },
    )


def entities_with_content(conn: psycopg.Connection, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    return {row[0] for row in conn.execute(QUERIES["entities_with_content"], {"ids": list(ids)})}


def list_batches(conn: psycopg.Connection, limit: int = 50) -> list[SiteBatchSummary]:
    with conn.cursor(row_factory=class_row(SiteBatchSummary)) as cur:
        return cur.execute(QUERIES["list_site_batches"], {"batch_id": None, "limit": limit}).fetchall()


def get_batch(conn: psycopg.Connection, batch_id: uuid.UUID | str) -> SiteBatchSummary | None:
    with conn.cursor(row_factory=class_row(SiteBatchSummary)) as cur:
        return cur.execute(QUERIES["list_site_batches"], {"batch_id": batch_id, "limit": 1}).fetchone()


def get_batch_definition(conn: psycopg.Connection, batch_id: uuid.UUID | str) -> dict | None:
    row = conn.execute(QUERIES["get_site_batch_definition"], {"batch_id": batch_id}).fetchone()
    return row[0] if row else None


def list_batch_sections(conn: psycopg.Connection, batch_id: uuid.UUID | str) -> list[BatchSection]:
    with conn.cursor(row_factory=class_row(BatchSection)) as cur:
        return cur.execute(QUERIES["list_site_batch_sections"], {"batch_id": batch_id}).fetchall()


def batch_request_ids(conn: psycopg.Connection, batch_id: uuid.UUID | str, statuses: Sequence[str]) -> list[uuid.UUID]:
    rows = conn.execute(QUERIES["site_batch_request_ids"], {"batch_id": batch_id, "statuses": list(statuses)})
    return [row[0] for row in rows]


def get_current_content_sync(conn: psycopg.Connection, entity_id: uuid.UUID) -> ContentVersion | None:
    with conn.cursor(row_factory=class_row(ContentVersion)) as cur:
        return cur.execute(QUERIES["get_current_content"], {"entity_id": entity_id}).fetchone()


def list_entity_versions(conn: psycopg.Connection, entity_id: uuid.UUID) -> list[ContentVersion]:
    with conn.cursor(row_factory=class_row(ContentVersion)) as cur:
        return cur.execute(QUERIES["list_entity_versions"], {"entity_id": entity_id}).fetchall()


# --- Promotions (console, sync) -------------------------------------------------------------------


def insert_promotion(
    conn: psycopg.Connection, *, promotion_id: uuid.UUID, batch_id: uuid.UUID, action: str, request_id: uuid.UUID, requested_by: str
) -> None:
    params = {"id": promotion_id, "batch_id": batch_id, "action": action, "request_id": request_id, "requested_by": requested_by}
    conn.execute(QUERIES["insert_site_promotion"], params)
    conn.execute(QUERIES["insert_site_promotion_entities"], {"promotion_id": promotion_id, "batch_id": batch_id})


def list_promotions(conn: psycopg.Connection, batch_id: uuid.UUID | str) -> list[PromotionSummary]:
    with conn.cursor(row_factory=class_row(PromotionSummary)) as cur:
        return cur.execute(QUERIES["list_site_promotions"], {"batch_id": batch_id}).fetchall()


def list_promotion_entities(conn: psycopg.Connection, promotion_id: uuid.UUID | str) -> list[PromotionEntity]:
    with conn.cursor(row_factory=class_row(PromotionEntity)) as cur:
        return cur.execute(QUERIES["list_site_promotion_entities"], {"promotion_id": promotion_id}).fetchall()


# --- Worker (async) -------------------------------------------------------------------------------


async def get_current_content(conn: psycopg.AsyncConnection, entity_id: uuid.UUID) -> ContentVersion | None:
    async with conn.cursor(row_factory=class_row(ContentVersion)) as cur:
        await cur.execute(QUERIES["get_current_content"], {"entity_id": entity_id})
        return await cur.fetchone()


async def get_version_by_request(
    conn: psycopg.AsyncConnection, entity_id: uuid.UUID, request_id: uuid.UUID
) -> ContentVersion | None:
    async with conn.cursor(row_factory=class_row(ContentVersion)) as cur:
        await cur.execute(QUERIES["get_version_by_request"], {"entity_id": entity_id, "request_id": request_id})
        return await cur.fetchone()


async def get_version(conn: psycopg.AsyncConnection, version_id: int) -> ContentVersion | None:
    async with conn.cursor(row_factory=class_row(ContentVersion)) as cur:
        await cur.execute(QUERIES["get_version"], {"version_id": version_id})
        return await cur.fetchone()


async def lock_entity(
    conn: psycopg.AsyncConnection, *, entity_id: uuid.UUID, site: str, route: str, section: str, environment: str, template: str
) -> int | None:
    """Create the entity if new and lock it; returns its current version id. Call inside a transaction."""
    cur = await conn.execute(
        QUERIES["upsert_content_entity"],
        {
            "entity_id": entity_id,
            "site_name": site,
            "route": route,
            "section": section,
            "environment": environment,
            "template": template,
        },
    )
    return (await cur.fetchone())[0]


async def add_version(
    conn: psycopg.AsyncConnection,
    *,
    entity_id: uuid.UUID,
    content: dict,
    source: str,
    request_id: uuid.UUID | None,
    source_version_id: int | None = None,
    model_name: str | None = None,
    offline_model: bool | None = None,
) -> ContentVersion | None:
    """A new version made current; None when this request already wrote one. Call with the entity locked."""
    async with conn.cursor(row_factory=class_row(ContentVersion)) as cur:
        await cur.execute(
            QUERIES["insert_content_version"],
            {
                "entity_id": entity_id,
                "content": Jsonb(content),
                "source": source,
                "request_id": request_id,
                "source_version_id": source_version_id,
                "model_name": model_name,
                "offline_model": offline_model,
            },
        )
        version = await cur.fetchone()
    if version is not None:
        await set_current_version(conn, entity_id, version.id)
    return version


async def set_current_version(conn: psycopg.AsyncConnection, entity_id: uuid.UUID, version_id: int) -> None:
    await conn.execute(QUERIES["set_current_version"], {"entity_id": entity_id, "version_id": version_id})


async def write_generated_version(
    conn: psycopg.AsyncConnection,
    *,
    entity_id: uuid.UUID,
    site: str,
    route: str,
    section: str,
    environment: str,
    template: str,
    content: dict,
    request_id: uuid.UUID,
    model_name: str,
    offline_model: bool,
) -> ContentVersion:
    """The section's content as the entity's new current version, once per request."""
    async with conn.transaction():
        await lock_entity(
            conn, entity_id=entity_id, site=site, route=route, section=section, environment=environment, template=template
        )
        version = await add_version(
            conn,
            entity_id=entity_id,
            content=content,
            source="generated",
            request_id=request_id,
            model_name=model_name,
            offline_model=offline_model,
        )
        if version is None:
            version = await get_version_by_request(conn, entity_id, request_id)
    return version


async def get_promotion(conn: psycopg.AsyncConnection, promotion_id: uuid.UUID | str) -> Promotion | None:
    async with conn.cursor(row_factory=class_row(Promotion)) as cur:
        await cur.execute(QUERIES["get_site_promotion"], {"promotion_id": promotion_id})
        return await cur.fetchone()


async def list_promotion_entities_async(conn: psycopg.AsyncConnection, promotion_id: uuid.UUID | str) -> list[PromotionEntity]:
    async with conn.cursor(row_factory=class_row(PromotionEntity)) as cur:
        await cur.execute(QUERIES["list_site_promotion_entities"], {"promotion_id": promotion_id})
        return await cur.fetchall()


async def lock_pending_promotion_entity(conn: psycopg.AsyncConnection, promotion_id: uuid.UUID, position: int) -> bool:
    cur = await conn.execute(QUERIES["lock_pending_promotion_entity"], {"promotion_id": promotion_id, "position": position})
    return await cur.fetchone() is not None


async def finish_promotion_entity(
    conn: psycopg.AsyncConnection,
    promotion_id: uuid.UUID,
    position: int,
    *,
    status: str,
    message: str | None = None,
    from_version_id: int | None = None,
    to_version_id: int | None = None,
) -> None:
    await conn.execute(
        QUERIES["finish_promotion_entity"],
        {
            "promotion_id": promotion_id,
            "position": position,
            "status": status,
            "message": message,
            "from_version_id": from_version_id,
            "to_version_id": to_version_id,
        },
    )
