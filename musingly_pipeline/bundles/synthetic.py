"""Synthetic, valid bundles of any size, for benchmarks and tests (`musingly generate`).

A bundle of ``sparks`` sparks has ~1 KB of Markdown per spark, about three prerequisite links per
spark (always from an earlier spark to a later one, so the graph is a DAG), a concept per 20
sparks, a trail per 10 concepts, a domain per 10 trails, 40 beacons, and every junction type. The
file is written as a stream, so generating 100k sparks needs little memory.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

_TOPICS = (
    "gradient", "tensor", "attention", "embedding", "kernel", "cache", "index", "query", "graph",
    "stream", "schema", "vector", "token", "layer", "buffer", "queue", "thread", "lock", "shard",
    "replica", "cluster", "batch", "sample", "signal", "policy", "reward", "matrix", "proof",
)
_PARAGRAPH = (
    "This micro-lesson walks through the idea step by step, with a worked example and a short "
    "exercise at the end. Read it once quickly, then again with pen and paper; the second pass is "
    "where the details settle. "
)


def _slug(prefix: str, n: int) -> str:
    return f"{prefix}-{_TOPICS[n % len(_TOPICS)]}-{n}"


def bundle_entities(sparks: int, seed: int = 0, content_bytes: int = 1000) -> Iterator[tuple[str, list]]:
    """Yield ``(kind, rows)`` for each entity list of a synthetic bundle, in import order."""
    rng = random.Random(seed)
    n_concepts = max(1, sparks // 20)
    n_trails = max(1, n_concepts // 10)
    n_domains = max(1, n_trails // 10)
    n_beacons = 40
    body = (_PARAGRAPH * (content_bytes // len(_PARAGRAPH) + 1))[:content_bytes]

    yield "domains", [
        {"name": f"Domain {d}", "slug": _slug("domain", d), "description": f"Synthetic domain {d}",
         "icon": "book", "color": f"#{rng.randrange(0x1000000):06X}", "is_published": True}
        for d in range(n_domains)
    ]
    yield "trails", [
        {"domain_slug": _slug("domain", t % n_domains), "title": f"Trail {t}", "slug": _slug("trail", t),
         "description": f"Synthetic trail {t}",
         "difficulty_level": ("beginner", "intermediate", "advanced", "expert")[t % 4],
         "is_published": t % 3 != 0}
        for t in range(n_trails)
    ]
    yield "concepts", [
        {"trail_slug": _slug("trail", c % n_trails), "title": f"Concept {c}", "slug": _slug("concept", c),
         "description": f"Synthetic concept {c}", "order_index": c // n_trails, "is_published": True}
        for c in range(n_concepts)
    ]
    spark_rows = []
    for s in range(sparks):
        topic = _TOPICS[s % len(_TOPICS)]
        spark_rows.append({
            "title": f"{topic.title()} in practice, part {s}", "slug": _slug("spark", s),
            "summary": f"How {topic}s behave, lesson {s}",
            "content_md": f"# {topic.title()} {s}\n\n{body}\n",
            "difficulty_level": ("beginner", "intermediate", "advanced")[s % 3],
            "estimated_minutes": 3 + s % 10, "is_published": True,
        })
    yield "sparks", spark_rows
    yield "beacons", [
        {"name": f"Beacon {b}", "slug": _slug("beacon", b), "description": f"Tag {b}",
         "category": ("technology", "application", "theory")[b % 3]}
        for b in range(n_beacons)
    ]
    yield "concept_sparks", [
        {"concept_slug": _slug("concept", s % n_concepts), "spark_slug": _slug("spark", s),
         "order_index": s // n_concepts}
        for s in range(sparks)
    ]
    yield "spark_beacons", [
        {"spark_slug": _slug("spark", s), "beacon_slug": _slug("beacon", b)}
        for s in range(sparks)
        for b in sorted({s % n_beacons, (s * 7 + 3) % n_beacons})
    ]
    links = []
    for target in range(1, sparks):
        window = range(max(0, target - 1000), target)
        for source in rng.sample(window, min(3, len(window))):
            links.append({"source_slug": _slug("spark", source), "target_slug": _slug("spark", target),
                          "link_type": "prerequisite", "weight": round(rng.uniform(0.3, 1.0), 2)})
    yield "spark_links", links
    yield "concept_links", [
        {"source_slug": _slug("concept", c - n_trails), "target_slug": _slug("concept", c),
         "link_type": "prerequisite", "weight": 0.8}
        for c in range(n_trails, n_concepts)
    ]


def write_bundle(path: str | Path, sparks: int, seed: int = 0, content_bytes: int = 1000,
                 version_label: str | None = None) -> Path:
    """Write a synthetic bundle of ``sparks`` sparks to ``path`` and return the path."""
    path = Path(path)
    head = {
        "schema_version": "1.0.0",
        "version_label": version_label or f"synthetic-{sparks}-{seed}",
        "name": f"Synthetic bundle, {sparks} sparks",
        "metadata": {"generated_at": "2026-01-01T00:00:00+00:00", "source_system": "musingly-synthetic",
                     "source_version": "1", "description": "Generated for tests and benchmarks"},
    }
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(json.dumps(head, indent=2)[:-2])  # drop the closing "\n}"
        for kind, rows in bundle_entities(sparks, seed, content_bytes):
            out.write(f',\n  "{kind}": [')
            for i, row in enumerate(rows):
                out.write(("\n    " if i == 0 else ",\n    ") + json.dumps(row, ensure_ascii=False))
            out.write("\n  ]" if rows else "]")
        out.write("\n}\n")
    tmp.replace(path)
    return path
