# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 284-308:
# "Creating Import Bundles > Entity Examples > DAG Edges (Prerequisites)".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
# `linear-algebra-basics` and `multi-head-attention` are sparks, `transformer-encoder` a concept, that no
# example defines.
# Spark-to-Spark prerequisites
spark_links = [
    SparkLinkImport(
        source_slug="linear-algebra-basics", # Must learn this first
        target_slug="self-attention-explained", # To understand this
        link_type="prerequisite",
        weight=0.9, # Strong dependency
        description="Linear algebra concepts needed for attention",
    ),
    SparkLinkImport(
        source_slug="self-attention-explained",
        target_slug="multi-head-attention",
        link_type="prerequisite",
        weight=0.95,
    ),
]
# Concept-to-Concept prerequisites
concept_links = [
    ConceptLinkImport(
        source_slug="attention-mechanisms",
        target_slug="transformer-encoder",
        link_type="prerequisite",
        weight=0.85,
    ),
]
