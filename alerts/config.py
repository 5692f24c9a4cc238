"""The alerts settings, checked together once at start-up and handed around as typed values.

``vigil.settings`` checks each value on its own; what is checked here is what only makes sense
for alerts: that routed labels exist, that audiences are known, that an unsubscribe URL is https,
that a claim lease outlives an SMTP timeout, that the SMTP host is a host alone (no port) and its
CA file exists, and that every guidance file is present.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from vigil.labels import LABELS
from vigil.paths import resource_dir
from vigil.settings import Secret, Settings, SettingsError

AUDIENCES = ("entity", "organisation")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
GUIDANCE_TOPICS = (*LABELS, "general")


@dataclass(frozen=True)
class EmailConfig:
    backend: str
    from_address: str
    from_name: str
    operator_address: str
    unsubscribe_url: str
    unsubscribe_mailto: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    smtp_password: Secret
    smtp_ca_file: str
    smtp_timeout: float
    outbox_dir: Path
    batch_size: int
    max_attempts: int
    retry_initial: float
    retry_max: float
    lease: timedelta

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2]


@dataclass(frozen=True)
class DigestConfig:
    weekday: int  # Monday is 0, as in datetime.weekday()
    time: time
    timezone: ZoneInfo
    send_quiet_weeks: bool
    trend_weeks: int
    top_items: int
    file_rows: int


@dataclass(frozen=True)
class AlertsConfig:
    immediate: dict[str, frozenset[str]]
    group_labels: frozenset[str]
    group_window: timedelta
    max_age: timedelta
    threat_max_age: timedelta
    guidance_dir: Path
    organisation_name: str
    advice_line: str
    email: EmailConfig
    digest: DigestConfig


def load_config(settings: Settings) -> AlertsConfig:
    """Read and cross-check every alerts, email and digest setting; raise SettingsError if any is wrong."""
    return AlertsConfig(
        immediate=_immediate(settings.alerts.immediate),
        group_labels=_labels("alerts.group_labels", settings.alerts.group_labels),
        group_window=timedelta(minutes=settings.alerts.group_window_minutes),
        max_age=timedelta(hours=settings.alerts.max_age_hours),
        threat_max_age=timedelta(hours=settings.alerts.threat_max_age_hours),
        guidance_dir=_guidance_dir(settings.alerts.guidance_dir),
        organisation_name=settings.organisation.name,
        advice_line=settings.organisation.advice_line,
        email=_email(settings),
        digest=_digest(settings),
    )


def _labels(name: str, values: tuple[str, ...]) -> frozenset[str]:
    unknown = sorted(set(values) - set(LABELS))
    if unknown:
        raise SettingsError(f"setting {name}: {', '.join(unknown)} is not a label ({', '.join(LABELS)})")
    return frozenset(values)


def _immediate(table: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    _labels("alerts.immediate", tuple(table))
    for label, audiences in table.items():
        unknown = sorted(set(audiences) - set(AUDIENCES))
        if unknown or not audiences:
            raise SettingsError(
                f"setting alerts.immediate.{label}: expected a list of {' and/or '.join(AUDIENCES)},"
                f" got {list(audiences)!r}"
            )
    return {label: frozenset(audiences) for label, audiences in table.items()}


def _guidance_dir(value: str) -> Path:
    folder = Path(value) if value else resource_dir("config") / "guidance"
    missing = [f"{topic}.md" for topic in GUIDANCE_TOPICS if not (folder / f"{topic}.md").is_file()]
    if missing:
        raise SettingsError(f"setting alerts.guidance_dir: {folder} lacks {', '.join(missing)}")
    return folder


def _smtp_server(host: str, ca_file: str) -> None:
    """A port or URL in the host name, or a missing CA file, would only show at the first send,
    as a failure to connect that is retried for a day."""
    if not _is_host(host):
        raise SettingsError(
            "setting email.smtp_host: expected a host name or IP address (the port goes in"
            f" email.smtp_port), got {re.sub(r'^.*@', '********@', host)!r}"
        )
    if ca_file and not Path(ca_file).is_file():
        raise SettingsError(f"setting email.smtp_ca_file: {ca_file} is not a file")


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)  # an IPv6 address has colons of its own
        return True
    except ValueError:
        return bool(host) and not re.search(r"[\s:/@]", host)


def _email(settings: Settings) -> EmailConfig:
    email = settings.email
    url = email.unsubscribe_url.strip()
    if url and (urlsplit(url).scheme != "https" or not urlsplit(url).netloc or re.search(r"[\s<>,\"]", url)):
        raise SettingsError(f"setting email.unsubscribe_url: expected an https:// URL, got {url!r}")
    if email.backend == "smtp" and email.lease_seconds < 4 * email.smtp_timeout_seconds:
        raise SettingsError(
            f"setting email.lease_seconds: {email.lease_seconds} s is too short for"
            f" email.smtp_timeout_seconds = {email.smtp_timeout_seconds} s (needs at least 4 times it),"
            " or a slow send could be taken over and sent twice"
        )
    if email.backend == "smtp":
        _smtp_server(email.smtp_host, email.smtp_ca_file)
    if email.smtp_username and not email.smtp_password:
        raise SettingsError("setting email.smtp_password: email.smtp_username is set but the password is not")
    return EmailConfig(
        backend=email.backend,
        from_address=email.from_address,
        from_name=email.from_name,
        operator_address=email.operator_address,
        unsubscribe_url=url,
        unsubscribe_mailto=email.unsubscribe_mailto or email.from_address,
        smtp_host=email.smtp_host,
        smtp_port=email.smtp_port,
        smtp_security=email.smtp_security,
        smtp_username=email.smtp_username,
        smtp_password=email.smtp_password,
        smtp_ca_file=email.smtp_ca_file,
        smtp_timeout=float(email.smtp_timeout_seconds),
        outbox_dir=email.outbox_dir,
        batch_size=email.batch_size,
        max_attempts=email.max_attempts,
        retry_initial=float(email.retry_initial_seconds),
        retry_max=float(max(email.retry_max_seconds, email.retry_initial_seconds)),
        lease=timedelta(seconds=email.lease_seconds),
    )


def _digest(settings: Settings) -> DigestConfig:
    digest = settings.digest
    hours, minutes = (int(part) for part in digest.time.split(":"))
    return DigestConfig(
        weekday=WEEKDAYS.index(digest.day),
        time=time(hours, minutes),
        timezone=ZoneInfo(digest.timezone),
        send_quiet_weeks=digest.quiet_week == "send",
        trend_weeks=digest.trend_weeks,
        top_items=digest.top_items,
        file_rows=digest.file_rows,
    )
