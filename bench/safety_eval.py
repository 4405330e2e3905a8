"""False-positive rate and recall of the safety check, per layer and combined.

Two sets of corpora in bench/data, each a benign file (coaching messages, hard negatives
such as "this workout is killing me" included) and a crisis file (indirect phrasing
included), several languages each:

* ``main`` (safety_benign.tsv, safety_crisis.tsv): the patterns, exemplars, threshold and
  margin were tuned while looking at its misses, so its figures are optimistic;
* ``holdout`` (safety_holdout_*.tsv): written after all of that was frozen, never tuned on.

For each set it runs the pattern layer, the embedding layer (Ollama's /api/embed with the
embedding model) and the combined check (``assess``) on every line and prints tables;
``--sweep`` adds the figures over a range of embedding thresholds.

    .venv/bin/python bench/safety_eval.py               # starts a loopback Ollama
    .venv/bin/python bench/safety_eval.py --ollama http://127.0.0.1:11434 --model all-minilm

Without ``--ollama`` it starts the development Ollama stack (coachops_devstack), whose
embedding model is all-MiniLM-L6-v2.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from coachops_devstack.ollama import start_ollama_stack
from coachops_runtime.ai.safety import ProgramSafety, assess
from coachops_runtime.ai.safety.normalize import normalize
from coachops_runtime.ai.safety.patterns import match
from coachops_runtime.ai.safety.similarity import ExemplarIndex, Score
from coachops_runtime.knowledge.embedding import Embedder

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Line:
    language: str
    category: str  # "" for benign lines
    text: str


def load(name: str, *, labelled: bool) -> list[Line]:
    lines = []
    for raw in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        if labelled:
            language, category, text = raw.split("\t", 2)
        else:
            (language, text), category = raw.split("\t", 1), ""
        lines.append(Line(language, category, text))
    return lines


@dataclass
class Outcome:
    pattern: bool
    embedding: bool
    combined: bool
    score: Score | None


async def evaluate(
    lines: list[Line], embedder: Embedder, model: str, index: ExemplarIndex
) -> list[Outcome]:
    program = ProgramSafety("bench", embedding_model=model)
    outcomes = []
    for line in lines:
        score = await index.nearest(embedder, model, line.text)
        verdict = await assess(line.text, program, embedder, index=index)
        outcomes.append(
            Outcome(
                match(normalize(line.text)) is not None,
                index.flagged(score),
                verdict.kind == "crisis",
                score,
            )
        )
    return outcomes


def _rate(hits: int, total: int) -> str:
    return f"{100 * hits / total:5.1f} % ({hits}/{total})" if total else "-"


def table(benign: list[Line], b: list[Outcome], crisis: list[Line], c: list[Outcome]) -> str:
    rows = ["| layer | false positives (benign) | recall (crisis) |", "|---|---|---|"]
    for layer in ("pattern", "embedding", "combined"):
        fp = sum(getattr(o, layer) for o in b)
        tp = sum(getattr(o, layer) for o in c)
        rows.append(f"| {layer} | {_rate(fp, len(b))} | {_rate(tp, len(c))} |")
    rows += ["", "| language | benign lines | FP combined | crisis lines | recall combined |"]
    rows.append("|---|---|---|---|---|")
    languages = sorted({line.language for line in benign + crisis})
    for lang in languages:
        bl = [o for line, o in zip(benign, b, strict=True) if line.language == lang]
        cl = [o for line, o in zip(crisis, c, strict=True) if line.language == lang]
        fp = sum(o.combined for o in bl)
        tp = sum(o.combined for o in cl)
        rows.append(
            f"| {lang} | {len(bl)} | {_rate(fp, len(bl))} | {len(cl)} | {_rate(tp, len(cl))} |"
        )
    rows += [
        "",
        "| category | crisis lines | recall pattern | recall embedding | recall combined |",
    ]
    rows.append("|---|---|---|---|---|")
    by_category: dict[str, list[Outcome]] = defaultdict(list)
    for line, o in zip(crisis, c, strict=True):
        by_category[line.category].append(o)
    for category, outcomes in sorted(by_category.items()):
        n = len(outcomes)
        rows.append(
            f"| {category} | {n} | {_rate(sum(o.pattern for o in outcomes), n)} | "
            f"{_rate(sum(o.embedding for o in outcomes), n)} | "
            f"{_rate(sum(o.combined for o in outcomes), n)} |"
        )
    return "\n".join(rows)


def sweep(b: list[Outcome], c: list[Outcome], margin: float) -> str:
    rows = [
        f"| threshold (margin {margin}) | embedding FP | embedding recall | combined FP |"
        " combined recall |",
        "|---|---|---|---|---|",
    ]
    for step in range(50, 81, 2):
        t = step / 100

        def flagged(o: Outcome, t: float = t) -> bool:
            return o.score is not None and o.score.flagged(t, margin)

        fp = sum(flagged(o) for o in b)
        tp = sum(flagged(o) for o in c)
        cfp = sum(flagged(o) or o.pattern for o in b)
        ctp = sum(flagged(o) or o.pattern for o in c)
        rows.append(
            f"| {t:.2f} | {_rate(fp, len(b))} | {_rate(tp, len(c))} | {_rate(cfp, len(b))} | "
            f"{_rate(ctp, len(c))} |"
        )
    return "\n".join(rows)


def misses(lines: list[Line], outcomes: list[Outcome], *, want: bool) -> list[str]:
    return [
        f"  [{line.language}] {line.text!r} crisis={o.score.crisis if o.score else 0:.2f} "
        f"benign={o.score.benign if o.score else 0:.2f}"
        for line, o in zip(lines, outcomes, strict=True)
        if o.combined != want
    ]


SETS = {
    "main": ("safety_benign.tsv", "safety_crisis.tsv"),
    "holdout": ("safety_holdout_benign.tsv", "safety_holdout_crisis.tsv"),
}


async def report(
    name: str, args: argparse.Namespace, embedder: Embedder, model: str, index: ExemplarIndex
) -> None:
    benign_file, crisis_file = SETS[name]
    benign = load(benign_file, labelled=False)
    crisis = load(crisis_file, labelled=True)
    b = await evaluate(benign, embedder, model, index)
    c = await evaluate(crisis, embedder, model, index)
    print(f"\n## {name}: benign {benign_file}, crisis {crisis_file}")
    print(f"benign lines {len(benign)} ({dict(Counter(x.language for x in benign))})")
    print(f"crisis lines {len(crisis)} ({dict(Counter(x.language for x in crisis))})\n")
    print(table(benign, b, crisis, c))
    if args.sweep:
        print()
        print(sweep(b, c, index.margin))
    if args.verbose:
        print("\nfalse positives:", *misses(benign, b, want=False), sep="\n")
        print("\nmissed crises:", *misses(crisis, c, want=True), sep="\n")


async def run(args: argparse.Namespace) -> None:
    stack = None
    url, model = args.ollama, args.model
    if not url:
        workdir = Path(tempfile.mkdtemp(prefix="safety-eval-"))
        stack = await start_ollama_stack(workdir, instruct=False, keep_workdir=False)
        url, model = stack.base_url, stack.embedding_model
    embedder = Embedder(url)
    index = ExemplarIndex()
    print(f"embedding model {model}; threshold {index.threshold}, margin {index.margin}")
    try:
        for name in SETS if args.set == "both" else (args.set,):
            await report(name, args, embedder, model, index)
    finally:
        await embedder.close()
        if stack is not None:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ollama", default="", help="an Ollama base URL (else start one)")
    parser.add_argument("--model", default="all-minilm:l6-v2", help="embedding model name")
    parser.add_argument("--set", choices=[*SETS, "both"], default="both")
    parser.add_argument("--sweep", action="store_true", help="figures over thresholds")
    parser.add_argument("--verbose", action="store_true", help="list misclassified lines")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
