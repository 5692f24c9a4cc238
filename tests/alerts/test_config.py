from __future__ import annotations

from pathlib import Path

import pytest

from alerts.config import load_config
from vigil.settings import Settings, SettingsError


def test_the_defaults_route_threats_and_abuse_at_once_and_send_digests_on_monday_morning(
    alert_settings: Settings,
) -> None:
    config = load_config(alert_settings)
    assert config.immediate == {"threat": {"entity", "organisation"}, "abusive": {"entity"}}
    assert config.group_labels == {"abusive"} and config.group_window.total_seconds() == 15 * 60
    assert (config.digest.weekday, str(config.digest.time), str(config.digest.timezone)) == (
        0,
        "08:00:00",
        "Europe/London",
    )
    assert config.email.backend == "file"
    assert (config.guidance_dir / "threat.md").is_file()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alerts__immediate": '{"rude": ["entity"]}'}, "setting alerts.immediate: rude is not a label"),
        (
            {"alerts__immediate": '{"threat": ["police"]}'},
            "setting alerts.immediate.threat: expected a list of",
        ),
        ({"alerts__group_labels": "abusive,spam"}, "setting alerts.group_labels: spam is not a label"),
        (
            {"email__unsubscribe_url": "http://vigil.example/prefs"},
            "email.unsubscribe_url: expected an https://",
        ),
        (
            {"email__backend": "smtp", "email__lease_seconds": 60, "email__smtp_timeout_seconds": 30},
            "email.lease_seconds: 60 s is too short",
        ),
        ({"email__smtp_username": "vigil"}, "email.smtp_password: email.smtp_username is set"),
        (
            {"email__backend": "smtp", "email__smtp_ca_file": "/nonexistent/relay-ca.pem"},
            "setting email.smtp_ca_file: /nonexistent/relay-ca.pem is not a file",
        ),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it(
    alert_settings: Settings, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(alert_settings.with_overrides(**overrides))


def test_a_guidance_folder_missing_a_topic_is_refused(alert_settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "threat.md").write_text("# Threats\n")
    with pytest.raises(SettingsError, match="lacks abusive.md, critical.md, praise.md, general.md"):
        load_config(alert_settings.with_overrides(alerts__guidance_dir=str(tmp_path)))


@pytest.mark.parametrize("host", ["localhost", "smtp.example.org", "192.0.2.25", "::1", "2001:db8::25"])
def test_an_smtp_host_is_a_host_name_or_an_ip_address(alert_settings: Settings, host: str) -> None:
    config = load_config(alert_settings.with_overrides(email__backend="smtp", email__smtp_host=host))
    assert config.email.smtp_host == host


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("smtp.example.org:587", "smtp.example.org:587"),
        ("smtp://smtp.example.org", "smtp://smtp.example.org"),
        ("vigil@smtp.example.org", "********@smtp.example.org"),  # what comes before an @ may be a login
        ("[::1]", "[::1]"),
        ("", ""),
    ],
)
def test_an_smtp_host_with_a_port_or_a_scheme_stops_start_up(
    alert_settings: Settings, host: str, shown: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_config(alert_settings.with_overrides(email__backend="smtp", email__smtp_host=host))
    assert str(error.value) == (
        "setting email.smtp_host: expected a host name or IP address (the port goes in email.smtp_port),"
        f" got {shown!r}"
    )


def test_an_smtp_host_given_with_its_login_is_refused_without_printing_the_password(
    alert_settings: Settings,
) -> None:
    with pytest.raises(SettingsError) as error:
        load_config(alert_settings.with_overrides(
            email__backend="smtp", email__smtp_host="smtps://alerts:Hunter2Secret@smtp.example.com:465"
        ))  # fmt: skip
    assert "Hunter2Secret" not in str(error.value)
    assert str(error.value).endswith("got '********@smtp.example.com:465'")
