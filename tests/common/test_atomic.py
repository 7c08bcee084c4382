import pytest

from components.common.atomic import atomic_dir, write_json_atomic


def test_atomic_dir_replaces_target_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"

    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "b.txt").write_text("partial")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no leftover temp dirs


def test_write_json_atomic(tmp_path):
    write_json_atomic(tmp_path / "x" / "m.json", {"b": 1, "a": 2})
    assert (tmp_path / "x" / "m.json").read_text().startswith('{\n  "a": 2')
