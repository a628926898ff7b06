"""Provider limits (issue 15): `smtp.max_messages_per_minute` across concurrent connections, and
421 / 4.7.x replies as throttling (slow down, retry), never as failure.

Policy: the policies README's "Safety first" principle, Karbon 7.3 (out-of-hours call handlers are
told of every flagged individual as a matter of course) and Dover 6.31 (restrictions shared with
contractors): a digest refused by Exchange Online for going too fast, then marked failed, is a
warning that does not reach the people who visit. These are the limiter's pure tests, on a fake
clock; tests/integration/test_smtp_throttling.py has the real SMTP server.
"""

from __future__ import annotations

import asyncio
import random

import aiosmtplib
import pytest

from cautionflow.adapters.mail import RateLimiter, SmtpSettings, is_permanent, is_throttling
from cautionflow.config import ConfigError, SmtpConfig, parse_config
from cautionflow.integrations.airflow.settings import connection_extra_overrides
from tests.support import FakeTime, most_in_any_window


def send_through(limiter: RateLimiter, clock: FakeTime, messages: int, connections: int, *, seed: int = 7):
    """`connections` workers share `messages`, each message taking 0.1-2 s on its connection;
    returns when each began (by the fake clock)."""
    pick = random.Random(seed)
    todo = list(range(messages))
    starts: list[float] = []

    async def connection() -> None:
        while todo:
            todo.pop()
            await limiter.acquire()
            starts.append(clock.monotonic())
            await clock.sleep(pick.uniform(0.1, 2.0))  # the SMTP transaction

    async def main() -> None:
        await asyncio.gather(*(connection() for _ in range(connections)))

    asyncio.run(main())
    return starts


@pytest.mark.parametrize(("limit", "messages", "connections"), [(30, 100, 4), (30, 31, 8), (5, 23, 3), (1, 4, 2)])
def test_never_more_than_the_limit_in_any_minute_across_connections(limit, messages, connections):
    clock = FakeTime()
    limiter = RateLimiter(limit, monotonic=clock.monotonic, sleep=clock.sleep)

    starts = send_through(limiter, clock, messages, connections)

    assert len(starts) == messages
    assert most_in_any_window(starts) == min(limit, messages)  # the limit, and used to the full
    # ...and no slower than it must be: the last message begins in the minute its turn comes.
    full_minutes = (messages - 1) // limit
    assert full_minutes * 60 <= max(starts) - min(starts) < full_minutes * 60 + 60


def test_without_a_limit_nothing_waits():
    clock = FakeTime()
    limiter = RateLimiter(None, monotonic=clock.monotonic, sleep=clock.sleep)

    starts = send_through(limiter, clock, 200, 4)

    assert len(starts) == 200
    assert all(s > 0.05 for s in clock.sleeps)  # only the transactions slept: the limiter never did


def test_a_token_bucket_would_fail_this_scan():
    # The window scan itself can fail: two bursts of 30, 59 s apart, are 60 in one minute.
    assert most_in_any_window([0.0] * 30 + [59.0] * 30) == 60
    assert most_in_any_window([0.0] * 30 + [60.0] * 30) == 30


def test_throttling_pauses_every_connection_and_halves_the_limit_once_per_pause():
    clock = FakeTime()
    limiter = RateLimiter(30, monotonic=clock.monotonic, sleep=clock.sleep)

    async def main() -> list[float]:
        await limiter.acquire()
        limiter.throttled(8.0)
        limiter.throttled(8.0)  # a second connection reports the same pause: no second halving
        assert limiter.limit == 15 and limiter.spacing == 8.0
        begun = []
        for _ in range(3):
            await limiter.acquire()
            begun.append(clock.monotonic())
        return begun

    begun = asyncio.run(main())
    assert begun == [1008.0, 1016.0, 1024.0]  # after the pause, then spaced by the retry delay
    limiter.throttled(1.0)  # a later pause lowers it again, never below one a minute
    assert limiter.limit == 7 and limiter.spacing == 8.0
    for _ in range(5):
        limiter.throttled(1.0)
        clock.now += 2
    assert limiter.limit == 1


