"""The canonical content hash of a bundle: what makes two imports "the same content".

Only the entity lists count (not the version label, name or metadata), each sorted by its key
(slug, or the pair of slugs) and serialised with every default filled in, so reordering a list or
writing a default explicitly does not change the hash.
"""

from __future__ import annotations

import hashlib
from operator import attrgetter

from pydantic import TypeAdapter

from musingly_core.models import ENTITY_KINDS, ImportBundle

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


# Rows serialised per call: the serialiser holds the GIL for a whole call, and an import runs its
# COPY in another thread while this hashes; small calls let that thread feed the server meanwhile.
_CHUNK = 2000


def content_hash(bundle: ImportBundle) -> str:
    """sha256 hex of the bundle's canonical content.

    Per kind, the JSON array of its rows sorted by key (``[row,row,...]``, compact), written in
    chunks that together are byte for byte the array's serialisation.
    """
    digest = hashlib.sha256(b"musingly-content-v1")
    for kind in ENTITY_KINDS:
        rows = sorted(getattr(bundle, kind), key=_KEYS[kind])
        digest.update(f"\n{kind}\n[".encode())
        dump = _ADAPTERS[kind].dump_json
        for start in range(0, len(rows), _CHUNK):
            if start:
                digest.update(b",")
            digest.update(dump(rows[start:start + _CHUNK])[1:-1])
        digest.update(b"]")
    return digest.hexdigest()
