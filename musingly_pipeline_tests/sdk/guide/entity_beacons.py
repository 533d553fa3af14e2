# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 244-257:
# "Creating Import Bundles > Entity Examples > Beacons (Tags)".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
beacons = [
    BeaconImport(
        name="Transformers",
        slug="transformers",
        description="Content related to transformer architectures",
        category="technology",
    ),
    BeaconImport(
        name="NLP",
        slug="nlp",
        description="Natural Language Processing topics",
        category="application",
    ),
]
