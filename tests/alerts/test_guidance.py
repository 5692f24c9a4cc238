from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alerts.config import GUIDANCE_TOPICS, AlertsConfig
from alerts.guidance import load_guidance, read_guidance, topics_for
from vigil.settings import SettingsError


def test_every_topic_cites_its_sources(config: AlertsConfig) -> None:
    for topic in GUIDANCE_TOPICS:
        assert "Sources:" in (config.guidance_dir / f"{topic}.md").read_text(), topic


def test_the_guidance_gives_the_uk_essentials(config: AlertsConfig) -> None:
    texts = load_guidance(config.guidance_dir, "Example Defence Union", "0800 123 4567")
    threat, abusive, critical, praise, general = (" ".join(texts[t].text.split()) for t in GUIDANCE_TOPICS)
    assert "999" in threat and "101" in threat and "screenshot" in threat
    assert "Never confirm that the author is a patient" in threat
    assert "GMC" in abusive and "confidentiality stands" in abusive and "report" in abusive.lower()
    assert "complaints procedure" in critical and "Defamation Act 2013" in critical
    assert "without confirming that they are a patient" in praise
    assert "0330 123 1245" in general and "116 123" in general
    for text in (threat, abusive, critical, general):
        assert "Example Defence Union's advice line on 0800 123 4567" in text


def test_the_placeholders_are_filled_and_html_in_a_file_stays_text(
    config: AlertsConfig, tmp_path: Path
) -> None:
    folder = tmp_path / "guidance"
    shutil.copytree(config.guidance_dir, folder)
    (folder / "praise.md").write_text("# Praise\n\nCall {{ advice_line }}. <script>alert(1)</script>\n")
    html = load_guidance(folder, "Org", "0800 1").get("praise")
    assert html is not None
    assert "Call 0800 1." in html.html and "<script>" not in html.html and "&lt;script&gt;" in html.html


def test_an_unknown_placeholder_is_a_clear_error(config: AlertsConfig, tmp_path: Path) -> None:
    folder = tmp_path / "guidance"
    shutil.copytree(config.guidance_dir, folder)
    (folder / "general.md").write_text("# General\n\nCall {{ advise_line }}.\n")
    with pytest.raises(SettingsError, match=r"guidance file .*general\.md: 'advise_line' is undefined"):
        load_guidance(folder, "Org", "0800 1")


def test_an_edited_file_is_used_without_a_restart(config: AlertsConfig, tmp_path: Path) -> None:
    folder = tmp_path / "guidance"
    shutil.copytree(config.guidance_dir, folder)
    assert load_guidance(folder, "Org", "1")["praise"].title == "If a post praises you or the practice"
    (folder / "praise.md").write_text("# Kind words\n\nSay thank you.\n")
    assert load_guidance(folder, "Org", "1")["praise"].title == "Kind words"


def test_a_broken_edit_keeps_the_last_good_guidance_and_says_why(
    config: AlertsConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "guidance"
    shutil.copytree(config.guidance_dir, folder)
    assert load_guidance(folder, "Org", "1")["threat"].title == "If a post may be a threat"
    (folder / "threat.md").write_text("# Threats\n\nCall {{ advise_line }}.\n")
    assert load_guidance(folder, "Org", "1")["threat"].title == "If a post may be a threat"
    assert "threat.md: 'advise_line' is undefined" in caplog.text
    with pytest.raises(SettingsError, match=r"threat\.md: 'advise_line' is undefined"):
        read_guidance(folder, "Org", "1")  # what start-up checks: no fallback there
    (folder / "threat.md").unlink()
    with pytest.raises(SettingsError, match=r"guidance file .*threat\.md: No such file"):
        read_guidance(folder, "Org", "1")


def test_guidance_comes_most_serious_first_then_the_general_advice() -> None:
    assert topics_for({"praise", "threat", "critical"}) == ["threat", "critical", "praise", "general"]
    assert topics_for(set()) == ["general"]
