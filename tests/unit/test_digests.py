"""Digests, pure: who sees what (minimum disclosure), when, what changed, and the message itself."""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
import json
from email import policy
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cautionflow.adapters.mail import Attachment, SmtpSettings, build_message
from cautionflow.config import ConfigError, Recipient, SmtpConfig
from cautionflow.domain import digests as d
from cautionflow.domain.codes import UNKNOWN_CODE_ACTION, required_action
from cautionflow.domain.contract import SOURCE_COLUMNS
from tests.support import AS_OF

ACME = Recipient(name="Acme Repairs", email="rota@acme.example", role="contractor", areas=("north", "EAST"))
NIGHT_DESK = Recipient(name="Night Desk", email="ooh@callcentre.example", role="out_of_hours")

# Everything the register holds that a contractor must never be sent.
CONTRACTOR_FORBIDDEN = (
    "person_name", "person_ref", "tenancy_ref", "note", "dq_flags", "subject_type", "source", "email",
    "no_notify_reason", "language", "large_print", "preferred_channel", "notified_on", "appeal_received_on",
    "appeal_outcome", "review_outcome", "last_reviewed_on", "effective_from", "first_seen_run", "row_hash",
)
OUT_OF_HOURS_FORBIDDEN = tuple(f for f in CONTRACTOR_FORBIDDEN if f not in {"person_name", "subject_type"})


def alert(**overrides):
    row = {c: None for c in SOURCE_COLUMNS}
    row.update(
        alert_id="A1", alert_code="VIP", subject_type="person", person_ref="P1", person_name="Alex Example",
        tenancy_ref="T1", asset_ref="H1", address="1 Larkspur Close", postcode="EW1 2AB", area="NORTH",
        note="Threatened an operative.", dq_flags=None, review_due=dt.date(2027, 3, 2),
    )
    row.update(overrides)
    return row


# --- who sees what --------------------------------------------------------------------------------


def test_contractor_columns_are_where_and_what_to_do_only():
    # Karbon 7.1-7.2, Dover 6.31, Hexagon 1.2: contractors get the required action, never the facts.
    assert [c.key for c in d.CONTRACTOR_COLUMNS] == [
        "address", "postcode", "area", "asset_ref", "alert_code", "required_action", "review_due",
    ]
    row = d.digest_row("contractor", alert(), as_of=AS_OF)
    assert row.cells == (
        "1 Larkspur Close", "EW1 2AB", "NORTH", "H1", "VIP", required_action("VIP"), "2 March 2027",
    )
    assert row.alert_id == "A1"
    assert row.values[-1] == dt.date(2027, 3, 2)  # the CSV's value: a date, written ISO 8601


# --- review dates (issue 15: a past "Review due" reads as "expired" to a contractor) ------------------


@pytest.mark.parametrize(("review_due", "shown"), [
    (AS_OF - dt.timedelta(days=1), d.UNDER_REVIEW),  # past: still applies, being reviewed (Dover 6.18)
    (dt.date(2025, 8, 24), d.UNDER_REVIEW),
    (AS_OF, "23 November 2026"),  # due today is not past yet
    (AS_OF + dt.timedelta(days=1), "24 November 2026"),
])
def test_a_contractor_sees_under_review_for_a_past_review_date_and_the_date_otherwise(review_due, shown):
    row = d.digest_row("contractor", alert(review_due=review_due), as_of=AS_OF)
    assert row.cells[-1] == shown
    assert row.values[-1] == (d.UNDER_REVIEW if shown == d.UNDER_REVIEW else review_due)
    text = d.digest_csv(d.CONTRACTOR_COLUMNS, [row])
    assert (review_due.isoformat() in text) is (shown != d.UNDER_REVIEW)


