"""AI endpoints: the reply stream (SSE), the creator's preview, memory and token usage."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import Field
from sse_starlette import EventSourceResponse

from coachops_runtime.ai import replies
from coachops_runtime.ai.preview import prepare_preview, preview_events
from coachops_runtime.ai.schemas import MemoryPublic, PreviewRequest, UsageReport
from coachops_runtime.auth.dependencies import (
    ConversationsRead,
    CreatorDep,
    EndUserDep,
    ProgramsRead,
)
from coachops_runtime.container import RuntimeDep
from coachops_runtime.kit.errors import problems
from coachops_runtime.kit.text import Storable
from coachops_runtime.kit.transaction import release_request_session
from coachops_runtime.programs.endpoints import NamePath

router = APIRouter(tags=["ai"])

_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: token (a piece of text), reset (drop the text so "
        "far), fallback (the provider is unavailable; JSON with the fallback text), done "
        "(JSON with message_id and citations). Event ids resume with Last-Event-ID.",
        # One event (as clients and schemathesis parse the stream): its name, data and id.
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string"},
                        "data": {"type": "string"},
                        "id": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.get(
    "/v1/me/messages/{message_id}/reply",
    response_class=EventSourceResponse,
    responses={**_STREAM, **problems(401, 403, 404, 429)},
)
async def stream_reply(
    message_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    context: EndUserDep,
    runtime: RuntimeDep,
    last_event_id: Annotated[
        Annotated[str, Field(max_length=64, pattern=r"^(\d{1,20}-\d{1,20}|stored-\d)$"), Storable]
        | None,
        Header(description="The id of the last event received; the stream continues after it."),
    ] = None,
) -> EventSourceResponse:
    """The AI reply to one of your messages as it is generated, from whichever replica you
    reach. Reconnect with ``Last-Event-ID`` to continue after the last event you got;
    leaving does not stop the reply, which is stored whole when it is done."""
    job = await replies.job_for_stream(context, message_id)
    await release_request_session(request.scope)

    async def state(row: Any) -> tuple[str, Any]:
        return await replies.job_state(runtime.pool, row)

    return EventSourceResponse(
        replies.relay(runtime.redis, state, job, last_event_id),
        ping=int(replies.IDLE_CHECK_SECONDS * 3),
    )


@router.post(
    "/v1/programs/{name}/preview",
    response_class=EventSourceResponse,
    responses={**_STREAM, **problems(401, 403, 404, 422, 429)},
)
async def preview(
    name: NamePath,
    data: PreviewRequest,
    request: Request,
    context: ProgramsRead,
    runtime: RuntimeDep,
) -> EventSourceResponse:
    """Try the program's coach: the reply to ``message`` streams as it is generated, with
    the persona, knowledge and model of the program (no end user, no memory). Nothing is
    stored and no quota is charged."""
    prepared = await prepare_preview(runtime, context, name, data.message)
    await release_request_session(request.scope)

    async def events() -> AsyncIterator[dict[str, str]]:
        async for event, payload in preview_events(runtime, prepared):
            yield {
                "event": event,
                "data": payload if isinstance(payload, str) else json.dumps(payload),
            }

    return EventSourceResponse(events())


@router.get(
    "/v1/conversations/{conversation_id}/memory",
    response_model=MemoryPublic,
    responses=problems(401, 403, 404, 429),
)
async def conversation_memory(
    conversation_id: uuid.UUID, context: ConversationsRead
) -> MemoryPublic:
    """The AI coach's rolling summary of the conversation (the prompt also carries the last
    few messages verbatim)."""
    return await replies.memory(context, conversation_id)


@router.get(
    "/v1/creator/usage/ai",
    response_model=UsageReport,
    responses=problems(400, 401, 403, 429),
)
async def ai_usage(
    context: CreatorDep, months: Annotated[int, Query(ge=1, le=24)] = 3
) -> UsageReport:
    """AI replies and their prompt and completion tokens per program and month (UTC), for
    the last ``months`` months."""
    return UsageReport(items=await replies.usage(context, months))
