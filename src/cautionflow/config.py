"""A landlord's deployment, described by one YAML file and validated on load.

Relative paths (and relative SQLite URLs) are resolved against the project home: the
`CAUTIONFLOW_HOME` environment variable, or the current directory. Secrets never live in the
file: the SMTP password comes from the environment variable it names, or from Airflow.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_SOURCE_QUERY = "SELECT * FROM caution_alerts_export"
DEFAULT_TIMEZONE = "Europe/London"  # a UK landlord's; `timezone` in the config file changes it
CONFIG_ENV = "CAUTIONFLOW_CONFIG"  # the config file's path: the command line's default, the register page's
REGISTER_URL_ENV = "CAUTIONFLOW_REGISTER_URL"  # when set, overrides the file's register_url
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")  # date.weekday() order


class ConfigError(Exception):
    """The configuration file is missing or invalid; the message names the field."""


# `s3://bucket/prefix`, `gs://...`, `file:///abs/path`: any `scheme://` is an object storage URL
# (Airflow's ObjectStoragePath); anything else is a local path. A Windows drive letter is no scheme.
_STORAGE_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://(.*)", re.DOTALL)


def storage_scheme(value: str) -> str | None:
    """The URL scheme of an output folder setting (`s3`, `file`, ...), or None for a local path."""
    match = _STORAGE_URL.fullmatch(value.strip())
    return match[1].lower() if match else None


def is_object_store(value: str) -> bool:
    """An output folder on an object store (any scheme but `file`): every machine reaches it alike."""
    return storage_scheme(value) not in (None, "file")


def shown_path(path: object) -> str:
    """A file's place as people read it (summaries, messages): a local file's path, as before object
    storage; an object's URL without the Airflow connection's id (`s3://bucket/key`)."""
    protocol = getattr(path, "protocol", None)
    if protocol is None:
        return str(path)
    where = str(getattr(path, "path", path))
    return where if protocol in ("file", "local", "") else f"{protocol}://{where}"


def output_folder(value: str) -> str:
    """An output folder setting: a local path, or a URL that names a place (`s3://` alone does not,
    and a `file://` URL must be absolute, there being no home to resolve it against)."""
    value = value.strip()
    if not value:
        raise ValueError("an empty folder: give a local path or a URL such as s3://bucket/prefix")
    scheme = storage_scheme(value)
    if scheme is None:
        return value
    rest = _STORAGE_URL.fullmatch(value)[2]  # type: ignore[index]
    if scheme == "file":
        if not rest.startswith("/") or not rest.strip("/"):
            raise ValueError(f"{value!r}: a file URL names an absolute folder (file:///srv/cautionflow/letters)")
    elif not rest.split("/", 1)[0]:
        raise ValueError(f"{value!r}: the URL names no bucket (s3://bucket/prefix)")
    if ".." in rest.split("/"):
        raise ValueError(f"{value!r}: '..' is not allowed in a storage URL")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Model):
    url: str = Field(min_length=1, description="SQLAlchemy URL of the housing database (read-only use)")
    query: str | None = Field(
        default=None, description="path to a .sql file returning the source contract's columns"
    )


class EqualityConfig(_Model):
    """Equality monitoring (Hexagon Appendix 1, Teign 11): aggregate counts from the housing database."""

    query: str = Field(
        min_length=1,
        description="path to a .sql file returning characteristic, group_label, households, flagged_households",
    )
    url: str | None = Field(default=None, description="SQLAlchemy URL to run it on; default source.url")
    period: Literal["monthly", "quarterly", "annual"] = "quarterly"


class SmtpConfig(_Model):
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = "CAUTIONFLOW_SMTP_PASSWORD"
    sender: str = Field(min_length=3)
    allow_insecure: bool = Field(default=False, description="permit security: none to a non-loopback host")
    timeout_seconds: float = Field(default=30, gt=0)
    # RFC 5321 4.5.3.2.6: a server may take 10 minutes to answer the end of a message (it is
    # storing it). Giving up sooner, then sending again, is how one digest became five copies.
    data_timeout_seconds: float = Field(default=600, gt=0, le=3600)
    max_concurrency: int = Field(default=4, ge=1, le=64)
    # The provider's sending limit, shared by all `max_concurrency` connections (Exchange Online: 30
    # messages a minute per mailbox; beyond it the server answers 4.7.x and may block the mailbox).
    # None: no limit, what a council's own relay usually needs.
    max_messages_per_minute: int | None = Field(default=None, ge=1, strict=True)

    @model_validator(mode="after")
    def _insecure_only_on_loopback(self) -> SmtpConfig:
        if self.security == "none" and not self.allow_insecure and not _is_loopback(self.host):
            raise ValueError(
                f"security 'none' sends in clear text; allowed only to a loopback host, not '{self.host}' "
                "(set allow_insecure: true to override)"
            )
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# One plain ASCII addr-spec (no display name, no list, no comment): what a recipient's or the appeals
# email must be, since a message built from it must go to exactly one mailbox.
EMAIL_ADDRESS = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"


class Recipient(_Model):
    name: str = Field(min_length=1)
    # One plain ASCII addr-spec: no display name, comma, quote or bracket that could make the header
    # built from it name a second mailbox (mail.safe_address refuses those at send time; refused here,
    # a mistyped address fails the config's load, not a digest run).
    email: str = Field(pattern=f"^{EMAIL_ADDRESS}$")
    # `appeals`: the senior officer who answers residents' appeals (Teign 9's Head of Service, Wandle
    # 3.10's director, Dover 6.35's manager) gets the open appeals on their `weekday`, daily once one
    # is overdue (domain/appeals.py).
    role: Literal["contractor", "out_of_hours", "officer", "operations", "appeals"]
    areas: tuple[str, ...] = ()
    schedule: Literal["daily", "weekly"] = "daily"
    # One day or a list of days (`weekday: [monday, thursday]`), kept as a tuple so every reader
    # asks the same question: is this date's weekday in it? An officer may want the review
    # reminder on several days, and the demo, which runs on any day, names all seven.
    weekday: tuple[str, ...] | None = None

    @field_validator("weekday", mode="before")
    @classmethod
    def _weekdays(cls, value: object) -> tuple[str, ...] | None:
        if value is None:
            return None
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not names:
            raise ValueError(f"must be a day of the week or a list of them, e.g. monday or [monday, thursday]; not {value!r}")
        days = []
        for name in names:
            day = name.strip().lower() if isinstance(name, str) else name
            if day not in WEEKDAYS:
                raise ValueError(f"{name!r} is not a day of the week ({', '.join(WEEKDAYS)})")
            if day not in days:
                days.append(day)
        return tuple(days)

    def on(self, day: date) -> bool:
        """Is `day` one of this recipient's weekdays (False when none is named)?"""
        return self.weekday is not None and WEEKDAYS[day.weekday()] in self.weekday

    @field_validator("areas")
    @classmethod
    def _upper_areas(cls, areas: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(a.strip().upper() for a in areas)

    @model_validator(mode="after")
    def _role_rules(self) -> Recipient:
        if self.role == "contractor" and not self.areas:
            raise ValueError("a contractor must list the areas it works in (areas: [...])")
        if self.schedule == "weekly" and self.weekday is None:
            raise ValueError("a weekly schedule needs a weekday")
        return self


# The letters' Reply-To is built from the appeals email: one address, by Recipient.email's rule.
_ONE_ADDRESS = re.compile(EMAIL_ADDRESS)
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]*[0-9]")
# A line of the contact block: what fits page 1's right-hand column (and an envelope) at 11 pt.
ADDRESS_LINE_MAX = 60
# The image formats fpdf2 embeds as they are, by their first bytes (checked when the config loads).
LETTERHEAD_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
LETTERS_CONTACT_REQUIRED = (
    "letters.contact: required: the landlord's address, phone and appeals contact printed on every letter"
)