def test_call_handlers_still_see_a_past_review_date():
    # Karbon 7.3: call handlers answer the resident; the date is theirs to see, past or not.
    past = dt.date(2026, 8, 24)
    row = d.digest_row("out_of_hours", alert(review_due=past), as_of=AS_OF)
    assert (row.cells[-1], row.values[-1]) == ("24 August 2026", past)
    [parsed] = csv.DictReader(io.StringIO(d.digest_csv(d.OUT_OF_HOURS_COLUMNS, [row]).removeprefix("\ufeff")))
    assert (parsed["Alert ID"], parsed["Review due"], parsed["Name"]) == ("A1", "2026-08-24", "Alex Example")


def test_the_selector_judges_review_dates_on_its_day():
    rows = [alert(alert_id="A1", review_due=dt.date(2026, 11, 22))]
    assert d.DigestSelector(rows, as_of=AS_OF).rows_for(ACME)[0].cells[-1] == d.UNDER_REVIEW
    assert d.DigestSelector(rows, as_of=dt.date(2026, 11, 22)).rows_for(ACME)[0].cells[-1] == "22 November 2026"


def test_out_of_hours_also_get_who_it_is_about_but_never_the_note():
    # Karbon 7.3: call handlers are told of all flagged individuals and the required actions, and
    # how to make contact safely (issue 15: the contact instruction, always theirs).
    keys = [c.key for c in d.OUT_OF_HOURS_COLUMNS]
    assert set(keys) == {c.key for c in d.CONTRACTOR_COLUMNS} | {"person_name", "subject_type", "contact_instruction"}
    cells = dict(zip(keys, d.digest_row("out_of_hours", alert(), as_of=AS_OF).cells, strict=True))
    assert cells["person_name"] == "Alex Example" and cells["subject_type"] == "person"
    assert "Threatened" not in " ".join(cells.values())


def test_contractors_see_only_their_areas_and_call_handlers_see_everything():
    alerts = [alert(alert_id="N", area="NORTH"), alert(alert_id="S", area="SOUTH"), alert(alert_id="E", area="east"),
              alert(alert_id="X", area=None)]
    assert [r.alert_id for r in d.digest_rows(ACME, alerts, as_of=AS_OF)] == ["N", "E"]
    assert [r.alert_id for r in d.digest_rows(NIGHT_DESK, alerts, as_of=AS_OF)] == ["N", "S", "E", "X"]
    officer = Recipient(name="Officers", email="o@example.org", role="officer")
    assert d.digest_rows(officer, alerts, as_of=AS_OF) == ()


def test_flagged_rows_still_warn_with_the_required_action_and_no_problem_text():
    # Safety first: a row with data-quality problems still reaches the people who visit.
    row = d.digest_row(
        "contractor", alert(alert_code="XXZ", dq_flags="unknown alert_code 'XXZ'", review_due=None), as_of=AS_OF)
    assert UNKNOWN_CODE_ACTION in row.cells
    assert not any("unknown alert_code" in cell for cell in row.cells)
    assert row.cells[-1] == ""  # no review date computed


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@st.composite
def register_rows(draw):
    """A register row with every field filled: forbidden ones carry a marker that must never leak."""
    row = {c: f"FORBIDDEN[{c}]{draw(_text)}" for c in (*SOURCE_COLUMNS, "dq_flags", "register_state",
                                                         "first_seen_run", "row_hash", "ended_reason")}
    row.update(
        alert_id=draw(st.text(alphabet="ABCDEFGHIJ0123456789", min_size=1, max_size=6)),
        alert_code=draw(st.sampled_from(["VIP", "DOG", "NFO", "XXZ", "", None])),
        area=draw(st.sampled_from(["NORTH", "SOUTH", "EAST", "north", None])),
        address=draw(_text), postcode=draw(_text), asset_ref=draw(_text),
        review_due=draw(st.none() | st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2035, 1, 1))),
    )
    return row


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(register_rows(), max_size=8), areas=st.lists(st.sampled_from(["NORTH", "SOUTH", "EAST"]),
                                                                  min_size=1, max_size=3, unique=True))
