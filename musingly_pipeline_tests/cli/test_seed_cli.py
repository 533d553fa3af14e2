"""`musingly seed import|export` as a user runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

from musingly_pipeline.cli import main
from musingly_pipeline.seed_units.files import UNITS_DIR, encode
from musingly_pipeline.seed_units.synthetic import synthetic_unit

SEED_DATA = Path(__file__).resolve().parents[2] / "data" / "seed_data"


def test_import_then_export_reproduces_the_folder(make_database, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", make_database())
    assert main(["seed", "import", "--dir", str(SEED_DATA), "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "ok    users.json" in out and "lessons" in out and "2 of 2 unit(s) imported" in out
    assert main(["seed", "export", "--all-units", "--users", "--output-dir", str(tmp_path)]) == 0
    for source in SEED_DATA.rglob("*.json"):
        assert (tmp_path / source.relative_to(SEED_DATA)).read_bytes() == source.read_bytes()
    # the same folder again: every unit is unchanged and says so
    assert main(["seed", "import", "--dir", str(SEED_DATA)]) == 0
    again = capsys.readouterr().out
    units = sorted(path.name for path in (SEED_DATA / UNITS_DIR).glob("*.json"))
    assert [line.split()[1] for line in again.splitlines() if "unchanged (already imported), skipped" in line] == \
        [f"{UNITS_DIR}/{name}:" for name in units]


def test_a_broken_unit_is_reported_and_exit_is_1(make_database, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", make_database())
    shutil.copytree(SEED_DATA, tmp_path / "seed")
    broken = synthetic_unit(1, lessons=1, exercises=2)
    broken["owner_key"] = "carol"
    (tmp_path / "seed" / UNITS_DIR / "zz-broken.json").write_bytes(encode(broken))
    assert main(["seed", "import", "--dir", str(tmp_path / "seed")]) == 1
    out = capsys.readouterr().out
    assert "FAIL  units/zz-broken.json: 1 error(s)" in out
    assert "SEED_UNKNOWN_OWNER at owner_key: Unknown owner_key 'carol'; known keys: ada, brian" in out
    assert "2 of 3 unit(s) imported" in out


def test_export_one_unit_and_usage_errors(make_database, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", make_database())
    assert main(["seed", "import", "--dir", str(SEED_DATA)]) == 0
    capsys.readouterr()
    assert main(["seed", "export", "--unit", "6f1c2b1e-5d0e-4c33-9a7e-0d1f5a1b2c3d", "--output-dir", str(tmp_path)]) == 0
    assert [p.name for p in (tmp_path / UNITS_DIR).iterdir()] == ["photosynthesis-basics.json"]
    assert main(["seed", "export", "--output-dir", str(tmp_path)]) == 2
    assert main(["seed", "export", "--unit", "no-such-unit", "--output-dir", str(tmp_path)]) == 1
    assert "no unit with id no-such-unit" in capsys.readouterr().err
    assert main(["seed", "import", "--dir", str(tmp_path / "missing")]) == 1


def test_unreachable_database_exits_3(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSINGLY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["seed", "import", "--dir", str(SEED_DATA)]) == 3
