"""The key count without numpy (a generator's venv) equals the numpy count, so both decide alike."""

from __future__ import annotations

import json

from musingly_core import duplicate_keys
from musingly_core.duplicate_keys import _count_keys_without_numpy, count_keys
from musingly_pipeline.bundles.synthetic import write_bundle
from musingly_pipeline_tests.conftest import EXAMPLES

EXAMPLE = json.loads((EXAMPLES / "ml-curriculum.json").read_text())


def _texts(tmp_path) -> dict[str, bytes]:
    tricky = json.loads(json.dumps(EXAMPLE))
    # quotes and colons inside strings: escaped quotes before colons, a backslash before a quote
    tricky["sparks"][0]["content_md"] = 'say \\": "x": {"y": 1} \\\\": end\\" : "'
    tricky["sparks"][1]["summary"] = '"quoted": yes'
    text = json.dumps(tricky)
    first = EXAMPLE["sparks"][0]["slug"]
    return {
        "example": (EXAMPLES / "ml-curriculum.json").read_bytes(),
        "compact": json.dumps(EXAMPLE, separators=(",", ":")).encode(),
        "spaced colons": json.dumps(EXAMPLE, indent=4, separators=(",", " :  ")).encode(),
        "tabs and newlines before colons": json.dumps(EXAMPLE).replace('":', '"\t\n :').encode(),
        "tricky strings": text.encode(),
        "repeated key": text.replace(f'"slug": "{first}"', f'"slug": "{first}", "slug" : "again"', 1).encode(),
        "synthetic": write_bundle(tmp_path / "synthetic.json", 300).read_bytes(),
    }


def test_both_counts_agree(tmp_path):
    assert duplicate_keys._numpy()[0] is not None  # the pipeline's venv has numpy: count_keys is the numpy count
    for name, data in _texts(tmp_path).items():
        assert _count_keys_without_numpy(data) == count_keys(data), name