def test_no_contractor_row_ever_contains_a_forbidden_field(rows, areas):
    rows = [dict(r, alert_id=f"A{i}") for i, r in enumerate(rows)]  # ids are unique in the register
    contractor = Recipient(name="C", email="c@contractor.example", role="contractor", areas=tuple(areas))
    digest = d.digest_rows(contractor, rows, as_of=AS_OF)
    shown = {x.alert_id for x in digest}
    assert shown == {r["alert_id"] for r in rows if (r["area"] or "").upper() in areas}
    for row in digest:
        assert len(row.cells) == len(row.values) == len(d.CONTRACTOR_COLUMNS)
        assert not any("FORBIDDEN" in cell for cell in row.cells), row
        due = row.values[-1]  # never a date already past (issue 15)
        assert due in ("", d.UNDER_REVIEW) or (isinstance(due, dt.date) and due >= AS_OF), row
    csv_text = d.digest_csv(d.CONTRACTOR_COLUMNS, digest)
    assert "FORBIDDEN" not in csv_text
    # A flag lifted since the previous digest shows no more than a current one.
    for source in rows:
        lifted = d.lifted_row(contractor, source, source["alert_id"])
        assert not any("FORBIDDEN" in cell for cell in lifted.cells)
        area = lifted.cells[2]
        assert area == "" or area.upper() in areas


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(register_rows(), max_size=8))
def test_out_of_hours_rows_never_contain_the_note_or_problem_text(rows):
    for row in d.digest_rows(NIGHT_DESK, rows, as_of=AS_OF):
        leaked = [cell for cell in row.cells if "FORBIDDEN" in cell]
        # Only the name and subject type are theirs to see (Karbon 7.3), and how to make contact safely.
        theirs = ("FORBIDDEN[person_name]", "FORBIDDEN[subject_type]", "FORBIDDEN[contact_instruction]")
        assert all(c.startswith(theirs) for c in leaked), leaked
        assert not any(cell.startswith(tuple(f"FORBIDDEN[{f}]" for f in OUT_OF_HOURS_FORBIDDEN)) for cell in row.cells)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(register_rows(), max_size=12), areas=st.lists(st.sampled_from(["NORTH", "SOUTH", "EAST"]),
                                                                   min_size=1, max_size=3, unique=True))
def test_the_selector_gives_every_recipient_the_same_rows_as_digest_rows(rows, areas):
    rows = sorted((dict(r, alert_id=f"A{i}") for i, r in enumerate(rows)), key=lambda r: str(r["area"] or ""))
    contractor = Recipient(name="C", email="c@contractor.example", role="contractor", areas=tuple(areas))
    selector = d.DigestSelector(rows, as_of=AS_OF)
    for recipient in (contractor, NIGHT_DESK, ACME):
        assert selector.rows_for(recipient) == d.digest_rows(recipient, rows, as_of=AS_OF)


# --- when -----------------------------------------------------------------------------------------


def test_daily_recipients_are_due_every_day_and_weekly_ones_on_their_weekday():
    weekly = Recipient(name="W", email="w@contractor.example", role="contractor", areas=("NORTH",),
                       schedule="weekly", weekday="wednesday")
    officer = Recipient(name="O", email="o@example.org", role="officer")
    operations = Recipient(name="Ops", email="ops@example.org", role="operations")
    week = [AS_OF + dt.timedelta(days=n) for n in range(7)]
    assert [d.is_due(ACME, day) for day in week] == [True] * 7
    assert [d.is_due(weekly, day) for day in week] == [False, False, True, False, False, False, False]
    assert not any(d.is_due(officer, day) or d.is_due(operations, day) for day in week)  # reminders, not digests
    assert d.due_recipients([ACME, weekly, officer, NIGHT_DESK], AS_OF) == (ACME, NIGHT_DESK)


# --- what changed ---------------------------------------------------------------------------------


