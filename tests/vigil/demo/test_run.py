from __future__ import annotations

from pathlib import Path

import pytest

from vigil.demo.run import clear_demo_folder, write_config
from vigil.errors import VigilError
from vigil.settings import load_settings


def test_the_demo_recreates_a_folder_it_made(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    clear_demo_folder(folder)
    write_config(load_settings(environ={}), folder)
    (folder / "old.eml").write_text("from an earlier run")
    clear_demo_folder(folder)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("made", [False, True])
def test_the_demo_starts_in_a_new_or_empty_folder(tmp_path: Path, made: bool) -> None:
    folder = tmp_path / "demo"
    if made:
        folder.mkdir()
    clear_demo_folder(folder)
    assert folder.is_dir()


def test_the_demo_never_deletes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("precious")
    (tmp_path / "vigil.toml").write_text('[database]\nurl = "sqlite:///var/vigil.db"\n')
    with pytest.raises(VigilError, match="not empty and was not made by `vigil demo`"):
        clear_demo_folder(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "precious"
