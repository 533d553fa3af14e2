# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 177-194:
# "Creating Import Bundles > Entity Examples > Domains (Top-Level Categories)".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
domains = [
    DomainImport(
        name="Machine Learning",
        slug="machine-learning",
        description="Fundamentals and advanced topics in machine learning",
        icon="brain",
        color="#6366F1",
        is_published=True,
    ),
    DomainImport(
        name="Software Engineering",
        slug="software-engineering",
        description="Best practices for building robust software systems",
        icon="code",
        color="#10B981",
        is_published=True,
    ),
]
