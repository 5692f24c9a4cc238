"""Meta-tests: every source module has its own tests, and every polled source runs the fault table."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from collector.sources import SOURCES
from tests.collector.fakes.faults import SourceContract

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "collector" / "sources").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_every_source_module_has_a_test_module(module: str) -> None:
    test = ROOT / "tests" / "collector" / "sources" / f"test_{module}.py"
    assert test.exists(), f"collector/sources/{module}.py has no tests/collector/sources/test_{module}.py"
    assert "def test_" in test.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_polled_source_runs_the_table_of_faults(name: str) -> None:
    module = SOURCES[name].target.split(":")[0].rsplit(".", 1)[-1]
    tests = vars(importlib.import_module(f"tests.collector.sources.test_{module}")).values()
    contracts = [
        t for t in tests if isinstance(t, type) and issubclass(t, SourceContract) and t is not SourceContract
    ]
    assert contracts, f"test_{module}.py has no subclass of SourceContract (the fault table)"


def test_every_polled_source_is_in_the_registry() -> None:
    polled = {spec.target.split(":")[0].rsplit(".", 1)[-1] for spec in SOURCES.values()}
    assert set(MODULES) - polled == {"base", "files"}  # the contract, and imports run by hand
