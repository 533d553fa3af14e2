# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 365-492:
# "Validation > Pre-Flight Validation (Python)".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
# validate_dag_acyclic's recursive search overflows Python's stack on a chain of about a
# thousand links, and it checks spark_links only; validate_referential_integrity skips concept_links.
from pydantic import ValidationError
from musingly_core.models import ImportBundle
import json
def validate_bundle(bundle_path: str) -> tuple[bool, list[str]]:
    """Validate a bundle file before import."""
    errors = []
    try:
        with open(bundle_path) as f:
            data = json.load(f)
        # Pydantic validates schema, types, and constraints
        bundle = ImportBundle.model_validate(data)
        # Custom validation rules
        errors.extend(validate_referential_integrity(bundle))
        errors.extend(validate_dag_acyclic(bundle))
        errors.extend(validate_slug_uniqueness(bundle))
    except ValidationError as e:
        for error in e.errors():
            loc = ".".join(str(x) for x in error["loc"])
            errors.append(f"Schema error at {loc}: {error['msg']}")
    except json.JSONDecodeError as e:
        errors.append(f"Invalid JSON: {e}")
    return len(errors) == 0, errors
def validate_referential_integrity(bundle: ImportBundle) -> list[str]:
    """Check all slug references point to existing entities."""
    errors = []
    # Collect all defined slugs
    domain_slugs = {d.slug for d in bundle.domains}
    trail_slugs = {t.slug for t in bundle.trails}
    concept_slugs = {c.slug for c in bundle.concepts}
    spark_slugs = {s.slug for s in bundle.sparks}
    beacon_slugs = {b.slug for b in bundle.beacons}
    # Validate trail -> domain references
    for trail in bundle.trails:
        if trail.domain_slug not in domain_slugs:
            errors.append(
                f"Trail '{trail.slug}' references unknown domain '{trail.domain_slug}'"
            )
    # Validate concept -> trail references
    for concept in bundle.concepts:
        if concept.trail_slug and concept.trail_slug not in trail_slugs:
            errors.append(
                f"Concept '{concept.slug}' references unknown trail '{concept.trail_slug}'"
            )
    # Validate concept_sparks
    for cs in bundle.concept_sparks:
        if cs.concept_slug not in concept_slugs:
            errors.append(f"concept_sparks references unknown concept '{cs.concept_slug}'")
        if cs.spark_slug not in spark_slugs:
            errors.append(f"concept_sparks references unknown spark '{cs.spark_slug}'")
    # Validate spark_beacons
    for sb in bundle.spark_beacons:
        if sb.spark_slug not in spark_slugs:
            errors.append(f"spark_beacons references unknown spark '{sb.spark_slug}'")
        if sb.beacon_slug not in beacon_slugs:
            errors.append(f"spark_beacons references unknown beacon '{sb.beacon_slug}'")
    # Validate spark_links
    for link in bundle.spark_links:
        if link.source_slug not in spark_slugs:
            errors.append(f"spark_links references unknown source '{link.source_slug}'")
        if link.target_slug not in spark_slugs:
            errors.append(f"spark_links references unknown target '{link.target_slug}'")
    return errors
def validate_dag_acyclic(bundle: ImportBundle) -> list[str]:
    """Ensure spark and concept links form a DAG (no cycles)."""
    errors = []
    # Build adjacency list for spark graph
    spark_graph: dict[str, set[str]] = {}
    for link in bundle.spark_links:
        if link.source_slug not in spark_graph:
            spark_graph[link.source_slug] = set()
        spark_graph[link.source_slug].add(link.target_slug)
    # Detect cycles using DFS
    def has_cycle(graph: dict[str, set[str]]) -> list[str] | None:
        visited = set()
        path = set()
        path_list = []
        def dfs(node: str) -> list[str] | None:
            visited.add(node)
            path.add(node)
            path_list.append(node)
            for neighbor in graph.get(node, []):
                if neighbor in path:
                    cycle_start = path_list.index(neighbor)
                    return path_list[cycle_start:] + [neighbor]
                if neighbor not in visited:
                    result = dfs(neighbor)
                    if result:
                        return result
            path.remove(node)
            path_list.pop()
            return None
        for node in graph:
            if node not in visited:
                cycle = dfs(node)
                if cycle:
                    return cycle
        return None
    cycle = has_cycle(spark_graph)
    if cycle:
        errors.append(f"Cycle detected in spark_links: {' -> '.join(cycle)}")
    return errors
def validate_slug_uniqueness(bundle: ImportBundle) -> list[str]:
    """Ensure slugs are unique within each entity type."""
    errors = []
    def check_duplicates(items: list, entity_type: str) -> list[str]:
        slugs = [item.slug for item in items]
        seen = set()
        duplicates = set()
        for slug in slugs:
            if slug in seen:
                duplicates.add(slug)
            seen.add(slug)
        return [f"Duplicate {entity_type} slug: '{s}'" for s in duplicates]
    errors.extend(check_duplicates(bundle.domains, "domain"))
    errors.extend(check_duplicates(bundle.trails, "trail"))
    errors.extend(check_duplicates(bundle.concepts, "concept"))
    errors.extend(check_duplicates(bundle.sparks, "spark"))
    errors.extend(check_duplicates(bundle.beacons, "beacon"))
    return errors
# Usage
if __name__ == "__main__":
    valid, errors = validate_bundle("import-bundle-v2.1.0.json")
    if valid:
        print("✓ Bundle is valid")
    else:
        print("✗ Validation failed:")
        for error in errors:
            print(f" - {error}")
