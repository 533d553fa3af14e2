# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 310-361:
# "Creating Import Bundles > Complete Example".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
from musingly_core.models import ImportBundle, ImportMetadata
from datetime import datetime, timezone
import json
def create_content_bundle() -> ImportBundle:
    """Create a complete import bundle for new ML content."""
    return ImportBundle(
        schema_version="1.0.0",
        version_label="v2.1.0",
        name="ML Curriculum Expansion Q1 2026",
        metadata=ImportMetadata(
            generated_at=datetime.now(timezone.utc).isoformat(),
            source_system="ml-content-generator",
            source_version="2.0.0",
            description="Expanded coverage of transformer architectures",
        ),
        domains=[
            # ... domain definitions
        ],
        trails=[
            # ... trail definitions
        ],
        concepts=[
            # ... concept definitions
        ],
        sparks=[
            # ... spark definitions
        ],
        beacons=[
            # ... beacon definitions
        ],
        concept_sparks=[
            # ... concept-spark links
        ],
        spark_beacons=[
            # ... spark-beacon tags
        ],
        spark_links=[
            # ... spark prerequisite graph
        ],
        concept_links=[
            # ... concept prerequisite graph
        ],
    )
def export_bundle(bundle: ImportBundle, output_path: str) -> None:
    """Export bundle to JSON file for import."""
    with open(output_path, "w") as f:
        json.dump(bundle.model_dump(), f, indent=2)
    print(f"Bundle exported to {output_path}")
# Usage
if __name__ == "__main__":
    bundle = create_content_bundle()
    export_bundle(bundle, "import-bundle-v2.1.0.json")
