"""Settings: declared once in ``config/default.toml``, overridden by a user file, then the environment.

Each declaration is an inline table ``name = { type = ..., default = ..., help = ... }``.
A user file (``--config PATH`` or ``VIGIL_CONFIG``) gives plain values in the same sections;
environment variables override both, named ``VIGIL_`` + the dotted path upper-cased with
``__`` between parts (``VIGIL_DATABASE__URL``). Secrets come only from the environment or from
a file named by ``<NAME>_FILE`` (``VIGIL_SOURCES__X__BEARER_TOKEN_FILE``), never from a
committed file, and they print as ``********``.

Settings are read once, at start-up; any bad value stops start-up with one message naming the
setting and what was expected.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from vigil.errors import VigilError
from vigil.paths import resource_dir

ENV_PREFIX = "VIGIL_"
CONFIG_ENV = "VIGIL_CONFIG"
DECLARATION_KEYS = {"type", "default", "help", "choices", "min", "max"}
_CREDENTIALS = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")  # the password in scheme://user:password@host
# ASCII only: a non-ASCII address cannot go in an email header without SMTPUTF8
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class SettingsError(VigilError):
    """A setting has a bad value, or a settings file cannot be read."""


class Secret:
    """A secret value that never shows itself in logs, reprs or status output."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class Declaration:
    """One setting as declared in ``config/default.toml``."""

    path: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.path.upper().replace(".", "__")

    def expected(self) -> str:
        """Say in words what a value of this setting must look like."""
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        words = {
            "str": "a string",
            "int": "a whole number",
            "float": "a number",
            "bool": "true or false",
            "url": "a URL such as https://host/path",
            "urls": "a list of URLs such as https://host/path",
            "dburl": "a database URL such as sqlite:///var/vigil.db or postgresql+psycopg://host/db",
            "secret": "a secret string",
            "path": "a file or folder path",
            "email": "an email address",
            "emails": "a list of email addresses",
            "list": "a list of strings",
            "map": "a table of names to lists of strings",
            "timezone": "an IANA time zone such as Europe/London",
            "time": "a time of day as HH:MM",
        }
        text = words[self.type]
        if self.min is not None and self.max is not None:
            text += f" from {self.min:g} to {self.max:g}"
        elif self.min is not None:
            text += f" of at least {self.min:g}"
        return text


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError


def _parse_number(kind: type[int] | type[float]) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float) and (kind is float or isinstance(value, int)):
            number = kind(value)
        elif isinstance(value, str):
            number = kind(value.strip())
        else:
            raise ValueError
        if not math.isfinite(number):  # NaN passes every min/max check; inf means nothing here
            raise ValueError
        return number

    return parse


def _parse_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError


def _parse_map(value: Any) -> dict[str, tuple[str, ...]]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError
    return {str(key): _parse_list(items) for key, items in value.items()}


def _parse_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc or " " in value.strip():
        raise ValueError
    return value.strip().rstrip("/")


def _parse_urls(value: Any) -> tuple[str, ...]:
    """Each an http(s) URL, kept as written (a feed's trailing slash may matter)."""
    items = _parse_list(value)
    for item in items:
        _parse_url(item)
    return items