def test_first_digest_has_no_changes_and_later_ones_list_added_and_lifted():
    current = d.digest_rows(ACME, [alert(alert_id="A1"), alert(alert_id="A3")], as_of=AS_OF)
    assert d.changes_since(None, None, current, {}).first

    lifted = {"A2": d.lifted_row(ACME, alert(alert_id="A2", address="2 Old Road"), "A2")}
    changes = d.changes_since(dt.date(2026, 11, 22), {"A1", "A2"}, current, lifted)
    assert not changes.first and changes.previous_as_of == dt.date(2026, 11, 22)
    assert [r.alert_id for r in changes.added] == ["A3"]
    assert [r.alert_id for r in changes.lifted] == ["A2"]
    assert changes.lifted[0].cells[0] == "2 Old Road" and changes.lifted[0].cells[-1] == ""  # no review date
    assert d.lifted_ids({"A1", "A2"}, current) == {"A2"}


def test_a_flag_that_moved_out_of_a_contractors_areas_is_lifted_without_its_new_area():
    moved = d.lifted_row(ACME, alert(alert_id="A1", area="SOUTH"), "A1")
    assert moved.cells[2] == ""
    gone = d.lifted_row(ACME, None, "A9")  # no longer in the register at all
    assert gone.alert_id == "A9" and gone.cells[-2] == UNKNOWN_CODE_ACTION


# --- identity -------------------------------------------------------------------------------------


def test_content_hash_changes_with_what_is_disclosed_only():
    rows = d.digest_rows(ACME, [alert(alert_id="A1"), alert(alert_id="A2")], as_of=AS_OF)
    same = d.digest_rows(
        ACME, [alert(alert_id="A1", note="other"), alert(alert_id="A2", person_name="Someone")], as_of=AS_OF)
    assert d.content_hash("contractor", rows) == d.content_hash("contractor", same)
    changed = d.digest_rows(ACME, [alert(alert_id="A1"), alert(alert_id="A2", alert_code="DOG")], as_of=AS_OF)
    assert d.content_hash("contractor", rows) != d.content_hash("contractor", changed)
    assert d.content_hash("contractor", ()) != d.content_hash("out_of_hours", ())


def test_idempotency_key_and_message_id_are_stable():
    key = d.idempotency_key("digest", "Acme Repairs", "Rota@Acme.example", AS_OF, "h" * 64)
    assert key == d.idempotency_key("digest", "Acme Repairs", "rota@acme.example", AS_OF, "h" * 64)
    assert key != d.idempotency_key("digest", "Acme Repairs", "rota@acme.example", AS_OF + dt.timedelta(1), "h" * 64)
    assert d.message_id("digest", key, AS_OF, "example.org") == f"<cautionflow.digest.20261123.{key[:32]}@example.org>"


def test_subject_says_who_from_for_whom_when_and_how_many():
    assert d.digest_subject("Example Homes", "Acme Repairs", AS_OF, 12) == (
        "Confidential: Example Homes caution alerts for Acme Repairs, 23 November 2026 (12 flags)"
    )
    assert d.digest_subject("Example Homes", "Acme Repairs", AS_OF, 1).endswith("(1 flag)")


def test_csv_keeps_spreadsheet_formulas_as_text():
    rows = d.digest_rows(
        ACME, [alert(address='=HYPERLINK("http://evil.example")', asset_ref="@SUM(A1)")], as_of=AS_OF)
    text = d.digest_csv(d.CONTRACTOR_COLUMNS, rows)
    # The one CSV writer (cautionflow.domain.csv_format): a BOM for Excel, every text cell quoted, CRLF;
    # the alert id first (issue 15), so a flag is quoted back exactly.
    assert text.splitlines()[0] == (
        '\ufeff"Alert ID","Address","Postcode","Area","Asset reference","Alert code","Required action","Review due"')
    [row] = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    assert (row["Address"], row["Asset reference"]) == ("'=HYPERLINK(\"http://evil.example\")", "'@SUM(A1)")
    assert text.endswith("\r\n") and text.count("\n") == text.count("\r\n")


