"""Issues as a Markdown table, the form every asset and check shows them in Dagster's metadata.

The :class:`~musingly_core.report.Issue` model and the bundle's codes live in ``musingly_core``;
the pipeline's own codes and its error type are in :mod:`musingly_pipeline.errors`.
"""

from __future__ import annotations

from musingly_core.report import Issue


def markdown_table(issues: list[Issue], limit: int = 50) -> str:
    """Issues as a Markdown table (for Dagster metadata), at most ``limit`` rows."""
    if not issues:
        return "No issues."
    rows = ["| severity | code | path | message |", "|---|---|---|---|"]
    for issue in issues[:limit]:
        message = issue.message.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {issue.severity.value} | {issue.code} | `{issue.path}` | {message} |")
    if len(issues) > limit:
        rows.append(f"| | | | … and {len(issues) - limit} more |")
    return "\n".join(rows)
