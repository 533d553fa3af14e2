# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 140-174:
# "Creating Import Bundles > Bundle Structure".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
# Its lists are placeholders (`[...]`, a list holding Ellipsis), so it cannot run as written.
from musingly_core.models import (
    ImportBundle,
    ImportMetadata,
    DomainImport,
    TrailImport,
    ConceptImport,
    SparkImport,
    BeaconImport,
    ConceptSparkImport,
    SparkBeaconImport,
    SparkLinkImport,
    ConceptLinkImport,
)
from datetime import datetime, timezone
# Create the import bundle
bundle = ImportBundle(
    schema_version="1.0.0",
    version_label="v2.1.0", # Your versioning scheme
    name="January 2026 Content Update",
    metadata=ImportMetadata(
        generated_at=datetime.now(timezone.utc).isoformat(),
        source_system="content-generator",
        source_version="1.0.0",
        description="AI-generated ML curriculum expansion",
    ),
    domains=[...],
    trails=[...],
    concepts=[...],
    sparks=[...],
    beacons=[...],
    concept_sparks=[...],
    spark_beacons=[...],
    spark_links=[...],
    concept_links=[...],
)