def test_csv_lines_shared_between_digests_give_the_same_csv():
    alerts = [alert(alert_id=f"A{n}", address=f"{n} Mill Lane", area=("NORTH", "EAST")[n % 2]) for n in range(6)]
    alerts.append(alert(alert_id="F1", address="=cmd|' /C calc'!A0", area="NORTH"))
    lines: dict = {}
    for recipient in (ACME, NIGHT_DESK, ACME):
        rows = d.digest_rows(recipient, alerts, as_of=AS_OF)
        columns = d.columns_for(recipient.role)
        assert d.digest_csv(columns, rows, lines) == d.digest_csv(columns, rows)
    assert len(lines) == 7 + 7  # each row once per role


# --- the message ----------------------------------------------------------------------------------


def parse(message: str) -> email.message.EmailMessage:
    return email.message_from_bytes(message.encode("ascii"), policy=policy.default)


def content(part: email.message.EmailMessage) -> str:
    """Decoded text with the wire's CRLF line ends as a mail client shows them."""
    return part.get_content().replace("\r\n", "\n")


def test_built_message_parses_with_alternatives_and_an_attachment():
    raw = build_message(
        sender="Ōtaki Homes <alerts@example.org>", to_name="Zoë's Repairs, Ltd", to_email="z@contractor.example",
        subject="Confidential: Ōtaki Homes alerts\r\nBcc: victim@example.org", message_id="<m1@example.org>",
        date=dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC), text="Plain £ text\n" + "x" * 1200,
        html="<p>Zoë</p>", attachments=[Attachment("list.csv", "text/csv", "a,b\r\n1,2\r\n")],
        headers={"Sensitivity": "Company-Confidential"},
    )
    assert raw.isascii() and all(len(line) <= 998 for line in raw.split("\r\n"))
    message = parse(raw)
    assert message["Subject"] == "Confidential: Ōtaki Homes alerts Bcc: victim@example.org"  # no injected header
    assert message["Bcc"] is None
    assert message["To"].addresses[0].display_name == "Zoë's Repairs, Ltd"
    assert message["From"].addresses[0].addr_spec == "alerts@example.org"
    assert message["Message-ID"] == "<m1@example.org>" and message["Sensitivity"] == "Company-Confidential"
    assert content(message.get_body(("plain",))) == "Plain £ text\n" + "x" * 1200
    assert message.get_body(("plain",))["Content-Transfer-Encoding"] == "quoted-printable"
    assert content(message.get_body(("html",))) == "<p>Zo&#235;</p>"  # 7bit HTML, same text
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "list.csv" and content(attachment) == "a,b\n1,2\n"


# --- settings -------------------------------------------------------------------------------------


SMTP = SmtpConfig(host="smtp.example.org", port=587, username="cautionflow", sender="Example Homes <a@example.org>")


def test_password_comes_from_the_environment_and_never_shows_in_repr():
    settings_ = SmtpSettings.from_config(SMTP, environ={"CAUTIONFLOW_SMTP_PASSWORD": "s3cret-pw"})
    assert settings_.password == "s3cret-pw" and settings_.security == "starttls"
    assert "s3cret-pw" not in repr(settings_) and "s3cret-pw" not in settings_.describe()
    assert settings_.sender_address == "a@example.org" and settings_.sender_domain == "example.org"
    with pytest.raises(ConfigError, match="CAUTIONFLOW_SMTP_PASSWORD"):
        SmtpSettings.from_config(SMTP, environ={})


def test_airflow_connection_overrides_the_file_and_is_validated_again():
    overrides = {"host": "relay.example.net", "port": 2525, "login": "airflow", "password": "conn-pw",
                 "security": "tls", "sender": "Ops <ops@example.org>"}
    s = SmtpSettings.from_config(SMTP, overrides=overrides, environ={})
    assert (s.host, s.port, s.username, s.password, s.security, s.sender) == (
        "relay.example.net", 2525, "airflow", "conn-pw", "tls", "Ops <ops@example.org>",
    )
    with pytest.raises(ConfigError, match="clear text"):
        SmtpSettings.from_config(SMTP, overrides={"security": "none", "password": "x"}, environ={})
    loopback = SmtpConfig(host="127.0.0.1", port=1025, security="none", sender="a@example.org")
    assert SmtpSettings.from_config(loopback, environ={}).password is None


