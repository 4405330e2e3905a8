"""Safety: a layered check of each inbound message before the AI replies, and what
happens when it does not pass.

``assess(text, program, embedder)`` -> ``Verdict``: curated patterns in eight languages,
then embedding similarity to crisis exemplars with the program's embedding model, then
the program's blocked topics. ``respond(session, verdict, ...)`` -> ``SafetyReply``: the
reply text (resources or a polite refusal) and, for a crisis, the AI paused in the
conversation and an alert queued for ``spec.safety.escalationEmail``; every non-ok
verdict is recorded in ``safety_events``. Message text is never logged or stored here.
"""

from coachops_runtime.ai.safety.check import assess
from coachops_runtime.ai.safety.program import ProgramSafety
from coachops_runtime.ai.safety.respond import SafetyReply, respond
from coachops_runtime.ai.safety.verdict import Category, Verdict

__all__ = ["Category", "ProgramSafety", "SafetyReply", "Verdict", "assess", "respond"]
