# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 207-224:
# "Creating Import Bundles > Entity Examples > Concepts (Topic Clusters)".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
concepts = [
    ConceptImport(
        trail_slug="transformer-mastery", # References trail by slug
        title="Attention Mechanisms",
        slug="attention-mechanisms",
        description="Understanding self-attention and its variants",
        order_index=0,
        is_published=False,
    ),
    ConceptImport(
        trail_slug="transformer-mastery",
        title="Positional Encoding",
        slug="positional-encoding",
        description="How transformers understand sequence order",
        order_index=1,
        is_published=False,
    ),
]
