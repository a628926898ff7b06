"""What every step builds the same way: the register, the policy profile, SMTP settings, templates.

Adapters are created inside a step and closed when it ends (`with open_register(config)`), so no
connection or credential outlives the step that needed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock

if TYPE_CHECKING:
    from cautionflow.adapters.mail import SmtpSettings
    from cautionflow.adapters.register import Register
    from cautionflow.config import CautionflowConfig
    from cautionflow.domain.digests import DigestOptions
    from cautionflow.domain.policy import PolicyProfile


@contextmanager
def open_register(config: CautionflowConfig) -> Iterator[Register]:
    """The configured register (never created here: only the sync creates one), disposed at the end."""
    from cautionflow.adapters.register import Register

    with Register(config.register_url) as register:
        yield register


@contextmanager
def register_to_mail_from(config: CautionflowConfig, what: str, clock: Clock) -> Iterator[Register]:
    """The register, once it is known to exist and to have completed a sync within
    `mail.max_sync_age_hours` by `clock`; else a RegisterNotReadyError naming `what` (exit 2 on the
    command line; an Airflow task fails without retries and operations are told). Mail that lists
    or lifts flags is never composed from a missing, never-synced or stale register."""
    from cautionflow.services.register_freshness import require_recent_sync

    with open_register(config) as register:
        require_recent_sync(register, what=what, max_age_hours=config.mail.max_sync_age_hours, clock=clock)
        yield register


def policy_profile(config: CautionflowConfig) -> PolicyProfile:
    """The configured profile: a shipped name, or a file path resolved against the project home."""
    from cautionflow.profiles import load_profile

    return load_profile(config.policy, home=config.path("."))


def digest_options(config: CautionflowConfig) -> DigestOptions:
    """What the digests and the urgent notices show, from one place, so a notice shows exactly the
    columns its recipient's digest does: the config's choices (contact instructions, the duty
    contact, the time zone for times shown) and the policy profile's severity ranks."""
    from zoneinfo import ZoneInfo

    from cautionflow.domain.digests import DigestOptions

    return DigestOptions(
        contractors_see_instructions=config.digests.contractors_see_instructions,
        duty_contact=config.digests.duty_contact, severity=dict(policy_profile(config).severity),
        timezone=ZoneInfo(config.timezone),
    )


def smtp_settings(
    config: CautionflowConfig, purpose: str, needed: bool, overrides: dict[str, Any] | None = None,
    tls_context: Any = None,
) -> SmtpSettings | None:
    """The SMTP settings for a mail step (see `adapters.mail.smtp_settings`)."""
    from cautionflow.adapters.mail import smtp_settings

    return smtp_settings(config.smtp, purpose, needed=needed, overrides=overrides, tls_context=tls_context)


def renderer(config: CautionflowConfig) -> Callable[..., str]:
    """render(template name, **values): the deployment's templates over the shipped ones."""
    from cautionflow.adapters.templates import renderer

    return renderer(config)