def _parse_dburl(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
        raise ValueError
    try:
        make_url(value)  # a port that is not a number fails here, not at the first connection
    except ArgumentError as exc:
        raise ValueError from exc
    return value


def _parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _parse_email(value: Any) -> str:
    if not isinstance(value, str) or (value and not EMAIL.match(value)):
        raise ValueError
    return value


def _parse_emails(value: Any) -> tuple[str, ...]:
    items = _parse_list(value)
    if not all(EMAIL.match(item) for item in items):
        raise ValueError
    return items


def _parse_timezone(value: Any) -> str:
    try:
        ZoneInfo(_parse_str(value))
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe" is a folder: IsADirectoryError
        raise ValueError from exc
    return str(value)


def _parse_time(value: Any) -> str:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", _parse_str(value).strip())
    if not match:
        raise ValueError
    return match.group(0)


PARSERS: dict[str, Callable[[Any], Any]] = {
    "str": _parse_str,
    "int": _parse_number(int),
    "float": _parse_number(float),
    "bool": _parse_bool,
    "url": _parse_url,
    "urls": _parse_urls,
    "dburl": _parse_dburl,
    "secret": lambda value: Secret(_parse_str(value).strip()),
    "path": lambda value: Path(_parse_str(value)),
    "email": _parse_email,
    "emails": _parse_emails,
    "list": _parse_list,
    "map": _parse_map,
    "timezone": _parse_timezone,
    "time": _parse_time,
    "choice": _parse_str,
}


def parse_value(declaration: Declaration, value: Any, where: str) -> Any:
    """Turn a raw value into the declared type, or fail naming the setting and where it came from."""
    try:
        parsed = PARSERS[declaration.type](value)
    except (ValueError, TypeError, json.JSONDecodeError):
        parsed = None
        ok = False
    else:
        ok = True
    if ok and declaration.type == "choice":
        ok = parsed in declaration.choices
    if ok and isinstance(parsed, int | float) and not isinstance(parsed, bool):
        too_low = declaration.min is not None and parsed < declaration.min
        too_high = declaration.max is not None and parsed > declaration.max
        ok = not (too_low or too_high)
    if not ok:
        shown = "********" if declaration.type == "secret" else _CREDENTIALS.sub(r"\1********@", repr(value))
        raise SettingsError(
            f"setting {declaration.path} ({where}): expected {declaration.expected()}, got {shown}"
        )
    return parsed


def read_declarations(path: Path | None = None) -> dict[str, Declaration]:
    """Read every declared setting from the defaults file, in file order."""
    path = path or resource_dir("config") / "default.toml"
    data = _read_toml(path)
    declarations: dict[str, Declaration] = {}
    for dotted, table in _walk_declarations(data):
        unknown = set(table) - DECLARATION_KEYS
        if unknown or "help" not in table or table.get("type") not in PARSERS:
            raise SettingsError(f"{path}: declaration of {dotted} is malformed ({sorted(table)})")
        declaration = Declaration(
            path=dotted,
            type=table["type"],
            default=table.get("default"),
            help=table["help"],
            choices=tuple(table.get("choices", ())),
            min=table.get("min"),
            max=table.get("max"),
        )
        if declaration.type == "secret" and declaration.default:
            raise SettingsError(f"{path}: secret {dotted} must not have a default")
        if declaration.default is None and declaration.type not in _EMPTY_DEFAULTS:
            raise SettingsError(f"{path}: declaration of {dotted} needs a default")
        declarations[dotted] = declaration
    return declarations


def _walk_declarations(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, dict]]:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and "help" in value and "type" in value:
            yield dotted, value
        elif isinstance(value, dict):
            yield from _walk_declarations(value, dotted + ".")
        else:
            raise SettingsError(f"default.toml: {dotted} is a value, not a declaration")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise SettingsError(f"settings file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from exc


def _flatten(data: Mapping[str, Any], leaves: set[str], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted path, value) pairs; tables named in ``leaves`` are values, not sections."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted not in leaves:
            yield from _flatten(value, leaves, dotted + ".")
        else:
            yield dotted, value


class Section:
    """Read-only attribute access to one level of the settings tree (``settings.database.url``)."""

    def __init__(self, values: Mapping[str, Any], prefix: str = "") -> None:
        self._values = values
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        dotted = self._prefix + name
        if dotted in self._values:
            return self._values[dotted]
        if any(key.startswith(dotted + ".") for key in self._values):
            return Section(self._values, dotted + ".")
        raise AttributeError(f"no setting {dotted}")

    def get(self, dotted: str) -> Any:
        return self._values[self._prefix + dotted]


class Settings(Section):
    """Every setting's effective value, read once at start-up."""

    def __init__(
        self,
        values: Mapping[str, Any],
        declarations: Mapping[str, Declaration],
        origins: Mapping[str, str],
    ) -> None:
        super().__init__(dict(values))
        self.declarations = dict(declarations)
        self.origins = dict(origins)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self._values.items())

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some values replaced (dotted paths with ``__`` for dots); for tests and tools."""
        values = dict(self._values)
        for key, value in overrides.items():
            dotted = key.replace("__", ".")
            values[dotted] = parse_value(self.declarations[dotted], value, "override")
        return Settings(values, self.declarations, self.origins)


def load_settings(
    config_file: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    defaults_file: Path | None = None,
) -> Settings:
    """Read defaults, then the user file, then the environment; validate everything once."""
    environ = os.environ if environ is None else environ
    declarations = read_declarations(defaults_file)

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for path, declaration in declarations.items():
        values[path] = parse_value(declaration, _default_for(declaration), "default.toml")
        origins[path] = "default"

    config_file = config_file or environ.get(CONFIG_ENV) or None
    if config_file:
        _apply_user_file(Path(config_file), declarations, values, origins)
    _apply_environment(environ, declarations, values, origins)
    return Settings(values, declarations, origins)


_EMPTY_DEFAULTS: dict[str, Any] = {"list": [], "emails": [], "urls": [], "map": {}, "secret": "", "str": ""}


def _default_for(declaration: Declaration) -> Any:
    if declaration.default is not None:
        return declaration.default
    return _EMPTY_DEFAULTS[declaration.type]


def _apply_user_file(
    path: Path,
    declarations: Mapping[str, Declaration],
    values: dict[str, Any],
    origins: dict[str, str],
) -> None:
    maps = {dotted for dotted, declaration in declarations.items() if declaration.type == "map"}
    for dotted, raw in _flatten(_read_toml(path), maps):
        declaration = declarations.get(dotted)
        if declaration is None:
            raise SettingsError(f"{path}: unknown setting {dotted}{_suggest(dotted, declarations)}")
        if declaration.type == "secret":
            raise SettingsError(
                f"{path}: {dotted} is a secret; set it in the environment as "
                f"{declaration.env_name} or {declaration.env_name}_FILE, not in a file"
            )
        values[dotted] = parse_value(declaration, raw, str(path))
        origins[dotted] = str(path)


def _apply_environment(
    environ: Mapping[str, str],
    declarations: Mapping[str, Declaration],
    values: dict[str, Any],
    origins: dict[str, str],
) -> None:
    by_env = {declaration.env_name: declaration for declaration in declarations.values()}
    near_misses = _single_underscore_names(by_env)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        if "__" not in name:
            if name in near_misses:
                meant = near_misses[name]
                raise SettingsError(f"environment variable {name} names no setting (did you mean {meant}?)")
            continue
        declaration = by_env.get(name)
        if declaration is None and name.endswith("_FILE"):
            declaration = by_env.get(name.removesuffix("_FILE"))
            if declaration is not None and declaration.type == "secret":
                raw = _read_secret_file(name, raw)
            else:
                declaration = None
        if declaration is None:
            raise SettingsError(f"environment variable {name} names no setting")
        values[declaration.path] = parse_value(declaration, raw, name)
        origins[declaration.path] = "environment"


def _single_underscore_names(by_env: Mapping[str, Declaration]) -> dict[str, str]:
    """Each setting's variable written with single underscores (VIGIL_DATABASE_URL), and the one
    meant: variables without ``__`` are otherwise ignored, so this slip would go unnoticed."""
    secret_files = [f"{env}_FILE" for env, declaration in by_env.items() if declaration.type == "secret"]
    return {re.sub(r"_+", "_", name): name for name in [*by_env, *secret_files]}


def _read_secret_file(name: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read the secret file {path}: {exc.strerror}") from exc


def _suggest(dotted: str, declarations: Mapping[str, Declaration]) -> str:
    import difflib

    close = difflib.get_close_matches(dotted, list(declarations), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def display_value(declaration: Declaration, value: Any) -> str:
    """Show a value for humans; secrets are masked and database passwords hidden."""
    if declaration.type == "secret":
        return "********" if value else "(not set)"
    if declaration.type == "dburl":
        return make_url(value).render_as_string(hide_password=True)
    if isinstance(value, tuple):
        return ", ".join(value) or "(none)"
    if isinstance(value, dict):
        return json.dumps({key: list(items) for key, items in value.items()}) if value else "{}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def reference_markdown(declarations: Mapping[str, Declaration]) -> str:
    """The README's configuration reference, generated from the declarations."""
    lines = [
        "| Setting | Environment variable | Type | Default | What it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for declaration in declarations.values():
        if declaration.type == "secret":
            default = "none (secret: environment or `_FILE` only)"
        else:
            value = parse_value(declaration, _default_for(declaration), "default.toml")
            default = f"`{display_value(declaration, value)}`" if value not in ("", ()) else ""
        kind = declaration.type
        if declaration.choices:
            kind += " (" + " / ".join(declaration.choices) + ")"
        cells = [
            f"`{declaration.path}`",
            f"`{declaration.env_name}`",
            kind,
            default,
            declaration.help.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
