from __future__ import annotations

import re
from pathlib import Path

import pytest

from vigil.paths import resource_dir
from vigil.settings import (
    Secret,
    SettingsError,
    load_settings,
    read_declarations,
    reference_markdown,
)

README = resource_dir("config").parent / "README.md"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_it_reads_every_default_from_the_declarations() -> None:
    settings = load_settings(environ={})
    assert settings.database.url == "sqlite:///var/vigil.db"
    assert settings.log.level == "INFO"
    assert all(settings.origins[path] == "default" for path in settings.declarations)


def test_a_user_file_overrides_the_defaults(tmp_path: Path) -> None:
    config = write(tmp_path, '[log]\nlevel = "DEBUG"\n')
    settings = load_settings(config, environ={})
    assert settings.log.level == "DEBUG"
    assert settings.origins["log.level"] == str(config)


def test_the_environment_overrides_the_user_file(tmp_path: Path) -> None:
    config = write(tmp_path, '[log]\nlevel = "DEBUG"\n')
    settings = load_settings(config, environ={"VIGIL_LOG__LEVEL": "ERROR"})
    assert settings.log.level == "ERROR"


def test_the_user_file_can_be_named_by_vigil_config(tmp_path: Path) -> None:
    config = write(tmp_path, '[log]\nformat = "json"\n')
    assert load_settings(environ={"VIGIL_CONFIG": str(config)}).log.format == "json"


def test_a_secret_comes_from_the_environment_and_never_shows_itself() -> None:
    settings = load_settings(environ={"VIGIL_DATABASE__PASSWORD": "hunter2"})
    assert settings.database.password.get() == "hunter2"
    assert "hunter2" not in repr(settings.database.password)
    assert "hunter2" not in str(settings.database.password)
    assert "hunter2" not in f"{settings.database.password}"


def test_a_secret_can_be_read_from_a_file_named_in_the_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text("s3cret\n")
    settings = load_settings(environ={"VIGIL_DATABASE__PASSWORD_FILE": str(secret_file)})
    assert settings.database.password == Secret("s3cret")


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="VIGIL_DATABASE__PASSWORD_FILE.*cannot read"):
        load_settings(environ={"VIGIL_DATABASE__PASSWORD_FILE": str(tmp_path / "nope")})


def test_it_refuses_a_secret_written_in_a_file(tmp_path: Path) -> None:
    config = write(tmp_path, '[database]\npassword = "hunter2"\n')
    with pytest.raises(SettingsError) as error:
        load_settings(config, environ={})
    assert "database.password is a secret" in str(error.value)
    assert "VIGIL_DATABASE__PASSWORD" in str(error.value)
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[log]\nlevl = "DEBUG"\n', r"unknown setting log\.levl \(did you mean log\.level\?\)"),
        ('[database]\necho = "maybe"\n', r"database\.echo .*expected true or false, got 'maybe'"),
        ('[database]\nurl = "mysql://x"\n', r"database\.url .*expected a database URL"),
        ('[log]\nlevel = "LOUD"\n', r"log\.level .*expected one of DEBUG, INFO, WARNING, ERROR"),
        ("[log\n", r"is not valid TOML"),
    ],
)
def test_a_bad_value_in_a_file_stops_start_up_naming_the_setting(
    tmp_path: Path, toml: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(write(tmp_path, toml), environ={})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "VIGIL_DATABASE__ECHO",
            "sometimes",
            r"database\.echo \(VIGIL_DATABASE__ECHO\): expected true or false",
        ),
        ("VIGIL_NOPE__THING", "1", r"VIGIL_NOPE__THING names no setting"),
        ("VIGIL_CLASSIFIER__THRESHOLD", "nan", r"classifier\.threshold .*from 0 to 1, got 'nan'"),
        ("VIGIL_COLLECTOR__TIMEOUT_SECONDS", "inf", r"collector\.timeout_seconds .*got 'inf'"),
        ("VIGIL_DIGEST__TIMEZONE", "Europe", r"digest\.timezone .*IANA time zone .*got 'Europe'"),
        (
            "VIGIL_DATABASE__URL",
            "postgresql://u@host:abc/db",
            r"database\.url .*got 'postgresql://u@host:abc/db'",
        ),
        (
            "VIGIL_EMAIL__OPERATOR_ADDRESS",
            "opérateur@vigil.example",
            r"email\.operator_address .*email address",
        ),
        (
            "VIGIL_DATABASE_URL",
            "postgresql://vigil@db/vigil",
            r"^environment variable VIGIL_DATABASE_URL names no setting \(did you mean VIGIL_DATABASE__URL\?\)$",
        ),
        (
            "VIGIL_SOURCES_X_BEARER_TOKEN_FILE",
            "/run/secrets/x",
            r"VIGIL_SOURCES_X_BEARER_TOKEN_FILE names no setting \(did you mean VIGIL_SOURCES__X__BEARER_TOKEN_FILE\?\)",
        ),
        (
            "VIGIL_ALERTS__MAX_AGE_HOURS",
            "99999999999999",
            r"alerts\.max_age_hours .*from 1 to 8760, got '99999999999999'",
        ),
        (  # it was read as a list of any strings, and each poll retried it as a transient failure
            "VIGIL_SOURCES__RSS__FEEDS",
            "https://www.google.com/alerts/feeds/1/2,news.example/rss",
            r"sources\.rss\.feeds \(VIGIL_SOURCES__RSS__FEEDS\): expected a list of URLs such as https://host/path",
        ),
    ],
)
def test_a_bad_environment_variable_stops_start_up_naming_it(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ={name: value})