def test_throttling_without_a_limit_only_spaces_the_messages():
    # A greylisting relay's single 421 must cost the retry delay, not a minute a message.
    clock = FakeTime()
    limiter = RateLimiter(None, monotonic=clock.monotonic, sleep=clock.sleep)

    async def main() -> list[float]:
        await limiter.acquire()
        limiter.throttled(0.5)
        begun = []
        for _ in range(4):
            await limiter.acquire()
            begun.append(clock.monotonic())
        return begun

    assert asyncio.run(main()) == [1000.5, 1001.0, 1001.5, 1002.0]
    assert limiter.limit is None


@pytest.mark.parametrize(
    ("exc", "throttling", "permanent"),
    [
        (aiosmtplib.SMTPSenderRefused(421, "4.7.0 Try again later", "a@example.org"), True, False),
        (aiosmtplib.SMTPResponseException(421, "Service not available, closing channel"), True, False),
        (aiosmtplib.SMTPDataError(452, "4.7.0 Temporary server error"), True, False),
        # A 4.7.x status beside a 5xx code contradicts itself (RFC 3463 says the classes agree): the
        # enhanced status says transient, and a dropped warning costs more than one more attempt.
        (aiosmtplib.SMTPDataError(554, "4.7.0 Sending rate exceeded"), True, False),
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "4.7.1 Slow down", "x@y.org")]),
         True, False),
        (aiosmtplib.SMTPDataError(451, "4.3.0 Temporary local problem"), False, False),
        (aiosmtplib.SMTPDataError(550, "5.7.1 Relaying denied"), False, True),
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "5.1.1 Unknown", "x@y.org")]),
         False, True),
        (aiosmtplib.SMTPServerDisconnected("Connection lost"), False, False),
    ],
)
def test_replies_that_mean_slow_down(exc, throttling, permanent):
    assert is_throttling(exc) is throttling
    assert is_permanent(exc) is permanent


# --- configuration ---------------------------------------------------------------------------------

MINIMAL = {
    "organisation": "Example Homes",
    "policy": "dover",
    "register_url": "sqlite:///var/cautionflow.db",
    "source": {"url": "sqlite:///var/demo/housing.db"},
}


def smtp(**fields) -> dict:
    return {**MINIMAL, "smtp": {"sender": "Example Homes <alerts@example.org>", **fields}}


def test_the_limit_is_optional_and_off_by_default(tmp_path):
    assert parse_config(smtp(), home=tmp_path).smtp.max_messages_per_minute is None
    config = parse_config(smtp(max_messages_per_minute=30), home=tmp_path)  # Exchange Online
    assert config.smtp.max_messages_per_minute == 30
    assert SmtpSettings.from_config(config.smtp, environ={}).max_messages_per_minute == 30


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0, "Input should be greater than or equal to 1"),
        (-5, "Input should be greater than or equal to 1"),
        ("thirty", "Input should be a valid integer"),
        (2.5, "Input should be a valid integer"),
        (True, "Input should be a valid integer"),
    ],
)
def test_a_bad_limit_is_a_one_line_error_naming_the_field(tmp_path, value, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config(smtp(max_messages_per_minute=value), home=tmp_path)
    assert str(caught.value) == f"config: smtp.max_messages_per_minute: {problem}"


def test_the_airflow_connection_may_set_the_limit():
    file = SmtpConfig(sender="Example Homes <alerts@example.org>")
    extra = connection_extra_overrides({"max_messages_per_minute": "30"})  # as a URI's query string gives it
    assert extra == {"max_messages_per_minute": 30}
    assert SmtpSettings.from_config(file, overrides=extra, environ={}).max_messages_per_minute == 30
    assert SmtpSettings.from_config(file, overrides={}, environ={}).max_messages_per_minute is None
    with pytest.raises(ConfigError, match=r"^Airflow connection cautionflow_smtp: extra.max_messages_per_minute: "
                                          r"expected a number of at least 1, got '0'$"):
        connection_extra_overrides({"max_messages_per_minute": "0"})
