"""`musingly validate`, `schema` and `generate` as a user runs them: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from musingly_core.schema import SCHEMA_FILE, render_bundle_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "data" / "examples").glob("*.json"))


def musingly(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "musingly_pipeline.cli", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_examples_are_green():
    result = musingly("validate", *map(str, EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok    ") == len(EXAMPLES)


def test_json_output_shape_for_mixed_files(tmp_path):
    broken = tmp_path / "broken.json"
    data = json.loads(EXAMPLES[0].read_text())
    data["sparks"][3]["slug"] = "Bad Slug"
    broken.write_text(json.dumps(data))
    result = musingly("validate", "--json", str(EXAMPLES[0]), str(broken))
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    good, bad = document["files"]
    assert good["valid"] and good["errors"] == [] and good["counts"]["sparks"] == 4
    assert bad["file"] == str(broken) and not bad["valid"]
    (err,) = bad["errors"]
    assert set(err) == {"code", "severity", "path", "message"}
    assert err["path"] == "sparks[3].slug" and err["severity"] == "error"


def test_one_file_json_has_the_same_shape():
    document = json.loads(musingly("validate", "--json", str(EXAMPLES[0])).stdout)
    assert document["valid"] is True and len(document["files"]) == 1


@pytest.mark.parametrize(("content", "needle"), [
    (b"", "empty"),
    (b'{"schema_version": "1.0.0",\n "sparks": [', "line 2"),
    (b"[]", "JSON array"),
    (b'{"a": "\xff"}', "not UTF-8"),
])
def test_bad_files_get_one_clear_line_and_exit_1(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = musingly("validate", str(path))
    assert result.returncode == 1
    assert needle in result.stdout and str(path) in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_file_exits_1_without_traceback(tmp_path):
    result = musingly("validate", str(tmp_path / "missing.json"))
    assert result.returncode == 1 and "does not exist" in result.stdout
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2():
    assert musingly("validate").returncode == 2
    assert musingly("no-such-command").returncode == 2
    assert musingly("validate", "--frobnicate", str(EXAMPLES[0])).returncode == 2


@pytest.mark.parametrize("command", ["validate", "schema", "generate"])
def test_help_has_an_example(command):
    result = musingly(command, "--help")
    assert result.returncode == 0 and "Example:" in result.stdout and f"musingly {command}" in result.stdout


def test_schema_is_deterministic_and_committed_copy_is_current(tmp_path):
    out = tmp_path / "import-schemas.json"
    assert musingly("schema", "--out", str(out)).returncode == 0
    assert out.read_text() == render_bundle_schema() == musingly("schema").stdout
    assert SCHEMA_FILE.read_text() == render_bundle_schema(), (
        "sdk/python/musingly_core/import-schemas.json is out of date; run "
        "`musingly schema --out sdk/python/musingly_core/import-schemas.json`"
    )
    schema = json.loads(out.read_text())
    assert schema["additionalProperties"] is False
    assert "SparkImport" in schema["$defs"]


def test_generate_writes_a_valid_bundle(tmp_path):
    out = tmp_path / "gen.json"
    assert musingly("generate", "--sparks", "250", "--out", str(out)).returncode == 0
    result = musingly("validate", "--json", str(out))
    assert result.returncode == 0
    counts = json.loads(result.stdout)["files"][0]["counts"]
    assert counts["sparks"] == 250 and counts["spark_links"] > 600


def test_a_repeated_key_fails_validate_with_its_location(tmp_path):
    """The last of two `slug`s used to win silently; the first spark's slug was lost."""
    text = EXAMPLES[0].read_text(encoding="utf-8")
    first = json.loads(text)["sparks"][0]["slug"]
    path = tmp_path / "twice.json"
    path.write_text(text.replace(f'"slug": "{first}"', f'"slug": "{first}", "slug": "renamed"', 1), encoding="utf-8")
    result = musingly("validate", str(path))
    assert result.returncode == 1
    assert "JSON_DUPLICATE_KEY at sparks[0].slug" in result.stdout
    assert "Traceback" not in result.stderr