class LettersContact(_Model):
    """The landlord's contact block, printed on every letter: the return address and phone top right
    of page 1, how to reach the people who answer (Dover 6.34 names an appeal email and a postal
    address; Wandle 3.10: the resident is told how to submit an appeal), and who signs. The appeals
    email is also the emailed letters' Reply-To: a mailbox people read, never the SMTP sender."""

    address: tuple[str, ...] = Field(description="the postal address, one line each (the organisation's name is printed above it)")
    phone: str = Field(description="the phone number residents call, e.g. 01632 960123")
    appeals_email: str = Field(description="where appeals and replies go; the emailed letters' Reply-To")
    appeals_address: tuple[str, ...] = Field(default=(), description="where appeals are posted; default: address")
    signed_by: str = Field(min_length=1, max_length=ADDRESS_LINE_MAX, description="the officer or team who signs")
    signed_title: str = Field(min_length=1, max_length=ADDRESS_LINE_MAX, description="their title, or the team's name")
    letterhead: str | None = Field(default=None, description="a PNG or JPEG drawn at the top of page 1")

    @model_validator(mode="before")
    @classmethod
    def _appeals_address_defaults_to_address(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("appeals_address"):
            return {**data, "appeals_address": data.get("address")}
        return data

    @field_validator("address", "appeals_address", mode="before")
    @classmethod
    def _lines(cls, value: object) -> object:
        if isinstance(value, str):  # one YAML block scalar, a line each
            value = value.splitlines()
        if not isinstance(value, list | tuple):
            return value  # pydantic names the type it wanted
        if not all(isinstance(line, str) for line in value):
            raise ValueError("each line must be text")
        lines = [" ".join(line.split()) for line in value if line.strip()]
        if not lines:
            raise ValueError("must have at least one line, e.g. [1 Harbour Way, Westford, WF1 1AA]")
        if len(lines) > 8:
            raise ValueError(f"has {len(lines)} lines; at most 8 fit the letter's return address")
        too_long = next((line for line in lines if len(line) > ADDRESS_LINE_MAX), None)
        if too_long is not None:
            raise ValueError(f"a line is longer than {ADDRESS_LINE_MAX} characters: {too_long!r}")
        return tuple(lines)

    @field_validator("appeals_email")
    @classmethod
    def _one_address(cls, value: str) -> str:
        if not _ONE_ADDRESS.fullmatch(value.strip()):
            raise ValueError(f"not one email address (a bare address such as appeals@example.org): {value!r}")
        return value.strip()

    @field_validator("phone")
    @classmethod
    def _phone_number(cls, value: str) -> str:
        return phone_number(value)


def phone_number(value: str) -> str:
    """A phone number people dial, spaces tidied: digits, spaces, + ( ) -, at least six digits."""
    value = " ".join(value.split())
    if not _PHONE.fullmatch(value) or sum(c.isdigit() for c in value) < 6 or len(value) > 30:
        raise ValueError(f"not a phone number (digits, spaces, + ( ) -; e.g. 01632 960123): {value!r}")
    return value


class LettersConfig(_Model):
    output_dir: str = Field(
        default="var/letters", description="a local folder (relative to the project home) or a URL (s3://bucket/letters)"
    )
    auto_approve: bool = False
    # Optional in the model, required by the loader once there is a letters section (`_check_letters`),
    # so that its absence is the one line LETTERS_CONTACT_REQUIRED rather than pydantic's wording.
    contact: LettersContact | None = None

    @field_validator("output_dir")
    @classmethod
    def _output_folder(cls, value: str) -> str:
        return output_folder(value)


class DutyContact(_Model):
    """Who staff and contractors call when an instruction cannot be followed or is missing, day and
    night (a "do not visit" that needs a manager's approval at 2 a.m.): shown in every digest and
    urgent notice, and in place of a missing contact instruction."""

    name: str = Field(min_length=1, max_length=80, description="who answers, e.g. Duty housing manager (24 hours)")
    phone: str = Field(description="the number to call, e.g. 01632 960999")

    @field_validator("phone")
    @classmethod
    def _phone_number(cls, value: str) -> str:
        return phone_number(value)


class DigestsConfig(_Model):
    duty_contact: DutyContact | None = Field(
        default=None, description="the landlord's duty contact, shown in every digest and urgent notice"
    )
    # Karbon 7.3 tells call handlers of every flag; contractors are given where and what to do
    # (Karbon 7.1-7.2, Dover 6.31). A contact instruction can name an officer or an arrangement
    # agreed with the resident, so contractors see it only when the landlord says so.
    contractors_see_instructions: bool = Field(
        default=False, description="show the alerts' contact instructions to contractors too"
    )


# Codes whose arrival (or an escalation to one) is sent at once as an urgent notice.
DEFAULT_URGENT_CODES = ("DNV", "WPN", "AGY")


class UrgentConfig(_Model):
    """Urgent notices (the `cautionflow_urgent` DAG, `cautionflow run urgent`): an alert of one of
    these codes added, or an alert escalated to one, is sent to the contractors of its area and to
    the out-of-hours recipients within the run that finds it (Dover 6.23: a threatened person is
    warned at once)."""

    codes: tuple[str, ...] = Field(default=DEFAULT_URGENT_CODES, description="canonical alert codes")

    @field_validator("codes", mode="before")
    @classmethod
    def _canonical_codes(cls, value: object) -> object:
        from cautionflow.domain.codes import ALERT_CODES

        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value  # pydantic names the type it wanted
        codes = tuple(str(code).strip().upper() for code in value)
        unknown = [code for code in codes if code not in ALERT_CODES]
        if unknown:
            # Worded as the other validators' ("'fri' is not a day of the week (...)"): the value
            # as written, then what is allowed.
            named = ", ".join(repr(str(value[codes.index(code)])) for code in unknown)
            what = "is not a canonical alert code" if len(unknown) == 1 else "are not canonical alert codes"
            raise ValueError(f"{named} {what} ({', '.join(ALERT_CODES)})")
        return tuple(dict.fromkeys(codes))


class LookupConfig(_Model):
    """The look-up API's abuse limit for contractors' and call centres' systems (README, "Look-ups")."""

    rate_limit_per_minute: int = Field(
        default=60, ge=1, le=10_000,
        description="requests one API token may make in any 60 s, per api-server worker process; beyond it, 429",
    )


class OperationsConfig(_Model):
    daily_summary: bool = Field(
        default=False, description="email the operations recipients a counts-only run summary once a day"
    )
    # The urgent DAG runs every 15 minutes, day and night: while the register is unreachable it
    # fails on every run, and a notice a run (96 a day) would bury the one that matters. A task's
    # failure is told at once when its previous run did not fail, then once a window while it goes on.
    failure_notice_repeat_hours: int = Field(
        default=4, ge=1, le=168,
        description="while a task fails run after run, its failure notice is repeated at most once in "
        "this many hours (the first failure after a run that did not fail is always told at once)",
    )


class MailConfig(_Model):
    # A digest from a register that is missing, never synced or days old tells contractors that
    # warnings were lifted or that there are none: safety first (policies README, Principles), so
    # mail waits for a recent sync instead. 36 hours lets a daily sync run late once.
    max_sync_age_hours: float = Field(
        default=36, gt=0, le=168,
        description="digests, review reminders and the daily summary are refused when the register's "
        "last completed sync finished longer ago than this",
    )


class SyncConfig(_Model):
    """The sync's mass-end guard (README, "The register and the sync"): a sync that would end, or take
    out of every contractor's view, more than `mass_end_share` of the active alerts and more than
    `mass_end_minimum` of them is refused unless an officer confirms it (--allow-mass-end)."""

    mass_end_share: float = Field(default=0.10, ge=0, le=1, description="a share of the active alerts, 0 to 1")
    mass_end_minimum: int = Field(default=5, ge=0, description="alerts that may always end in one sync")


class CautionflowConfig(_Model):
    organisation: str = Field(min_length=1)
    policy: str = Field(min_length=1, description="a shipped profile name or a path to a profile file")
    register_url: str = Field(min_length=1)
    source: SourceConfig
    smtp: SmtpConfig | None = None
    recipients: tuple[Recipient, ...] = ()
    letters: LettersConfig | None = Field(
        default=None, description="resident letters; without this section the letters step queues nothing"
    )
    operations: OperationsConfig = OperationsConfig()
    digests: DigestsConfig = DigestsConfig()
    urgent: UrgentConfig = UrgentConfig()
    lookup: LookupConfig = LookupConfig()
    sync: SyncConfig = SyncConfig()
    mail: MailConfig = MailConfig()
    output_dir: str = Field(
        default="var/reports",
        description="where reports are written: a local folder (relative to the project home) or a URL (s3://bucket/reports)",
    )
    storage_conn_id: str | None = Field(
        default=None, min_length=1,
        description="the Airflow connection for output folders given as URLs (default: the scheme's own, e.g. aws_default)",
    )
    # Read only on a distributed executor (cautionflow.deployment_shape): a path cannot be told to
    # be shared by looking at it, so the operator says so.
    shared_storage: bool = Field(
        default=False,
        description="output_dir and letters.output_dir are mounted on storage every Airflow worker shares "
        "(NFS, EFS, ...); required with CeleryExecutor or KubernetesExecutor",
    )
    timezone: str = DEFAULT_TIMEZONE
    templates_dir: str | None = Field(default=None, description="a folder of template overrides")
    equality: EqualityConfig | None = Field(default=None, description="optional equality monitoring")
    home: Annotated[str | None, Field(description="resolved project home; set by the loader")] = None

    @field_validator("timezone")
    @classmethod
    def _real_time_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not a time zone (an IANA name such as Europe/London)") from None
        return value

    @field_validator("output_dir")
    @classmethod
    def _output_folder(cls, value: str) -> str:
        return output_folder(value)

    def path(self, relative: str) -> Path:
        """A configured path resolved against the project home."""
        p = Path(relative)
        return p if p.is_absolute() else Path(self.home or ".") / p

    def letters_output_dir(self) -> str:
        """The `letters.output_dir` setting, or its default without a letters section (retention still
        clears the files of letters queued while the config had one)."""
        return (self.letters or LettersConfig()).output_dir

    def source_query(self) -> str:
        if self.source.query is None:
            return DEFAULT_SOURCE_QUERY
        return self._read_sql("source.query", self.source.query)

    def equality_query(self) -> str:
        if self.equality is None:
            raise ConfigError("equality: the config has no equality section (query, url, period)")
        return self._read_sql("equality.query", self.equality.query)

    def _read_sql(self, field: str, relative: str) -> str:
        path = self.path(relative)
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{field}: cannot read '{path}': {exc.strerror}") from exc

    def equality_url(self) -> str:
        return (self.equality.url if self.equality and self.equality.url else None) or self.source.url


def project_home() -> Path:
    return Path(os.environ.get("CAUTIONFLOW_HOME") or os.getcwd()).resolve()


def resolve_url(url: str, home: Path) -> str:
    """Make a relative SQLite URL absolute under the project home; other URLs pass through."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if rest and not rest.startswith("/") and not rest.startswith(":memory:"):
                return prefix + str(home / rest)
    return url


def parse_config(data: object, *, origin: str = "config", home: Path | None = None) -> CautionflowConfig:
    """Validate a parsed YAML document; errors name the field and the problem."""
    home = home or project_home()
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of settings at the top level")
    try:
        config = CautionflowConfig.model_validate({**data, "home": str(home)})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ConfigError(f"{origin}: {field}: {first['msg']}{more}") from None
    _check_named_things(config, origin)
    _check_letters(config, origin)
    return config.model_copy(
        update={
            "letters": _letterhead_resolved(config),
            "register_url": resolve_url(config.register_url, home),
            "source": config.source.model_copy(update={"url": resolve_url(config.source.url, home)}),
            "equality": config.equality and config.equality.model_copy(
                update={"url": config.equality.url and resolve_url(config.equality.url, home)}
            ),
        }
    )


def _check_named_things(config: CautionflowConfig, origin: str) -> None:
    """What the file names must exist when it is loaded, not when a later step first needs it: a
    mistyped policy would otherwise pass `run sync` and `run digests` and fail only in `run all`,
    and a mistyped `templates_dir` would silently fall back to the shipped templates."""
    from cautionflow.domain.policy import ProfileError
    from cautionflow.profiles import load_profile

    try:
        load_profile(config.policy, home=config.path("."))
    except ProfileError as exc:
        raise ConfigError(f"{origin}: policy: {exc}") from None
    if config.templates_dir is not None and not config.path(config.templates_dir).is_dir():
        raise ConfigError(f"{origin}: templates_dir: '{config.path(config.templates_dir)}' is not a folder")


def _check_letters(config: CautionflowConfig, origin: str) -> None:
    """Once the config has a letters section, every letter carries the landlord's contact block, so
    the block must be there (a letter with no way to reach the landlord), and a letterhead
    it names must be a PNG or JPEG that is there now, not when the first letter is drawn."""
    if config.letters is None:
        return
    contact = config.letters.contact
    if contact is None:
        raise ConfigError(f"{origin}: {LETTERS_CONTACT_REQUIRED}")
    if contact.letterhead is None:
        return
    path = config.path(contact.letterhead)
    try:
        with path.open("rb") as image:
            start = image.read(8)
    except OSError as exc:
        raise ConfigError(f"{origin}: letters.contact.letterhead: cannot read '{path}': {exc.strerror}") from None
    if not any(start.startswith(signature) for signature in LETTERHEAD_SIGNATURES):
        raise ConfigError(f"{origin}: letters.contact.letterhead: '{path}' is not a PNG or JPEG image")


def _letterhead_resolved(config: CautionflowConfig) -> LettersConfig | None:
    """The letters section with its letterhead's path made absolute under the project home."""
    letters = config.letters
    if letters is None or letters.contact is None or letters.contact.letterhead is None:
        return letters
    head = str(config.path(letters.contact.letterhead))
    return letters.model_copy(update={"contact": letters.contact.model_copy(update={"letterhead": head})})


def load_config(path: str | os.PathLike[str], *, home: Path | None = None) -> CautionflowConfig:
    import yaml

    home = home or project_home()
    file = Path(path)
    if not file.is_absolute():
        file = home / file
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config '{file}': {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config '{file}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # PyYAML builds nested collections recursively
        raise ConfigError(f"config '{file}' is nested too deeply to be a cautionflow config") from None
    # An optional override of the file's register_url (e.g. the PostgreSQL demo, or a container
    # whose register URL comes from its environment); relative SQLite URLs resolve as in the file.
    register_url = os.environ.get(REGISTER_URL_ENV)
    if register_url and isinstance(data, dict):
        data = {**data, "register_url": register_url}
    return parse_config(data, origin=str(file), home=home)