# --- what changed, by severity (issue 15) ---------------------------------------------------------

NORTH_ONLY = Recipient(name="North Works", email="n@contractor.example", role="contractor", areas=("NORTH",))
DAY_BEFORE = AS_OF - dt.timedelta(days=1)


def shown_by_id(recipient, alerts, options=None):
    options = options or d.DigestOptions()
    columns = d.recipient_columns(recipient.role, options)
    rows = d.digest_rows(recipient, alerts, as_of=AS_OF, options=options)
    return rows, {row.alert_id: d.shown_record(columns, row) for row in rows}


def test_changed_flags_show_old_and_new_and_escalations_come_first():
    # Karbon 6.3, Hexagon 1.2: staff check before every visit, so a changed warning must be visible.
    before = [alert(alert_id="A1", alert_code="DOG", address="1 Mill Lane"),
              alert(alert_id="A2", alert_code="VIP", address="2 Mill Lane"),
              alert(alert_id="A3", alert_code="NFO", address="3 Mill Lane"),
              alert(alert_id="A4", alert_code="WPN", address="4 Mill Lane")]
    after = [alert(alert_id="A1", alert_code="DOG", address="1A Mill Lane"),  # an address change: hashed only
             alert(alert_id="A2", alert_code="WPN", address="2 Mill Lane"),  # escalated
             alert(alert_id="A3", alert_code="NFO", address="3 Mill Lane", review_due=dt.date(2028, 1, 1)),
             alert(alert_id="A4", alert_code="VIP", address="4 Mill Lane")]  # de-escalated: changed, not escalated
    _, old = shown_by_id(NORTH_ONLY, before)
    rows, new = shown_by_id(NORTH_ONLY, after)
    changes = d.changes_since(DAY_BEFORE, set(old), rows, {}, previous_shown=old, shown=new)

    assert [c.row.alert_id for c in changes.changed] == ["A2", "A1", "A4"]  # A3's review date is not a change
    escalation, details, lower = changes.changed
    assert escalation.escalated and not details.escalated and not lower.escalated
    assert escalation.before == {"alert_code": "VIP", "required_action": required_action("VIP")}
    assert escalation.after == {"alert_code": "WPN", "required_action": required_action("WPN")}
    assert details.before == details.after == {}  # shown as the current row, "details changed"
    assert lower.before["alert_code"] == "WPN" and lower.after["alert_code"] == "VIP"
    assert changes.added == () and changes.lifted == ()


def test_a_profiles_severity_decides_what_is_an_escalation():
    before, after = [alert(alert_code="VIP")], [alert(alert_code="DOG")]
    _, old = shown_by_id(NORTH_ONLY, before)
    rows, new = shown_by_id(NORTH_ONLY, after)
    [plain] = d.changes_since(DAY_BEFORE, set(old), rows, {}, previous_shown=old, shown=new).changed
    assert not plain.escalated  # both rank 4 by default
    [ranked] = d.changes_since(DAY_BEFORE, set(old), rows, {}, previous_shown=old, shown=new,
                               severity_overrides={"DOG": 5}).changed
    assert ranked.escalated