def test_other_vigil_variables_without_a_double_underscore_are_left_alone() -> None:
    settings = load_settings(
        environ={"VIGIL_TEST_DATABASE_URL": "postgresql://db/test", "VIGIL_HOME": "/opt"}
    )
    assert settings.database.url == "sqlite:///var/vigil.db"


def test_a_bad_database_url_is_shown_without_its_password() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environ={"VIGIL_DATABASE__URL": "mysql://vigil:hunter2@db/vigil"})
    assert "'mysql://vigil:********@db/vigil'" in str(error.value) and "hunter2" not in str(error.value)


def test_a_number_out_of_its_range_is_named(tmp_path: Path) -> None:
    defaults = tmp_path / "defaults.toml"
    defaults.write_text('[x]\nn = { type = "int", default = 5, min = 1, max = 9, help = "h" }\n')
    assert load_settings(environ={"VIGIL_X__N": "9"}, defaults_file=defaults).x.n == 9
    with pytest.raises(SettingsError, match="x.n .*from 1 to 9, got '0'"):
        load_settings(environ={"VIGIL_X__N": "0"}, defaults_file=defaults)


def test_a_declaration_without_a_default_is_refused(tmp_path: Path) -> None:
    defaults = tmp_path / "defaults.toml"
    defaults.write_text('[x]\nn = { type = "int", help = "h" }\n')
    with pytest.raises(SettingsError, match="declaration of x.n needs a default"):
        load_settings(environ={}, defaults_file=defaults)


def test_every_declared_setting_has_help_and_a_valid_default() -> None:
    for path, declaration in read_declarations().items():
        assert declaration.help.strip(), path
        assert re.fullmatch(r"[a-z0-9_.]+", path), path
    load_settings(environ={})  # parses every default


def test_every_number_setting_has_a_largest_value() -> None:
    """A huge value (a typo, an extra zero) is refused at start-up, not met as an overflow later."""
    unbounded = [
        path
        for path, declaration in read_declarations().items()
        if declaration.type in ("int", "float") and declaration.max is None
    ]
    assert unbounded == []


def test_the_readme_configuration_reference_is_generated_from_the_declarations() -> None:
    readme = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", readme, re.S)
    assert block, "README.md lacks the <!-- settings:start --> ... <!-- settings:end --> block"
    assert block.group(1) == reference_markdown(read_declarations()), (
        "README's configuration reference is stale: run `make docs`"
    )
