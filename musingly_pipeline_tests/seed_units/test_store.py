"""SeedUnitStore, the one object both faces call, and the seed refusals as MusinglyErrors with codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from musingly_core.report import Severity
from musingly_pipeline.cli import main
from musingly_pipeline.errors import MusinglyError
from musingly_pipeline.seed_units import SeedUnitStore
from musingly_pipeline.seed_units.errors import FolderFileRefused, SeedUnitError
from musingly_pipeline.seed_units.files import UNITS_DIR, encode
from musingly_pipeline.seed_units.synthetic import synthetic_unit

SEED_DATA = Path(__file__).resolve().parents[2] / "data" / "seed_data"


def test_import_list_check_export_and_compare_through_one_object(make_database, tmp_path):
    store = SeedUnitStore(make_database())
    assert store.units() == []
    result = store.import_folder(SEED_DATA)
    assert result.ok, result.issues()
    units = store.units()
    assert len(units) == len(list((SEED_DATA / UNITS_DIR).glob("*.json"))) and units == sorted(units, key=lambda u: (u[1], u[0]))
    assert store.validate_folder(SEED_DATA) == []
    assert store.round_trip(SEED_DATA).exact
    exported = store.export_folder(tmp_path, unit_ids=(units[0][0], "no-such-unit"))
    assert [p.parent.name for p in exported.files] == [UNITS_DIR] and exported.missing == ["no-such-unit"]


def test_the_check_reports_what_the_import_reports(make_database, tmp_path):
    shutil.copytree(SEED_DATA, tmp_path / "seed")
    broken = synthetic_unit(3, lessons=1, exercises=2)
    broken["owner_key"] = "carol"
    (tmp_path / "seed" / UNITS_DIR / "zz-broken.json").write_bytes(encode(broken))
    store = SeedUnitStore(make_database())
    checked = [(i.code, i.path) for i in store.validate_folder(tmp_path / "seed") if i.severity is Severity.error]
    imported = [(i.code, i.path) for i in store.import_folder(tmp_path / "seed").issues()]
    assert checked == imported == [("SEED_UNKNOWN_OWNER", "units/zz-broken.json: owner_key")]


def test_refusals_are_musingly_errors_with_codes(make_database, tmp_path):
    store = SeedUnitStore(make_database())
    with pytest.raises(SeedUnitError) as refused:
        store.import_folder(tmp_path / "missing")
    assert refused.value.code == "SEED_FOLDER_NOT_FOUND" and isinstance(refused.value, MusinglyError)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(SeedUnitError) as refused:
        store.export_folder(tmp_path / "a-file")
    assert refused.value.code == "SEED_EXPORT_FAILED"
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / UNITS_DIR).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(FolderFileRefused) as refused:
        store.export_folder(out)
    assert refused.value.code == "FILE_OUTSIDE_FOLDER" and refused.value.issue.code == "FILE_OUTSIDE_FOLDER"
    assert str(refused.value).startswith("FILE_OUTSIDE_FOLDER: ")


def test_the_cli_prints_a_seed_refusal_with_its_code(make_database, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", make_database())
    assert main(["seed", "import", "--dir", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.startswith("musingly seed: SEED_FOLDER_NOT_FOUND: ")
    assert main(["seed", "export", "--unit", "no-such-unit", "--output-dir", str(tmp_path / "out")]) == 1
    assert "musingly seed: SEED_UNIT_NOT_FOUND: no unit with id no-such-unit" in capsys.readouterr().err


def test_a_batch_item_without_unit_text_fails_with_its_code(make_database):
    from musingly_pipeline.batches import BatchManager, default_registry

    manager = BatchManager(make_database(), default_registry(env={}))
    batch_id = manager.create_batch("seed_unit", [{"file": "units/x.json", "text": 5}])
    manager.process_batch(batch_id)
    [item] = manager.get_batch_items(batch_id)
    assert item.status == "failed" and item.error_code == "ITEM_INVALID"
    assert item.error_message.startswith("SeedUnitError: SEED_ITEM_INVALID: units/x.json holds no unit text")
