"""localdev's kubelet-style Secret writer: atomic ``..data`` swaps, key links, the old version
removed like the kubelet does (or kept, for the demo's history)."""

from __future__ import annotations

from pathlib import Path

from tgbot_localdev.secretmount import write_version


def _versions(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith("..") and p.name not in {"..data", "..data_tmp"}]


def test_like_the_kubelet_the_replaced_version_goes_and_dropped_keys_vanish(tmp_path: Path) -> None:
    write_version(tmp_path, {"secret-token": b"one", "previous-secret-token": b"zero"}, keep_history=False)
    first = (tmp_path / "..data").resolve()
    write_version(tmp_path, {"secret-token": b"two"}, keep_history=False)
    assert (tmp_path / "secret-token").read_text() == "two"
    assert (tmp_path / "secret-token").is_symlink()
    assert not (tmp_path / "previous-secret-token").exists()
    assert not first.exists()
    assert len(_versions(tmp_path)) == 1


def test_the_demo_keeps_every_version(tmp_path: Path) -> None:
    for token in (b"a", b"b", b"c"):
        write_version(tmp_path, {"secret-token": token})
    assert (tmp_path / "secret-token").read_text() == "c"
    assert sorted((v / "secret-token").read_text() for v in _versions(tmp_path)) == ["a", "b", "c"]
