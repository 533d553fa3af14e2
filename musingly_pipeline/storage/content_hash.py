"""The canonical content hash of a bundle: what makes two imports "the same content".

Only the entity lists count (not the version label, name or metadata), each sorted by its key
(slug, or the pair of slugs) and serialised with every default filled in, so reordering a list or
writing a default explicitly does not change the hash.
"""

from __future__ import annotations

import hashlib
from operator import attrgetter

from pydantic import TypeAdapter

from musingly_pipeline.contracts.bundle import ENTITY_KINDS, ImportBundle

_KEYS = {
    "domains": attrgetter("slug"),
    "trails": attrgetter("slug"),
    "concepts": attrgetter("slug"),
    "sparks": attrgetter("slug"),
    "beacons": attrgetter("slug"),
    "concept_sparks": attrgetter("concept_slug", "spark_slug"),
    "spark_beacons": attrgetter("spark_slug", "beacon_slug"),
    "spark_links": attrgetter("source_slug", "target_slug"),
    "concept_links": attrgetter("source_slug", "target_slug"),
}
_ADAPTERS = {kind: TypeAdapter(ImportBundle.model_fields[kind].annotation) for kind in ENTITY_KINDS}


def content_hash(bundle: ImportBundle) -> str:
    """sha256 hex of the bundle's canonical content."""
    digest = hashlib.sha256(b"musingly-content-v1")
    for kind in ENTITY_KINDS:
        rows = sorted(getattr(bundle, kind), key=_KEYS[kind])
        digest.update(f"\n{kind}\n".encode())
        digest.update(_ADAPTERS[kind].dump_json(rows))
    return digest.hexdigest()
