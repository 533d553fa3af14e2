# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 259-282:
# "Creating Import Bundles > Entity Examples > Junction Tables (Relationships)".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
# `multi-head-attention` is a spark no example defines.
# Link sparks to concepts
concept_sparks = [
    ConceptSparkImport(
        concept_slug="attention-mechanisms",
        spark_slug="self-attention-explained",
        order_index=0,
    ),
    ConceptSparkImport(
        concept_slug="attention-mechanisms",
        spark_slug="multi-head-attention",
        order_index=1,
    ),
]
# Tag sparks with beacons
spark_beacons = [
    SparkBeaconImport(
        spark_slug="self-attention-explained",
        beacon_slug="transformers",
    ),
    SparkBeaconImport(
        spark_slug="self-attention-explained",
        beacon_slug="nlp",
    ),
]
