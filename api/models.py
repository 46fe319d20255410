"""The contract's bodies and answers, as pydantic models (and so the OpenAPI document).

Names and shapes are the ones the content teams' frontends were written against; they are mapped
onto Inkwell's own input models (queue_tasks) by the routes, which validate them again.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

JobStatusName = Literal["queued", "scheduled", "running", "succeeded", "failed", "cancelled"]
JobKindName = Literal["content-generation", "website-analysis", "titles", "site-section", "post-image", "site-promotion"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateOptions(_Body):
    """What any create may carry besides its own fields."""

    scheduledAt: AwareDatetime | None = Field(default=None, description="Start no earlier than this (ISO-8601 with a time zone).")
    callbackUrl: str | None = Field(
        default=None, max_length=2000,
        description="POST the final status document here, signed (webhook-id, webhook-timestamp, webhook-signature).",
    )


class Topic(BaseModel):
    # Frontends send more about a topic than Inkwell uses; the rest is ignored.
    model_config = ConfigDict(extra="allow")

    title: str
    subheader: str | None = None


class BusinessInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    businessType: str | None = None
    targetAudience: str | None = None
    brandVoice: str | None = None


class ContentOptions(_Body):
    autoSave: bool = True
    status: Literal["draft", "published"] = "draft"
    includeVisuals: bool = False


class ContentGenerationCreate(CreateOptions):
    topic: Topic
    businessInfo: BusinessInfo = Field(default_factory=BusinessInfo)
    organizationId: str | int = Field(description="The caller's own organization (admins: any).")
    additionalInstructions: str | None = None
    options: ContentOptions = Field(default_factory=ContentOptions)


class WebsiteAnalysisCreate(CreateOptions):
    url: str
    sessionId: str | None = Field(default=None, description="An anonymous visitor's session id (else the x-session-id header).")


class TitlesCreate(CreateOptions):
    topic: str
    audience: str | None = None
    tone: str | None = None
    count: int = 5


class ImageForBlogCreate(CreateOptions):
    blogPostId: str
    content: str = ""
    topic: str
    organizationId: str | int


class JobAccepted(BaseModel):
    jobId: str


class SiteBuildAccepted(BaseModel):
    buildId: str
    jobIds: list[str]
    skippedSections: int


class JobStatus(BaseModel):
    jobId: str
    kind: str
    status: JobStatusName
    progress: int = Field(ge=0, le=100)
    currentStep: str
    estimatedTimeRemaining: int | None
    error: str | None
    errorCode: str | None
    result: dict[str, Any] | None
    attempts: int
    createdAt: str
    updatedAt: str
    startedAt: str | None
    finishedAt: str | None


class JobList(BaseModel):
    jobs: list[JobStatus]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last page.")


class Me(BaseModel):
    id: int
    username: str
    displayName: str
    role: str
    organizationId: int
    organizationName: str
    creditBalance: int | None


class Health(BaseModel):
    status: Literal["ok"]
    database: bool
    liveWorkers: int
    queueDepth: int
