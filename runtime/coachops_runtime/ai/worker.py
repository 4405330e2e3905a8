"""The reply poller: claims reply jobs and turns each inbound message into one AI reply.

A job is leased by ``claim_reply_job`` (migration 0007) in a short transaction; then every
step runs in its own transaction with the job's tenant bound (RLS): read the job, the
conversation, the program and the end user; retrieve knowledge; generate while streaming
the pieces to Redis; store the reply and finish the job in one transaction. Generation
holds no transaction and no connection. A worker killed mid-generation leaves its lease
to expire; the job is claimed again and generated anew, and the unique index on
``messages.reply_to`` keeps a second reply from ever being stored.

The provider is tried ``provider_attempts`` times; then the end user gets the program's
fallback text (once per message), the conversation is flagged (``ai_unavailable_since``)
and the job is retried every ``fallback_retry_seconds`` until the provider answers.
A paused conversation gets no reply: the job is skipped and the quota reserved for it
when the message arrived is given back, as it is for a job that finally fails.

Logs name jobs, conversations and outcomes, never message or reply text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import redis.asyncio as aioredis

from coachops_crds.constants import tenant_redis_prefix
from coachops_runtime.ai import hooks
from coachops_runtime.ai.collections import KeepingVectorStore
from coachops_runtime.ai.memory import refresh_memory
from coachops_runtime.ai.models import ProgramModel, Providers
from coachops_runtime.ai.prompt import Persona, PromptParts, Source, Turn, assemble
from coachops_runtime.ai.providers import ChatRequest, ProviderError, Usage
from coachops_runtime.ai.repository import JobRepository
from coachops_runtime.ai.safety import Verdict
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.ai.stream import DONE, FALLBACK, RESET, TOKEN, ReplyStream, stream_key
from coachops_runtime.kit.context import tenant_id_var
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.metrics import AI_FIRST_TOKEN_SECONDS, AI_REPLY_SECONDS
from coachops_runtime.kit.ratelimit import CacheUnavailableError, Limiter
from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.embedding import Embedder, EmbeddingError
from coachops_runtime.knowledge.retrieval import retrieve
from coachops_runtime.knowledge.vectors import VectorStoreError
from coachops_runtime.worker.wake import WakeUps

log = logging.getLogger("coachops.worker.ai")
WAKE_CHANNEL = "coachops_reply_jobs"


class JobEmbeddings:
    """One job's embeddings: each (model, text) is embedded once, however many of the
    job's steps ask for it (the safety check embeds the message's sentences, retrieval the
    message; a one-sentence message is one vector). Texts asked for while a call is in
    flight go together in the next call. ``seconds`` is the wall time during which a call
    was in flight: the embedder's time, kept apart from the pipeline's."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str], asyncio.Future[list[float]]] = {}
        self.waiting: list[tuple[str, str]] = []
        self.sender: asyncio.Task[None] | None = None
        self.seconds = 0.0

    async def get(self, embedder: Embedder, model: str, texts: list[str]) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        for text in texts:
            key = (model, text)
            if key not in self.vectors:
                self.vectors[key] = loop.create_future()
                self.waiting.append(key)
        if self.waiting and (self.sender is None or self.sender.done()):
            self.sender = asyncio.create_task(self._send(embedder))
        return [await asyncio.shield(self.vectors[(model, text)]) for text in texts]

    async def _send(self, embedder: Embedder) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            for model in dict.fromkeys(m for m, _ in batch):
                keys = [key for key in batch if key[0] == model]
                started = time.perf_counter()
                try:
                    vectors = await Embedder.embed_batch(embedder, model, [t for _, t in keys])
                except EmbeddingError as error:
                    for key in keys:  # each asker handles it; a later ask tries again
                        self.vectors.pop(key).set_exception(error)
                    continue
                except BaseException as error:  # no asker may wait forever
                    for key in keys:
                        self.vectors.pop(key).set_exception(EmbeddingError(repr(error)))
                    raise
                finally:
                    self.seconds += time.perf_counter() - started
                for key, vector in zip(keys, vectors, strict=True):
                    self.vectors[key].set_result(vector)