def test_no_change_is_reported_against_a_digest_that_kept_no_record_or_for_a_column_gained():
    rows, new = shown_by_id(NORTH_ONLY, [alert(alert_code="WPN")])
    unrecorded = d.changes_since(DAY_BEFORE, {"A1"}, rows, {}, previous_shown={}, shown=new)
    assert unrecorded.changed == () and unrecorded.added == ()  # before migration 0009: no false alarm
    # The landlord lets contractors see instructions: a column gained is not a change to the alert.
    _, old = shown_by_id(NORTH_ONLY, [alert(alert_code="WPN")])
    wider = d.DigestOptions(contractors_see_instructions=True)
    rows, new = shown_by_id(NORTH_ONLY, [alert(alert_code="WPN", contact_instruction="Ring Pat first")], wider)
    assert d.changes_since(DAY_BEFORE, {"A1"}, rows, {}, previous_shown=old, shown=new).changed == ()
    # A garbled record reads as none, never as a change.
    assert d.compare_shown("not json", new["A1"]) is None


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(register_rows(), min_size=1, max_size=6))
def test_what_a_digest_showed_is_kept_without_the_residents_personal_data(rows):
    rows = [dict(r, alert_id=f"A{i}") for i, r in enumerate(rows)]
    options = d.DigestOptions(contractors_see_instructions=True)
    for recipient in (NIGHT_DESK, Recipient(name="C", email="c@c.example", role="contractor",
                                            areas=("NORTH", "SOUTH", "EAST"))):
        columns = d.recipient_columns(recipient.role, options)
        for row in d.digest_rows(recipient, rows, as_of=AS_OF, options=options):
            text = d.shown_record(columns, row)
            record = json.loads(text)
            assert "alert_code" in record
            assert set(record) <= {*d.SHOWN_KEYS, "hashed"}
            assert not any(f"FORBIDDEN[{f}]" in text for f in ("person_name", "subject_type", "note", "address"))
            source = next(r for r in rows if r["alert_id"] == row.alert_id)
            for personal in ("address", "postcode"):  # kept only as a hash, never as text
                assert personal not in record and record["hashed"][personal] != d.display(source[personal])


def test_marks_are_not_part_of_what_identifies_a_digest():
    alerts = [alert(alert_id="A1", alert_code="VIP"), alert(alert_id="A2")]
    rows = d.digest_rows(ACME, alerts, as_of=AS_OF)
    first = d.changes_since(None, None, rows, {})
    _, shown = shown_by_id(ACME, alerts)
    later = d.changes_since(DAY_BEFORE, {"A2"}, rows, {}, previous_shown={"A2": shown["A2"]}, shown=shown)
    assert later.added and not first.added  # the marks would differ ...
    assert d.content_hash("contractor", rows) == d.content_hash("contractor", rows, d.CONTRACTOR_COLUMNS)  # ... the key not


def test_contact_instruction_column_falls_back_to_the_duty_contact():
    assert "contact_instruction" not in [c.key for c in d.recipient_columns("contractor", d.DigestOptions())]
    assert "contact_instruction" in [
        c.key for c in d.recipient_columns("contractor", d.DigestOptions(contractors_see_instructions=True))]
    keys = [c.key for c in d.OUT_OF_HOURS_COLUMNS]

    class Duty:
        name, phone = "Duty housing manager", "01632 960999"

    duty = d.DigestOptions(duty_contact=Duty())
    own, missing = d.digest_rows(
        NIGHT_DESK, [alert(alert_id="A1", contact_instruction=" Via Pat Officer "), alert(alert_id="A2")],
        as_of=AS_OF, options=duty)
    assert dict(zip(keys, own.cells, strict=True))["contact_instruction"] == "Via Pat Officer"
    assert dict(zip(keys, missing.cells, strict=True))["contact_instruction"] == "Call Duty housing manager on 01632 960999"
    [bare] = d.digest_rows(NIGHT_DESK, [alert()], as_of=AS_OF)
    assert dict(zip(keys, bare.cells, strict=True))["contact_instruction"] == ""  # no duty contact configured


def test_postcodes_and_house_numbers_sort_naturally():
    assert sorted(["QE10 1AA", "QE2 1AA", "QE1 1AA", "qe3 1AA"], key=d.natural_key) == [
        "QE1 1AA", "QE2 1AA", "qe3 1AA", "QE10 1AA"]
    assert sorted(["10 Mill Lane", "2 Mill Lane", "Flat 1, 2 Mill Lane", "2A Mill Lane"], key=d.natural_key) == [
        "2 Mill Lane", "2A Mill Lane", "10 Mill Lane", "Flat 1, 2 Mill Lane"]
    alerts = [alert(alert_id="B", area="NORTH", postcode="QE10 1AA"), alert(alert_id="A", area="NORTH", postcode="QE2 1AA"),
              alert(alert_id="C", area="EAST", postcode="QE99 1AA"), alert(alert_id="D", area=None, postcode=None)]
    assert [a["alert_id"] for a in sorted(alerts, key=d.alert_order)] == ["D", "C", "A", "B"]


