# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 196-205:
# "Creating Import Bundles > Entity Examples > Trails (Learning Paths)".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
trails = [
    TrailImport(
        domain_slug="machine-learning", # References domain by slug
        title="Transformer Architecture Mastery",
        slug="transformer-mastery",
        description="Deep dive into attention mechanisms and transformer models",
        difficulty_level="intermediate",
        is_published=False, # Draft until reviewed
    ),
]
