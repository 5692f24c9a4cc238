from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from alerts.config import AlertsConfig
from alerts.transports import make_transport

TRANSPORTS = Path(__file__).resolve().parents[3] / "alerts" / "transports"


@pytest.mark.parametrize("backend", ["smtp", "file", "console"])
def test_the_backend_setting_picks_the_transport(config: AlertsConfig, backend: str) -> None:
    assert make_transport(replace(config.email, backend=backend)).name == backend


def test_every_transport_module_has_its_tests() -> None:
    modules = {path.stem for path in TRANSPORTS.glob("*.py") if path.stem != "__init__"}
    assert modules == {"smtp", "file", "console"}
    for module in modules:
        assert (Path(__file__).parent / f"test_{module}.py").is_file(), module