@given(st.lists(st.one_of(st.none(), _text), max_size=10))
def test_natural_key_orders_any_text_without_failing(values):
    ordered = sorted(values, key=d.natural_key)
    assert len(ordered) == len(values)


def test_highest_risk_is_the_top_rank_and_a_profile_can_raise_a_code():
    assert [code for code in ("DNV", "WPN", "AGY", "VIP", "DOG", "XXZ", "") if d.is_highest_risk(code)] == [
        "DNV", "WPN", "AGY"]
    assert d.is_highest_risk("DOG", {"DOG": 5})


def test_an_urgent_notice_is_shown_in_the_landlords_time():
    summer = dt.datetime(2026, 7, 29, 13, 15, tzinfo=dt.UTC)
    assert d.notified_text(summer, ZoneInfo("Europe/London")) == "Urgent notice sent 14:15, 29 July"
    winter = dt.datetime(2026, 11, 29, 14, 15, tzinfo=dt.UTC)
    assert d.notified_text(winter, ZoneInfo("Europe/London")) == "Urgent notice sent 14:15, 29 November"


def test_one_recipients_marks_never_reach_anothers_digest_through_the_shared_rows():
    from cautionflow.adapters.templates import renderer
    from cautionflow.config import parse_config
    from cautionflow.services.digests import RowCache, render_digest
    from tests.support import REPO

    config = parse_config({"organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///unused.db",
                           "source": {"url": "sqlite:///unused.db"}, "recipients": []}, home=REPO)
    render, cache = renderer(config), RowCache()
    alerts = [alert(alert_id="A1", alert_code="WPN"), alert(alert_id="A2", address="2 Mill Lane")]
    rows, shown = shown_by_id(ACME, alerts)
    changes = d.changes_since(DAY_BEFORE, {"A1"}, rows, {}, previous_shown={"A1": shown["A1"]}, shown=shown)
    other = Recipient(name="Beta Builders", email="b@contractor.example", role="contractor", areas=("NORTH",))

    def plain(recipient, changes, notified):
        _, message = render_digest(
            render, organisation="Example Homes", recipient=recipient, as_of=AS_OF, rows=rows, changes=changes,
            sender="a@example.org", message_id="<m@example.org>", now=dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC),
            cache=cache, notified=notified)
        return content(parse(message).get_body(("plain",)))

    marked = plain(ACME, changes, {"A1": dt.datetime(2026, 11, 23, 5, tzinfo=dt.UTC)})
    assert "[NEW] 2 Mill Lane" in marked and "[ALREADY NOTIFIED: Urgent notice sent 05:00, 23 November]" in marked
    unmarked = plain(other, d.changes_since(DAY_BEFORE, {"A1", "A2"}, rows, {}), {})
    assert "[NEW]" not in unmarked and "ALREADY NOTIFIED" not in unmarked and "- 2 Mill Lane" in unmarked
    assert "HIGHEST RISK (1)" in marked and "HIGHEST RISK (1)" in unmarked  # the WPN row, for both


@given(st.integers(min_value=0, max_value=400))
def test_digests_are_composed_in_growing_chunks_each_once_in_order(count):
    from cautionflow.services.digests import CHUNK, chunks

    todo = list(range(count))
    sizes = [len(chunk) for chunk in chunks(todo)]
    assert [x for chunk in chunks(todo) for x in chunk] == todo  # every digest once, in the planned order
    if not count:
        assert sizes == []
        return
    assert sizes[0] == 1  # the first digest goes to the senders on its own
    full = [1, 2, 4, 8, 16, *[CHUNK] * count]  # then doubling up to CHUNK; only the last one short
    assert sizes[:-1] == full[: len(sizes) - 1] and 0 < sizes[-1] <= full[len(sizes) - 1]
