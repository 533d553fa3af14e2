# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 817-842:
# "Best Practices > 2. Incremental Updates".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
# It has no imports of its own: it uses those of Bundle Structure. `# ... updated content` stands for
# the spark's required title and content_md, so the SparkImport call fails as written.
# Update only new/modified sparks
bundle = ImportBundle(
    schema_version="1.0.0",
    version_label="v2.1.1-hotfix",
    metadata=ImportMetadata(
        generated_at=datetime.now(timezone.utc).isoformat(),
        source_system="content-editor",
        description="Fixed typos in attention-mechanisms sparks",
    ),
    # Empty arrays for unchanged entity types
    domains=[],
    trails=[],
    concepts=[],
    # Only include modified sparks
    sparks=[
        SparkImport(
            slug="self-attention-explained",
            # ... updated content
        ),
    ],
    beacons=[],
    concept_sparks=[],
    spark_beacons=[],
    spark_links=[],
    concept_links=[],
)