# The current job's embeddings (each job runs in its own task, with its own context).
_job_embeddings: ContextVar[JobEmbeddings | None] = ContextVar("job_embeddings", default=None)


class TimedEmbedder(Embedder):
    """The knowledge embedder; inside a job, its calls go through the job's embeddings."""

    async def embed_batch(self, model: str, texts: Any) -> list[list[float]]:
        embeddings = _job_embeddings.get()
        if embeddings is None:
            return await super().embed_batch(model, texts)
        return await embeddings.get(self, model, list(texts))


def quota_key(creator_name: str, at: datetime) -> str:
    """The monthly AI message counter (as ``creators.service.month_key`` names it) of the
    month the message arrived in, where its reservation was taken."""
    return f"{tenant_redis_prefix(creator_name)}quota:messages:{at.astimezone(UTC):%Y%m}"


class ReplyPoller:
    name = "ai-replies"

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        ai: AiSettings | None = None,
        redis: aioredis.Redis | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.ai = ai or AiSettings()
        self.pool = pool
        self.redis = redis or aioredis.Redis.from_url(
            settings.redis_url.get_secret_value(), socket_connect_timeout=2, socket_timeout=5
        )
        self.limiter = Limiter(self.redis)
        self.providers = Providers(settings, self.ai)
        self.vectors = KeepingVectorStore(settings.chroma_url) if settings.chroma_url else None
        # The safety check's and retrieval's embeddings (Ollama), one client for all jobs.
        self.embedder = TimedEmbedder(
            settings.ollama_url,
            timeout=settings.knowledge_timeout_seconds,
            registry=settings.model_registry,
        )
        # Set by a NOTIFY when a job is enqueued (and read by the worker's loop), so an
        # idle worker claims a new job at once instead of at its next poll.
        self.wake_ups = WakeUps(settings, WAKE_CHANNEL, "reply jobs")
        self.wake = self.wake_ups.event
        self.stop = stop or asyncio.Event()
        self._warmed = False
        self._running: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        await self.wake_ups.close()
        await self.embedder.close()
        await self.providers.close()
        if self.vectors is not None:
            await self.vectors.close()
        await self.redis.aclose()

    async def _warm(self) -> None:
        """Open the connections the lanes will use, once: opening one (TLS, SCRAM) costs far
        more than a step of a job, and a burst of jobs would otherwise open them all at once
        inside their first steps."""
        if self._warmed:
            return
        self._warmed = True
        lanes = min(self.ai.concurrency, self.pool.get_max_size())
        async with contextlib.AsyncExitStack() as held:
            for _ in range(lanes):
                await held.enter_async_context(self.pool.acquire())

    async def poll(self) -> int:
        """Claim and run due jobs, up to ``concurrency`` at once: a lane that finishes (or a
        new job's wake-up) claims the next at once. Returns when nothing is due and nothing
        runs (or when stopping, once the jobs in flight are done)."""
        await self.wake_ups.listen()
        await self._warm()
        # Held by the poller, not this call: a failed claim (database gone) leaves the
        # jobs in flight running and referenced, and the next poll goes on with them.
        running = self._running
        handled = 0
        while True:
            self.wake.clear()
            while len(running) < self.ai.concurrency and not self.stop.is_set():
                before = time.perf_counter()
                claimed = await self._claim()
                if claimed is None:
                    break
                claim_ms = (time.perf_counter() - before) * 1000
                running.add(asyncio.create_task(self._run(*claimed, claim_ms)))
            if not running:
                return handled
            woken = asyncio.create_task(self.wake.wait())
            done, _ = await asyncio.wait({*running, woken}, return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            finished = done & running
            running -= finished
            handled += len(finished)

    async def _claim(self) -> tuple[uuid.UUID, uuid.UUID, int] | None:
        async with self.transaction(None) as session:
            return await JobRepository(session).claim(self.ai.lease_seconds)

    async def _run(
        self, creator_id: uuid.UUID, job_id: uuid.UUID, attempts: int, claim_ms: float
    ) -> None:
        try:
            await self.process(creator_id, job_id, attempts, claim_ms=claim_ms)
        except Exception:
            # The lease runs out and the job is claimed again; the other lanes go on.
            log.exception("reply job failed", extra={"job_id": str(job_id)})

    async def handle_one(self) -> bool:
        """Claim and run one due job; False when none is due."""
        claimed = await self._claim()
        if claimed is None:
            return False
        await self.process(*claimed)
        return True

    @asynccontextmanager
    async def transaction(self, creator_id: uuid.UUID | None) -> AsyncIterator[Session]:
        async with self.pool.acquire() as connection:
            session = Session(connection)
            if creator_id is not None:
                await session.set_tenant(creator_id)
            try:
                yield session
            except BaseException:
                await session.finish(commit=False)
                raise
            await session.finish(commit=True)

    async def process(
        self, creator_id: uuid.UUID, job_id: uuid.UUID, attempts: int, *, claim_ms: float = 0.0
    ) -> None:
        """Work on one claimed job under ``creator_id``'s tenant. Public so tests can hand
        it crafted (tenant, job) pairs: a job of another tenant is simply not found.
        ``claim_ms`` (the claim's own time) counts in the job's total."""
        tenant_id_var.set(str(creator_id))
        clock = JobEmbeddings()
        _job_embeddings.set(clock)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        fields = {"job_id": str(job_id), "attempts": attempts}
        async with self.transaction(creator_id) as session:
            repo = JobRepository(session)
            job = await repo.context(job_id)
            if job is None:
                if await repo.orphaned(job_id):
                    log.error("reply job refers to rows outside its tenant", extra=fields)
                else:
                    log.info("reply job gone or finished", extra=fields)
                return
            fields["conversation_id"] = str(job["conversation_id"])
            spec: dict[str, Any] = job["spec"] or {}
            if job["ai_paused"] or job["deleted_at"] is not None:
                reason = "conversation paused" if job["ai_paused"] else "program deleted"
                await repo.skipped(job_id, attempts, reason)
                await self._refund(job)
                log.info("reply skipped", extra={**fields, "reason": reason})
                return
            goals = await hooks.active_goals(session, job["end_user_id"], job["program_id"])
            history = await repo.history(
                job["conversation_id"], job["message_id"], self.ai.memory_turns
            )
        stream = ReplyStream(
            self.redis,
            stream_key(job["creator_name"], job_id),
            max_events=self.ai.stream_max_events,
            ttl_seconds=self.ai.stream_ttl_seconds,
        )
        timings["context_ms"] = (time.perf_counter() - started) * 1000
        # From the enqueueing transaction's start to this job's context read (PostgreSQL's
        # clock): the request's rest, its commit, the wake-up and the claim.
        timings["queued_ms"] = float(job["queued_ms"])
        lap = time.perf_counter()
        model = ProgramModel.from_spec(spec, job["provider_key"])
        # The safety check and retrieval at once: both wait mostly for the embedder.
        verdict, sources = await asyncio.gather(
            hooks.check_safety(job, spec, self.embedder), self._retrieve(creator_id, job, fields)
        )
        if not verdict.ok:
            await self._answer_safety(creator_id, job, attempts, verdict, spec, stream, fields)
            return
        timings["knowledge_ms"] = (time.perf_counter() - lap) * 1000
        timings["embed_ms"] = clock.seconds * 1000
        lap = time.perf_counter()
        persona = spec.get("persona") or {}
        prompt = assemble(
            PromptParts(
                persona=Persona(
                    name=str(persona.get("name", "Coach")),
                    instructions=str(persona.get("instructions", "")),
                    tone=str(persona.get("tone", "warm")),
                    language=str(persona.get("language", "en")),
                ),
                display_name=job["display_name"],
                time_zone=job["time_zone"],
                goals=goals,
                summary=job["summary"],
                sources=sources,
                history=[
                    Turn("user" if row["author"] == "end_user" else "assistant", row["body"])
                    for row in history
                ],
                message=job["message"],
                now=datetime.now(UTC),
            ),
            context_tokens=self.ai.context_tokens,
            max_tokens=model.max_tokens,
        )
        request = ChatRequest(
            model=self.providers.model_name(model),
            messages=prompt.messages,
            temperature=model.temperature,
            max_tokens=model.max_tokens,
        )
        timings["prompt_ms"] = (time.perf_counter() - lap) * 1000
        if attempts > 1:
            await _publish(stream, RESET, "")  # a retry starts the text over
        before_model = time.perf_counter()
        outcome = await self._generate(model, request, stream)
        model_seconds = time.perf_counter() - before_model
        timings["model_ms"] = model_seconds * 1000
        if isinstance(outcome, ProviderError):
            await self._fall_back(creator_id, job, attempts, outcome, model, stream, fields)
            return
        text, usage, first_token, published = outcome
        # Streaming the pieces to Redis is the pipeline's work, not the model's.
        timings["stream_ms"] = published * 1000
        timings["model_ms"] -= timings["stream_ms"]
        timings["first_token_ms"] = first_token * 1000
        AI_FIRST_TOKEN_SECONDS.observe(first_token)
        citations = [source.citation() for source in prompt.sources]
        lap = time.perf_counter()
        async with self.transaction(creator_id) as session:
            repo = JobRepository(session)
            reply_id = await repo.store_reply(
                job,
                author="ai",
                body=text,
                citations=citations,
                usage=(usage.prompt_tokens, usage.completion_tokens),
                model=request.model,
            )
            # Up to the last statement and the commit, which the record cannot hold.
            now = time.perf_counter()
            timings["store_ms"] = (now - lap) * 1000
            timings["claim_ms"] = claim_ms
            timings["total_ms"] = (now - started) * 1000 + claim_ms
            timings["overhead_ms"] = timings["total_ms"] - timings["model_ms"] - timings["embed_ms"]
            record = {**prompt.record(), "timings": {k: round(v, 3) for k, v in timings.items()}}
            await repo.done(job_id, reply_id, attempts, record)
        AI_REPLY_SECONDS.observe(timings["total_ms"] / 1000)
        await _publish(stream, DONE, {"message_id": reply_id, "citations": citations})
        log.info(
            "reply stored",
            extra={
                **fields,
                "message_id": reply_id,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "model_ms": round(timings["model_ms"], 1),
                "overhead_ms": round(timings["overhead_ms"], 2),
            },
        )
        # The context read counted the messages the summary does not cover; the reply
        # adds one. Most replies need no refresh and cost no query for it.
        if job["unsummarized"] + 1 <= self.ai.memory_turns + self.ai.summary_every:
            return
        try:
            await refresh_memory(self, creator_id, job, model, request.model)
        except (ProviderError, asyncpg.PostgresError, OSError) as error:
            log.warning("memory not refreshed", extra={**fields, "error": str(error)[:200]})

    async def _retrieve(
        self, creator_id: uuid.UUID, job: Any, fields: dict[str, Any]
    ) -> list[Source]:
        if self.vectors is None or not self.settings.ollama_url:
            return []
        try:
            async with self.transaction(creator_id) as session:
                passages = await retrieve(
                    session,
                    self.vectors,
                    self.embedder,
                    job["program_id"],
                    job["message"],
                    top_k=self.ai.retrieval_top_k,
                    max_distance=self.ai.retrieval_max_distance,
                )
        except (EmbeddingError, VectorStoreError) as error:
            # The coach answers without knowledge rather than not at all.
            log.warning("retrieval failed", extra={**fields, "error": str(error)[:200]})
            return []
        return [
            Source(n, p.source, p.page, p.section, p.chunk_id, p.text, p.distance)
            for n, p in enumerate(passages, start=1)
        ]

    async def _answer_safety(
        self,
        creator_id: uuid.UUID,
        job: Any,
        attempts: int,
        verdict: Verdict,
        spec: dict[str, Any],
        stream: ReplyStream,
        fields: dict[str, Any],
    ) -> None:
        """The safety reply instead of an AI reply (stored as the message's one reply);
        nothing was generated, so the reserved quota goes back."""
        async with self.transaction(creator_id) as session:
            repo = JobRepository(session)
            answer = await hooks.answer_safety(session, verdict, job, spec)
            reply_id = await repo.store_reply(
                job, author="ai", body=answer.text, citations=[], usage=None, model=None
            )
            await repo.done(job["job_id"], reply_id, attempts)
        await self._refund(job)
        await _publish(stream, TOKEN, answer.text)
        await _publish(stream, DONE, {"message_id": reply_id, "citations": []})
        log.info("safety reply sent", extra={**fields, "verdict": verdict.kind})

    async def _generate(
        self, model: ProgramModel, request: ChatRequest, stream: ReplyStream
    ) -> tuple[str, Usage, float, float] | ProviderError:
        provider = self.providers.for_model(model)
        error = ProviderError("no attempt")
        for attempt in range(self.ai.provider_attempts):
            if attempt:
                await asyncio.sleep(self.ai.provider_retry_seconds * 2 ** (attempt - 1))
            usage, pieces = Usage(), cast(list[str], [])
            started = time.perf_counter()
            first = 0.0
            try:
                async with asyncio.timeout(self.ai.generation_timeout_seconds):
                    async for piece in provider.stream(request, usage):
                        if not pieces:
                            first = time.perf_counter() - started
                        pieces.append(piece)
                        stream.send(TOKEN, piece)
                # The pipeline's own time in streaming: what is still unwritten at the end.
                before = time.perf_counter()
                await stream.flush()
                published = time.perf_counter() - before
                return "".join(pieces).strip(), usage, first, published
            except TimeoutError:
                error = ProviderError("generation timed out")
            except ProviderError as failure:
                error = failure
            if pieces:
                stream.send(RESET, "")
        return error

    async def _fall_back(
        self,
        creator_id: uuid.UUID,
        job: Any,
        attempts: int,
        error: ProviderError,
        model: ProgramModel,
        stream: ReplyStream,
        fields: dict[str, Any],
    ) -> None:
        give_up = attempts >= self.ai.max_attempts
        async with self.transaction(creator_id) as session:
            repo = JobRepository(session)
            fallback_id = job["fallback_message_id"]
            first = fallback_id is None
            if first:
                fallback_id = await repo.store_fallback(job, model.fallback_text)
            if give_up:
                await repo.failed(job["job_id"], attempts, error.reason)
            else:
                await repo.retry(
                    job["job_id"],
                    attempts,
                    error.reason,
                    fallback_id,
                    self.ai.fallback_retry_seconds,
                )
        if first:
            await _publish(
                stream, FALLBACK, {"message_id": fallback_id, "text": model.fallback_text}
            )
        if give_up:
            await self._refund(job)
        log.warning(
            "provider unavailable, fallback sent" if first else "provider still unavailable",
            extra={**fields, "error": error.reason[:200], "given_up": give_up},
        )

    async def _refund(self, job: Any) -> None:
        """Give back the quota reserved when the message arrived."""
        try:
            await self.limiter.consume_quota(
                quota_key(job["creator_name"], job["created_at"]), 1 << 62, -1
            )
        except CacheUnavailableError:
            log.warning(
                "quota not refunded: Redis unavailable", extra={"job_id": str(job["job_id"])}
            )


async def _publish(stream: ReplyStream, event: str, data: Any) -> None:
    """Write a control event and wait for it (best effort, like every stream write)."""
    await stream.add(event, data if isinstance(data, str) else json.dumps(data))
