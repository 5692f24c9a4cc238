"""Meta-tests: the project's layout and style hold, so that every contributor keeps them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["vigil", "collector", "classifier", "alerts", "cases"]


def test_the_layout_follows_the_data_flow() -> None:
    for name in [*PACKAGES, "migrations", "config", "tests", "benchmarks"]:
        assert (ROOT / name).is_dir(), name
    assert not (ROOT / "config" / "__init__.py").exists(), "config/ is data, not a Python package"


def test_every_package_has_a_mirror_in_tests() -> None:
    for package in PACKAGES:
        assert (ROOT / "tests" / package).is_dir(), f"tests/{package}/ is missing"


def test_every_module_uses_postponed_annotations() -> None:
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if text.strip() and "def " in text:
                assert "from __future__ import annotations" in text, path


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the dev extras: make test)")
    result = subprocess.run([ruff, "check", "--quiet", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
