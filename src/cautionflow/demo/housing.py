"""A synthetic Civica CX-style housing database: the demo and benchmark source for cautionflow.

Real caution registers hold special category data, so the product is shown, tested and load-tested
on made-up homes, people and alerts that look like a CX housing system and misbehave like one: a
few normalised tables, a VIEW `caution_alerts_export` that returns exactly the source contract, and
a small, counted share of the bad rows a real export contains (missing ids, unknown codes, dates
that do not parse...), so the pipeline's validation has something to catch.

Everything is generated column-wise with numpy from one seeded Generator (deterministic for a
seed) and written with `executemany` in one transaction, so a million alerts take seconds.
Names come from short lists of common names combined at random; postcodes use the unused "Q"
postcode area, and email addresses only the reserved example domains (RFC 2606).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.contract import SOURCE_COLUMNS

VIEW_NAME = "caution_alerts_export"

FAULT_KINDS: tuple[str, ...] = (
    "missing_alert_id",  # alert_ref NULL or ''
    "missing_location",  # neither asset_ref nor address
    "unknown_alert_code",  # a legacy code cautionflow does not know, e.g. "XXZ"
    "unparseable_date",  # "14/03/2024", "unknown", "TBC"
    "impossible_date",  # "2025-02-30"
    "ends_before_start",  # ends_on earlier than effective_from
    "duplicate_alert_id",  # two rows sharing one alert_ref (counted once per shared id)
)

# Fewer rows than this cannot carry two of every fault on separate rows.
MIN_ALERTS = 2 * (len(FAULT_KINDS) + 1)

AREAS: tuple[str, ...] = ("NORTH", "SOUTH", "EAST", "WEST", "CENTRAL")

# Four made-up towns per area, in AREAS order.
_TOWNS: tuple[tuple[str, ...], ...] = (
    ("Northam Vale", "Hilltop", "Brackenfield", "Upper Ashby"),
    ("Southmere", "Fernleigh", "Lowbridge", "Kingsmoor"),
    ("Eastwick", "Marshgate", "Saltcote", "Eastbury"),
    ("Westholme", "Oakhurst", "Millbrook", "Westcombe"),
    ("Midford", "Castleton", "Market Brampton", "Centrefield"),
)
_STREETS_PER_TOWN = 60
_STREET_STEMS = (
    "Larkspur", "Foxglove", "Primrose", "Bluebell", "Hawthorn", "Rowan", "Willow", "Alder", "Beech",
    "Chestnut", "Elm", "Hazel", "Juniper", "Laurel", "Maple", "Poplar", "Sycamore", "Yew", "Heron",
    "Kestrel", "Lapwing", "Linnet", "Mallard", "Plover", "Skylark", "Swallow", "Wren", "Meadow",
    "Orchard", "Mill", "Church", "Station", "Victoria", "Albert", "Queens", "Kings", "Park", "Brook",
    "Riverside", "Chapel",
)
_STREET_SUFFIXES = (
    "Close", "Road", "Street", "Avenue", "Way", "Court", "Lane", "Gardens", "Crescent", "Drive",
    "Grove", "Walk",
)
# Letters allowed in the inward part of a UK postcode (no C, I, K, M, O, V).
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

_FIRST_NAMES = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Sophie", "Emily", "Jessica", "Chloe", "Hannah",
    "Lucy", "Sarah", "Emma", "Laura", "Rebecca", "Aisha", "Zainab", "Fatima", "Priya", "Megan", "Anna",
    "Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Thomas", "James", "William",
    "Daniel", "Mohammed", "Ali", "Adam", "Ryan", "David", "Michael", "Liam", "Connor", "Tomasz",
    "Piotr", "Gareth", "Rhys", "Dylan", "Joseph", "Samuel",
)
_LAST_NAMES = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson",
    "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green",
    "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper",
    "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen",
    "Khan", "Ahmed", "Begum", "Ali", "Kowalski", "Nowak",
)
EMAIL_DOMAINS: tuple[str, ...] = ("example.org", "example.com", "example.net")
_LANGUAGES = ("en", "pl", "ur", "cy", "pa", "so", "ro", "ar")
_LANGUAGE_P = (0.88, 0.03, 0.02, 0.02, 0.015, 0.015, 0.01, 0.01)

# Common codes dominate a real register; codes not listed here get weight 2.
_CODE_WEIGHTS = {
    "VIP": 22, "DOG": 16, "CM": 15, "HAZ": 6, "AGY": 6, "SPOC": 5, "WPN": 4, "DNV": 4, "OFF": 4,
    "NFO": 3, "NLF": 3, "NMO": 2, "NLM": 2, "NFV": 2, "NMV": 2,
}
_UNKNOWN_CODES = ("XXZ", "PRV", "Q9")

_SOURCES = ("staff", "police", "local_authority", "social_services", "other")
_SOURCE_P = (0.70, 0.12, 0.08, 0.06, 0.04)

# Short, factual, made-up incident notes: three per code.
_NOTES: dict[str, tuple[str, str, str]] = {
    "VIP": (
        "Resident became verbally aggressive during a rent visit and followed the officer to the car.",
        "Two visitors were threatened at the door during a repairs appointment.",
        "Officer was shouted at and blocked from leaving the property.",
    ),
    "NFO": (
        "Resident made repeated unwanted remarks to a female surveyor.",
        "Female officer reported intimidating behaviour during a tenancy audit.",
        "History of harassment directed at female staff.",
    ),
    "NMO": (
        "Support worker advised that male visitors cause the resident distress.",
        "Agreed at a safeguarding meeting: female staff only.",
        "Resident reported feeling unsafe with male operatives after a past incident.",
    ),
    "NLF": (
        "Female officer was cornered in the hallway during an inspection.",
        "Inappropriate comments made to a lone female caretaker.",
        "Resident repeatedly asked a female officer to stay after the visit ended.",
    ),
    "NLM": (
        "Resident made an allegation against a lone male operative.",
        "Household asked that male staff do not attend alone after an incident.",
        "Previous dispute with a lone male surveyor.",
    ),
    "NFV": (
        "Resident was abusive to a female visitor from the lettings team.",
        "Female contractor reported unwanted contact after a repair.",
        "Support agency advised against female visitors.",
    ),
    "NMV": (
        "Resident was abusive to a male visitor from the repairs team.",
        "Domestic abuse support plan: no male visitors.",
        "Male contractor was threatened during a gas safety check.",
    ),
    "DOG": (
        "Large dog loose in the garden during a gas safety visit; engineer could not enter.",
        "Dog bit a contractor's sleeve at the front door.",
        "Two dogs kept in the hallway; resident refused to secure them.",
    ),
    "WPN": (
        "Knife seen on the kitchen table during a visit; police informed.",
        "Police advised that a weapon may be kept at the property.",
        "Resident threatened a neighbour with a bat in the communal area.",
    ),
    "HAZ": (
        "Used needles found in the bathroom during a repair.",
        "Drug paraphernalia seen in the living room.",
        "Hoarding blocks the stairs and the fire exit.",
    ),
    "SPOC": (
        "Resident makes frequent abusive calls to different teams.",
        "Agreed that all contact goes through the named housing officer.",
        "Multiple complaints raised across teams; single point of contact agreed.",
    ),
    "CM": (
        "Repeated abusive emails to staff; contact limited to one weekly email.",
        "Resident attended the office and shouted at reception staff.",
        "Persistent calls to the contact centre; contact restricted to letters.",
    ),
    "DNV": (
        "Officer threatened with violence at the property.",
        "Police advised no home visits until further notice.",
        "Resident assaulted a contractor during a repair.",
    ),
    "AGY": (
        "Police shared a risk to staff under an information sharing agreement.",
        "Social services advised of a risk of aggression to visitors.",
        "Probation service advised that visits should be in pairs.",
    ),
    "OFF": (
        "Home visits escalated; office appointments agreed.",
        "Resident was aggressive during home visits; meetings moved to the office.",
        "Neighbour dispute at the property; meet at the office.",
    ),
}
_GENERIC_NOTES = (
    "Staff member reported a concern after a visit.",
    "Incident logged by the neighbourhood team.",
    "Concern raised at the monthly case review.",
)

# What the resident may be told of why (resident_reason), three per code, each matching the internal
# note of the same position in _NOTES: the facts put as the landlord would write them to the resident,
# without the reporter's name or anything an agency asked to keep back (Hexagon 5.3, Karbon 5.2).
_RESIDENT_REASONS: dict[str, tuple[str, str, str]] = {
    "VIP": (
        "During a rent visit you spoke to our officer aggressively and followed them to their car.",
        "Two of our visitors were threatened at your door during a repairs appointment.",
        "Our officer was shouted at and prevented from leaving your home.",
    ),
    "NFO": (
        "You made repeated unwanted remarks to a female surveyor working for us.",
        "A female officer found your behaviour intimidating during a tenancy audit.",
        "Female members of our staff have reported harassment during contact with you.",
    ),
    "NMO": (
        "Your support worker told us that visits by men cause you distress.",
        "It was agreed at a meeting about your support that only female staff will visit.",
        "You told us you feel unsafe when male operatives visit your home.",
    ),
    "NLF": (
        "A female officer was prevented from leaving the hallway during an inspection of your home.",
        "Inappropriate comments were made to a female caretaker working alone.",
        "A female officer was repeatedly asked to stay after her visit had ended.",
    ),
    "NLM": (
        "An allegation was made about a male operative who visited alone.",
        "Your household asked that male staff do not visit alone.",
        "There was a dispute with a male surveyor who visited alone.",
    ),
    "NFV": (
        "A female visitor from our lettings team was spoken to abusively.",
        "A female contractor reported unwanted contact after a repair.",
        "A support agency advised us that female visitors should not attend.",
    ),
    "NMV": (
        "A male visitor from our repairs team was spoken to abusively.",
        "Your support plan says that male visitors should not attend.",
        "A male contractor was threatened during a gas safety check.",
    ),
    "DOG": (
        "A large dog was loose in the garden during a gas safety visit and our engineer could not get in.",
        "A dog at your home bit the sleeve of one of our contractors at the front door.",
        "Dogs kept in the hallway were not secured when our staff asked.",
    ),
    "WPN": (
        "A knife was seen during a visit to your home.",
        "We have been told that a weapon may be kept at your home.",
        "A neighbour was threatened with a bat in the communal area.",
    ),
    "HAZ": (
        "Used needles were found in the bathroom during a repair.",
        "Items that could harm our staff were seen in the living room during a visit.",
        "Belongings stored on the stairs block the way out in a fire.",
    ),
    "SPOC": (
        "Many calls to our different teams have been abusive.",
        "We have agreed that all contact with you goes through your named housing officer.",
        "Complaints raised with many teams are best handled by one named contact.",
    ),
    "CM": (
        "Emails sent to our staff have been abusive; contact is now limited to one email a week.",
        "You shouted at our reception staff when you came to the office.",
        "Persistent calls to our contact centre: contact with us is now by letter.",
    ),
    "DNV": (
        "Our officer was threatened with violence at your home.",
        "We have been advised not to make home visits for now.",
        "One of our contractors was assaulted during a repair.",
    ),
    "AGY": (
        "Another organisation told us of a risk to staff visiting your home.",
        "Another organisation advised us of a risk of aggression to visitors.",
        "Another organisation advised that visits to your home should be made in pairs.",
    ),
    "OFF": (
        "Home visits became heated, so we will meet you at our office.",
        "Our staff met aggression during home visits, so meetings will be at our office.",
        "Because of a dispute at your address, we will meet you at our office.",
    ),
}
_GENERIC_RESIDENT_REASONS = (
    "A member of our staff raised a concern after a visit to your home.",
    "Our neighbourhood team recorded an incident involving your home.",
    "A concern was raised about contact with your household.",
)
# The share of person and household alerts with no reason recorded for the resident yet, higher among
# those added in the last 60 days (the officer writes it after the decision): their decision letters
# are held, so the demo shows the hold, the officers' flag and, on day 2, a release.
NO_RESIDENT_REASON_SHARE = 0.04
NO_RESIDENT_REASON_SHARE_RECENT = 0.25

# How to make contact safely (contact_instruction, issue 15): who the single point of contact is and
# how to reach them, the agreed arrangements, who approves an emergency visit. SPOC, CM and DNV name
# an arrangement their required action does not give, so most of theirs have one; a share are
# recorded without (validation flags them, so the demo shows the flag), and a few alerts of other
# codes carry one too. {officer} is an officer of the alert's area ("Priya Shah, Tenancy Officer"),
# {phone} their number, {duty} the duty manager's (the demo config's digests.duty_contact).
NO_CONTACT_INSTRUCTION_SHARE = 0.15  # of SPOC, CM and DNV alerts
OTHER_CONTACT_INSTRUCTION_SHARE = 0.05  # of every other code's alerts
DUTY_MANAGER_PHONE = "01632 960999"
_CONTACT_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "SPOC": (
        "Single point of contact: {officer}, {phone}, weekdays 9-5; out of hours the duty manager {duty}",
        "All contact through {officer}, {phone}; if they are away, the duty manager {duty}. "
        "Do not make arrangements with the resident directly",
        "Single point of contact: {officer}, {phone}. Pass on any request from the resident; "
        "do not book visits yourself",
    ),
    "CM": (
        "Contact by letter only; no phone calls. Letters are sent by {officer}, {phone}",
        "One email a week, from {officer} ({phone}) only; no phone calls and no unannounced visits",
        "Appointments only, booked through {officer}, {phone}; no unplanned contact",
    ),
    "DNV": (
        "Do not visit: emergency repairs only with the police; call the duty manager {duty} first",
        "Do not visit: an emergency visit needs approval from {officer}, {phone}, or out of hours "
        "the duty manager {duty}",
        "Do not visit: contact by letter only. Emergency attendance in pairs with the police, "
        "approved by the duty manager {duty}",
    ),
}
_OTHER_CONTACT_INSTRUCTIONS = (
    "Phone {officer}, {phone}, before any visit; they confirm who may attend",
    "Visits are booked through {officer}, {phone}; do not call at the home unannounced",
)
_OFFICER_ROLES = (
    "Tenancy Officer", "Housing Officer", "Neighbourhood Officer", "Tenancy Sustainment Officer", "Income Officer",
)
_OFFICERS_PER_AREA = 6


def contact_instruction(template: str, officer: str, phone: str) -> str:
    """One of the templates above, filled in."""
    return template.format(officer=officer, phone=phone, duty=DUTY_MANAGER_PHONE)


_REASONS_AGENCY = (
    "Information supplied by an agency; telling the resident could put the reporter at risk.",
    "Police asked that the resident is not told while an investigation is open.",
    "Withheld under a data protection exemption (crime and taxation).",
)
_REASONS_STAFF = (
    "Writing to the resident could put a member of staff at risk.",
    "Telling the resident could put a household member at risk.",
    "A support worker advised that a letter would cause the resident serious distress.",
)
_REASON_LOCATION = "Alert on a location, not a person: no resident to notify."

_LOCATION_KINDS = ("Bin store", "Car park", "Communal stairwell", "Garage block", "Play area", "Drying area")

# Text NULL while generating: the inserts turn '' into NULL with NULLIF, because binding None is
# several times slower than binding a string in the sqlite3 module. Only alert_ref keeps a real ''.
_NULL = ""
_NA = -1  # "no date" in the integer day arrays (days since 1970-01-01 are positive here)
_SUBJECTS = ("P", "H", "A")  # CX subject kinds; the view maps them to the contract's words

_SCHEMA = """
CREATE TABLE cx_area (
    area_code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE cx_property (
    asset_ref TEXT PRIMARY KEY,
    house_number TEXT NOT NULL,
    street TEXT NOT NULL,
    town TEXT NOT NULL,
    postcode TEXT NOT NULL,
    area_code TEXT NOT NULL REFERENCES cx_area(area_code),
    patch TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE cx_tenancy (
    tenancy_ref TEXT PRIMARY KEY,
    asset_ref TEXT NOT NULL REFERENCES cx_property(asset_ref),
    start_date TEXT NOT NULL
);
CREATE TABLE cx_contact (
    person_ref TEXT PRIMARY KEY,
    forename TEXT NOT NULL,
    surname TEXT NOT NULL,
    tenancy_ref TEXT NOT NULL REFERENCES cx_tenancy(tenancy_ref),
    lead_tenant INTEGER NOT NULL,
    email TEXT,
    preferred_channel TEXT NOT NULL,
    language TEXT NOT NULL,
    large_print INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE cx_alert_type (
    alert_type TEXT PRIMARY KEY,
    description TEXT NOT NULL
);
-- Legacy table: alert_ref is neither unique nor required, and dates are free TEXT, as in the wild.
CREATE TABLE cx_alert (
    alert_seq INTEGER PRIMARY KEY,
    alert_ref TEXT,
    alert_type TEXT,
    subject_kind TEXT,
    person_ref TEXT,
    tenancy_ref TEXT,
    asset_ref TEXT,
    location_text TEXT,
    location_postcode TEXT,
    location_area TEXT,
    effective_from TEXT,
    ends_on TEXT,
    last_reviewed_on TEXT,
    review_outcome TEXT,
    status TEXT,
    notify_resident INTEGER,
    no_notify_reason TEXT,
    notified_on TEXT,
    appeal_received_on TEXT,
    appeal_decided_on TEXT,
    appeal_outcome TEXT,
    source TEXT,
    note TEXT,
    resident_reason TEXT,
    contact_instruction TEXT,
    updated_at TEXT
);
"""

_INDEXES = """
CREATE INDEX cx_tenancy_asset ON cx_tenancy(asset_ref);
CREATE INDEX cx_contact_tenancy ON cx_contact(tenancy_ref);
CREATE INDEX cx_alert_ref ON cx_alert(alert_ref);
CREATE INDEX cx_alert_updated ON cx_alert(updated_at);
"""

# The source contract, column for column (cautionflow.domain.contract.SOURCE_COLUMNS).
_VIEW = f"""
CREATE VIEW {VIEW_NAME} AS
SELECT
    a.alert_ref AS alert_id,
    a.alert_type AS alert_code,
    CASE a.subject_kind WHEN 'P' THEN 'person' WHEN 'H' THEN 'household' WHEN 'A' THEN 'address' END
        AS subject_type,
    a.person_ref AS person_ref,
    CASE WHEN c.person_ref IS NOT NULL THEN c.forename || ' ' || c.surname END AS person_name,
    a.tenancy_ref AS tenancy_ref,
    a.asset_ref AS asset_ref,
    COALESCE(p.house_number || ' ' || p.street || ', ' || p.town, a.location_text) AS address,
    COALESCE(p.postcode, a.location_postcode) AS postcode,
    COALESCE(p.area_code, a.location_area) AS area,
    a.effective_from AS effective_from,
    a.ends_on AS ends_on,
    a.last_reviewed_on AS last_reviewed_on,
    a.review_outcome AS review_outcome,
    a.status AS status,
    a.notify_resident AS notify_resident,
    a.no_notify_reason AS no_notify_reason,
    a.notified_on AS notified_on,
    a.appeal_received_on AS appeal_received_on,
    a.appeal_decided_on AS appeal_decided_on,
    a.appeal_outcome AS appeal_outcome,
    a.source AS source,
    a.note AS note,
    a.resident_reason AS resident_reason,
    a.contact_instruction AS contact_instruction,
    c.preferred_channel AS preferred_channel,
    c.email AS email,
    c.language AS language,
    COALESCE(c.large_print, 0) AS large_print,
    a.updated_at AS updated_at
FROM cx_alert AS a
LEFT JOIN cx_contact AS c ON c.person_ref = a.person_ref
LEFT JOIN cx_property AS p ON p.asset_ref = a.asset_ref
ORDER BY a.alert_seq
"""

_ALERT_COLUMNS = (
    "alert_ref", "alert_type", "subject_kind", "person_ref", "tenancy_ref", "asset_ref",
    "location_text", "location_postcode", "location_area", "effective_from", "ends_on",
    "last_reviewed_on", "review_outcome", "status", "notify_resident", "no_notify_reason",
    "notified_on", "appeal_received_on", "appeal_decided_on", "appeal_outcome", "source", "note",
    "resident_reason", "contact_instruction", "updated_at",
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What `build_housing_database` wrote, so tests and `make demo` can say what to expect."""

    path: Path
    as_of: date
    seed: int
    homes: int
    tenancies: int
    people: int
    alerts: int  # rows in the caution_alerts_export view
    missing_alert_id: int
    missing_location: int
    unknown_alert_code: int
    unparseable_date: int
    impossible_date: int
    ends_before_start: int
    duplicate_alert_id: int

    @property
    def faults(self) -> dict[str, int]:
        """Deliberately bad rows by kind; each bad row has exactly one fault."""
        return {kind: getattr(self, kind) for kind in FAULT_KINDS}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the CLI's last stdout line)."""
        return {
            "path": str(self.path),
            "as_of": self.as_of.isoformat(),
            "seed": self.seed,
            "homes": self.homes,
            "tenancies": self.tenancies,
            "people": self.people,
            "alerts": self.alerts,
            "faults": self.faults,
        }


def build_housing_database(
    path: Path, *, homes: int = 20_000, alerts: int = 600, as_of: date, seed: int = 7
) -> DemoSummary:
    """Write a fresh CX-style SQLite database at `path` (replacing any file there)."""
    if homes < 1:
        raise ValueError(f"homes must be at least 1, not {homes}")
    if alerts < MIN_ALERTS:
        raise ValueError(f"alerts must be at least {MIN_ALERTS} (room for every fault kind), not {alerts}")
    path = Path(path)
    rng = np.random.default_rng(seed)
    today = int((np.datetime64(as_of, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))

    estate = _estate(rng, homes, today)
    rows, faults = _alerts(rng, alerts, today, estate)

    # Build beside the target and swap in, so a failed build never leaves half a database.
    tmp = path.with_name(path.name + ".building")
    tmp.unlink(missing_ok=True)
    try:
        count = _write(tmp, estate, rows)
        _write_equality(tmp, estate, rows, seed)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return DemoSummary(
        path=path, as_of=as_of, seed=seed, homes=homes, tenancies=homes,
        people=len(estate["person_ref"]), alerts=count, **faults,
    )


# --- homes, tenancies and people -------------------------------------------------------------


def _estate(rng: np.random.Generator, homes: int, today: int) -> dict[str, Any]:
    """Properties on made-up streets, one tenancy each, a lead tenant and sometimes a joint one."""
    towns = [(town, a) for a, names in enumerate(_TOWNS) for town in names]
    street_names = [f"{s} {x}" for s in _STREET_STEMS for x in _STREET_SUFFIXES]
    n_combos = len(towns) * _STREETS_PER_TOWN
    # Street names, towns, areas and postcodes per (town, street) combination: small setup loops.
    combo_street, combo_town, combo_area, combo_postcode, combo_patch = [], [], [], [], []
    for t, (town, a) in enumerate(towns):
        picks = rng.choice(len(street_names), _STREETS_PER_TOWN, replace=False)
        sectors = rng.integers(1, 10, _STREETS_PER_TOWN)
        units = rng.integers(0, len(_INWARD_LETTERS), (_STREETS_PER_TOWN, 2))
        town_in_area = t % len(_TOWNS[a])
        for s in range(_STREETS_PER_TOWN):
            district = 1 + town_in_area * 3 + s % 3
            combo_street.append(street_names[picks[s]])
            combo_town.append(town)
            combo_area.append(AREAS[a])
            combo_patch.append(f"{AREAS[a][0]}{town_in_area + 1}")
            combo_postcode.append(
                f"Q{AREAS[a][0]}{district} {sectors[s]}"
                f"{_INWARD_LETTERS[units[s, 0]]}{_INWARD_LETTERS[units[s, 1]]}"
            )
    # Unique (street, house number) slots, 1.6x as many as homes, taken in street order.
    max_no = max(40, -(-homes * 8 // (5 * n_combos)))
    slots = np.sort(rng.choice(n_combos * max_no, homes, replace=False))
    combo = slots // max_no
    house_no = (slots % max_no + 1).astype(str).astype(object)

    asset_ref = _refs("AST", homes, 7)
    tenancy_ref = _refs("TEN", homes, 7)
    start = today - rng.integers(30, 9000, homes)

    has_joint = rng.random(homes) < 0.3
    joint_home = np.flatnonzero(has_joint)
    people = homes + len(joint_home)
    person_home = np.concatenate([np.arange(homes), joint_home])
    joint_of_home = np.full(homes, -1, dtype=np.int64)
    joint_of_home[joint_home] = homes + np.arange(len(joint_home))

    first = rng.integers(0, len(_FIRST_NAMES), people)
    last = rng.integers(0, len(_LAST_NAMES), people)
    # Most joint tenants share the lead tenant's surname.
    share = rng.random(len(joint_home)) < 0.6
    last[homes:][share] = last[joint_home[share]]

    has_email = rng.random(people) < 0.45
    email = np.full(people, _NULL, dtype=object)
    e = np.flatnonzero(has_email)
    first_u = np.strings.lower(np.array(_FIRST_NAMES)[first[e]])
    last_u = np.strings.lower(np.array(_LAST_NAMES)[last[e]])
    number = rng.integers(1, 100, len(e)).astype(str)
    domain = np.array(EMAIL_DOMAINS)[rng.integers(0, len(EMAIL_DOMAINS), len(e))]
    email[e] = np.strings.add(
        np.strings.add(np.strings.add(first_u, "."), np.strings.add(last_u, number)),
        np.strings.add("@", domain),
    ).astype(object)
    channel = np.where(has_email & (rng.random(people) < 0.6), "email", "post").astype(object)
    language = _cats(_LANGUAGES)[rng.choice(len(_LANGUAGES), people, p=_LANGUAGE_P)]
    large_print = (rng.random(people) < 0.03).astype(np.int64)

    return {
        "asset_ref": asset_ref,
        "house_no": house_no,
        "combo": combo,
        "combo_street": _cats(combo_street),
        "combo_town": _cats(combo_town),
        "combo_area": _cats(combo_area),
        "combo_postcode": _cats(combo_postcode),
        "combo_patch": _cats(combo_patch),
        "tenancy_ref": tenancy_ref,
        "tenancy_start": start,
        "person_ref": _refs("PER", people, 7),
        "person_home": person_home,
        "lead": (np.arange(people) < homes).astype(np.int64),
        "joint_of_home": joint_of_home,
        "forename": _cats(_FIRST_NAMES)[first],
        "surname": _cats(_LAST_NAMES)[last],
        "email": email,
        "channel": channel,
        "language": language,
        "large_print": large_print,
    }


# --- alerts ----------------------------------------------------------------------------------


def _alerts(
    rng: np.random.Generator, n: int, today: int, estate: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The cx_alert columns (object arrays, _NULL for NULL) and the count of each fault kind."""
    codes = list(ALERT_CODES)
    weights = np.array([_CODE_WEIGHTS.get(c, 2) for c in codes], dtype=float)
    code_idx = rng.choice(len(codes), n, p=weights / weights.sum())
    subject = rng.choice(3, n, p=[0.70, 0.18, 0.12])  # person, household, address
    is_address = subject == 2
    homes = len(estate["asset_ref"])
    home = rng.integers(0, homes, n)  # more alerts than homes: some homes get several

    # Person alerts sit on the lead or joint tenant; household alerts on the lead tenant (the
    # household's correspondent); address alerts on no one.
    person = home.copy()
    joint = estate["joint_of_home"][home]
    use_joint = (subject == 0) & (joint >= 0) & (rng.random(n) < 0.35)
    person[use_joint] = joint[use_joint]
    person[is_address] = -1
    location_only = is_address & (rng.random(n) < 0.15)  # a bin store or car park, not a home

    combo = estate["combo"][home]
    location_text = np.full(n, _NULL, dtype=object)
    lo = np.flatnonzero(location_only)
    kinds = np.array(_LOCATION_KINDS)[rng.integers(0, len(_LOCATION_KINDS), len(lo))]
    street = estate["combo_street"][combo[lo]].astype(str)
    town = estate["combo_town"][combo[lo]].astype(str)
    location_text[lo] = np.strings.add(
        np.strings.add(np.strings.add(kinds, " by "), street), np.strings.add(", ", town)
    ).astype(object)
    location_postcode = np.where(location_only, estate["combo_postcode"][combo], _NULL)
    location_area = np.where(location_only, estate["combo_area"][combo], _NULL)

    # Dates, as whole days since 1970-01-01; _NA means no date.
    age = rng.integers(0, 1096, n)  # effective within the last three years
    recent = rng.random(n) < 0.06
    age[recent] = rng.integers(0, 60, int(recent.sum()))
    eff = today - age

    source = rng.choice(len(_SOURCES), n, p=_SOURCE_P)
    agy = code_idx == codes.index("AGY") if "AGY" in codes else np.zeros(n, dtype=bool)
    source[agy] = rng.integers(1, 4, int(agy.sum()))
    agency = (source >= 1) & (source <= 3)

    reviewed = (age > 150) & (rng.random(n) < 0.55)
    # Reviewed 5 to 14 months after the start, never after as_of.
    span = np.maximum(np.minimum(age, 420) - 150, 0) + 1
    rev = np.where(reviewed, eff + 150 + (rng.random(n) * span).astype(np.int64), _NA)
    removed = reviewed & (rng.random(n) < 0.12)

    # Some alerts run for a fixed term from their last decision (6, 9 or 12 months: 184 days is
    # never short of six months and 365 never past twelve, so every shipped profile accepts them),
    # a few are ended by hand, and one removed at review ends that day.
    ends = np.full(n, _NA, dtype=np.int64)
    base = np.where(reviewed, rev, eff)
    term = ~removed & (rng.random(n) < 0.3)
    ends = np.where(term, base + rng.choice(np.array([184, 275, 365]), n), ends)
    by_hand = ~removed & ~term & (rng.random(n) < 0.06)
    ends = np.where(by_hand, base + rng.integers(0, today - base + 1), ends)
    ends = np.where(removed, rev, ends)

    # Notification: rarer when an agency supplied the information; never for a location.
    notify = rng.random(n) >= np.where(agency, 0.55, 0.08)
    notify[is_address] = False
    reason_cats = _cats((_NULL, *_REASONS_AGENCY, *_REASONS_STAFF, _REASON_LOCATION))
    reason = np.where(
        agency, 1 + rng.integers(0, 3, n), 1 + len(_REASONS_AGENCY) + rng.integers(0, 3, n)
    )
    reason = np.where(is_address, len(reason_cats) - 1, reason)
    reason = np.where(notify | (~is_address & (rng.random(n) < 0.25)), 0, reason)

    notified = eff + rng.integers(0, 15, n)
    has_notified = notify & (notified <= today)
    has_notified &= ~((age < 60) & (rng.random(n) < 0.4))  # recently added, letter not yet sent
    has_notified &= ~((age >= 60) & (rng.random(n) < 0.03))  # should have been, never was
    notified = np.where(has_notified, notified, _NA)

    received = notified + rng.integers(1, 29, n)
    appealed = has_notified & (rng.random(n) < 0.10) & (received <= today)
    received = np.where(appealed, received, _NA)
    decided = received + rng.integers(5, 40, n)
    is_decided = appealed & (decided <= today) & (rng.random(n) < 0.8)
    decided = np.where(is_decided, decided, _NA)
    upheld = is_decided & (rng.random(n) < 0.3) & ~(reviewed & (rev > decided))
    appeal_outcome = np.where(upheld, 1, np.where(is_decided, 2, 0))
    ends = np.where(upheld & ((ends == _NA) | (ends > decided)), decided, ends)

    # Fault rows: disjoint, so each bad row has exactly one fault and the counts are exact.
    k = max(2, n // 500)
    pick = rng.choice(n, 8 * k, replace=False)
    groups = {kind: pick[i * k:(i + 1) * k] for i, kind in enumerate(FAULT_KINDS)}
    dup_copies = pick[7 * k:]
    eb = groups["ends_before_start"]
    ends[eb] = eff[eb] - rng.integers(1, 91, k)

    status = np.where((ends != _NA) & (ends <= today), "ended", "active").astype(object)
    last_day = np.maximum.reduce([eff, rev, notified, received, decided, np.where(ends <= today, ends, _NA)])
    seconds = last_day * 86_400 + rng.integers(7 * 3600 + 1800, 18 * 3600, n)
    updated_at = np.strings.add(
        np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s"), "+00:00"
    ).astype(object)

    notes = _cats([note for c in codes for note in _NOTES.get(c, _GENERIC_NOTES)] + [_NULL])
    no_note = rng.random(n) < 0.05
    story = code_idx * 3 + rng.integers(0, 3, n)  # which of the code's three incidents
    note = notes[np.where(no_note, -1, story)]
    # The reason the resident may be told tells the same incident as the note, in the resident's
    # words; a few have none yet (their letters are held), and an address alert has no resident.
    # Drawn after everything else, so the other columns are those of the same seed before it existed.
    reasons = _cats([r for c in codes for r in _RESIDENT_REASONS.get(c, _GENERIC_RESIDENT_REASONS)] + [_NULL])
    share = np.where(age < 60, NO_RESIDENT_REASON_SHARE_RECENT, NO_RESIDENT_REASON_SHARE)
    no_reason = is_address | (rng.random(n) < share)
    resident_reason = reasons[np.where(no_reason, -1, story)]
    # Drawn after the reasons, for the same reason.
    area_of_combo = np.array([AREAS.index(a) for a in estate["combo_area"]], dtype=np.int64)
    contact = _contact_instructions(rng, codes, code_idx, area_of_combo[combo])

    days = _DayText([eff, rev, notified, received, decided, ends])
    cols: dict[str, np.ndarray] = {
        "alert_ref": _refs("CA", n, 7, start=100_001),
        "alert_type": _cats(codes)[code_idx],
        "subject_kind": _cats(_SUBJECTS)[subject],
        "person_ref": _take(estate["person_ref"], person),
        "tenancy_ref": _take(estate["tenancy_ref"], np.where(is_address, -1, home)),
        "asset_ref": _take(estate["asset_ref"], np.where(location_only, -1, home)),
        "location_text": location_text,
        "location_postcode": location_postcode,
        "location_area": location_area,
        "effective_from": days(eff),
        "ends_on": days(ends),
        "last_reviewed_on": days(rev),
        "review_outcome": _cats((_NULL, "retained", "removed"))[reviewed.astype(np.int64) + removed],
        "status": status,
        "notify_resident": notify.astype(np.int64),
        "no_notify_reason": reason_cats[reason],
        "notified_on": days(notified),
        "appeal_received_on": days(received),
        "appeal_decided_on": days(decided),
        "appeal_outcome": _cats((_NULL, "upheld", "dismissed"))[appeal_outcome],
        "source": _cats(_SOURCES)[source],
        "note": note,
        "resident_reason": resident_reason,
        "contact_instruction": contact,
        "updated_at": updated_at,
    }
    _inject_faults(cols, groups, dup_copies, eff)
    return cols, {kind: len(rows) for kind, rows in groups.items()}


def _contact_instructions(
    rng: np.random.Generator, codes: list[str], code_idx: np.ndarray, area: np.ndarray
) -> np.ndarray:
    """Each alert's contact instruction (_NULL for none), naming an officer of its area."""
    n = len(code_idx)
    officers = len(AREAS) * _OFFICERS_PER_AREA
    first = rng.integers(0, len(_FIRST_NAMES), officers)
    last = rng.integers(0, len(_LAST_NAMES), officers)
    role = rng.integers(0, len(_OFFICER_ROLES), officers)
    extension = 100 + rng.choice(800, officers, replace=False)  # 01632 960100-960899: Ofcom's drama range
    names = [f"{_FIRST_NAMES[f]} {_LAST_NAMES[s]}, {_OFFICER_ROLES[r]}" for f, s, r in zip(first, last, role, strict=True)]
    phones = [f"01632 960{x}" for x in extension.tolist()]
    # Every (template, officer) text once; an alert picks one by index. Per code: where its
    # templates start and how many there are (the codes without their own share the last ones).
    templates, start, count = [], [], []
    for code in codes:
        own = _CONTACT_INSTRUCTIONS.get(code, _OTHER_CONTACT_INSTRUCTIONS)
        start.append(len(templates))
        count.append(len(own))
        templates.extend(own)
    texts = _cats([contact_instruction(t, names[o], phones[o]) for t in templates for o in range(officers)] + [_NULL])
    needed = np.array([c in _CONTACT_INSTRUCTIONS for c in codes], dtype=bool)[code_idx]
    template = np.array(start)[code_idx] + (rng.random(n) * np.array(count)[code_idx]).astype(np.int64)
    officer = area * _OFFICERS_PER_AREA + rng.integers(0, _OFFICERS_PER_AREA, n)
    has_one = np.where(needed, rng.random(n) >= NO_CONTACT_INSTRUCTION_SHARE,
                       rng.random(n) < OTHER_CONTACT_INSTRUCTION_SHARE)
    return texts[np.where(has_one, template * officers + officer, -1)]


def _inject_faults(
    cols: dict[str, np.ndarray], groups: dict[str, np.ndarray], dup_copies: np.ndarray, eff: np.ndarray
) -> None:
    """Spoil the chosen rows the ways real exports are spoilt (ends_before_start is done already)."""
    for j, i in enumerate(groups["missing_alert_id"]):
        cols["alert_ref"][i] = None if j % 2 == 0 else ""
    for i in groups["missing_location"]:
        for name in ("asset_ref", "location_text", "location_postcode", "location_area"):
            cols[name][i] = _NULL
    for j, i in enumerate(groups["unknown_alert_code"]):
        cols["alert_type"][i] = _UNKNOWN_CODES[j % len(_UNKNOWN_CODES)]
    # Bad dates go in effective_from or last_reviewed_on, one column per row.
    iso = np.datetime_as_string(eff.astype("datetime64[D]"))
    for j, i in enumerate(groups["unparseable_date"]):
        y, m, d = str(iso[i]).split("-")
        value = (f"{d}/{m}/{y}", "unknown", "TBC", f"{d}/{m}/{y[2:]}")[j % 4]
        cols["effective_from" if j % 2 == 0 else "last_reviewed_on"][i] = value
    for j, i in enumerate(groups["impossible_date"]):
        year = str(iso[i])[:4]
        value = f"{year}-{('02-30', '04-31', '06-31', '09-31', '11-31', '02-31')[j % 6]}"
        cols["effective_from" if j % 2 == 0 else "last_reviewed_on"][i] = value
    cols["alert_ref"][dup_copies] = cols["alert_ref"][groups["duplicate_alert_id"]]


# --- helpers ---------------------------------------------------------------------------------


def _cats(values: Any) -> np.ndarray:
    """An object array of shared Python values, for cheap categorical columns by indexing."""
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _take(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """values[idx] with _NULL where idx is -1."""
    return np.append(values, _NULL)[np.where(idx < 0, len(values), idx)]


def _refs(prefix: str, count: int, width: int, *, start: int = 1) -> np.ndarray:
    """Zero-padded references such as AST0000001, as an object array."""
    numbers = np.arange(start, start + count).astype(str)
    return np.strings.add(prefix, np.strings.zfill(numbers, width)).astype(object)


class _DayText:
    """Day numbers to shared ISO date strings via one lookup table (a million dates, ~1k strings)."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        stacked = np.concatenate(arrays)
        present = stacked[stacked != _NA]
        self.low = int(present.min()) if present.size else 0
        high = int(present.max()) if present.size else 0
        span = np.arange(self.low, high + 1).astype("datetime64[D]")
        self.table = _cats([*np.datetime_as_string(span).tolist(), _NULL])

    def __call__(self, days: np.ndarray) -> np.ndarray:
        return self.table[np.where(days == _NA, -1, days - self.low)]


# --- writing ---------------------------------------------------------------------------------


def _write(path: Path, estate: dict[str, Any], alerts: dict[str, np.ndarray]) -> int:
    """Create the schema, bulk insert in one unjournalled transaction, and count the view's rows.

    The view LEFT JOINs on primary keys, so its rows are cx_alert's; counting the table is instant.
    """
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-131072")
        con.execute("BEGIN")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                con.execute(statement)
        con.executemany("INSERT INTO cx_area VALUES (?, ?)", [(a, a.title()) for a in AREAS])
        con.executemany(
            "INSERT INTO cx_alert_type VALUES (?, ?)", [(c.code, c.title) for c in ALERT_CODES.values()]
        )
        combo = estate["combo"]
        con.executemany(
            "INSERT INTO cx_property VALUES (?, ?, ?, ?, ?, ?, ?)",
            zip(
                estate["asset_ref"].tolist(),
                estate["house_no"].tolist(),
                estate["combo_street"][combo].tolist(),
                estate["combo_town"][combo].tolist(),
                estate["combo_postcode"][combo].tolist(),
                estate["combo_area"][combo].tolist(),
                estate["combo_patch"][combo].tolist(),
                strict=True,
            ),
        )
        start = np.datetime_as_string(estate["tenancy_start"].astype("datetime64[D]"))
        con.executemany(
            "INSERT INTO cx_tenancy VALUES (?, ?, ?)",
            zip(estate["tenancy_ref"].tolist(), estate["asset_ref"].tolist(), start.tolist(), strict=True),
        )
        con.executemany(
            "INSERT INTO cx_contact VALUES (?, ?, ?, ?, ?, NULLIF(?, ''), ?, ?, ?)",
            zip(
                estate["person_ref"].tolist(),
                estate["forename"].tolist(),
                estate["surname"].tolist(),
                estate["tenancy_ref"][estate["person_home"]].tolist(),
                estate["lead"].tolist(),
                estate["email"].tolist(),
                estate["channel"].tolist(),
                estate["language"].tolist(),
                estate["large_print"].tolist(),
                strict=True,
            ),
        )
        placeholders = ", ".join(
            "?" if name in ("alert_ref", "notify_resident") else "NULLIF(?, '')" for name in _ALERT_COLUMNS
        )
        con.executemany(
            f"INSERT INTO cx_alert ({', '.join(_ALERT_COLUMNS)}) VALUES ({placeholders})",
            zip(*(alerts[name].tolist() for name in _ALERT_COLUMNS), strict=True),
        )
        for statement in _INDEXES.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute(_VIEW)
        con.execute("COMMIT")
        columns = [d[0] for d in con.execute(f"SELECT * FROM {VIEW_NAME} LIMIT 0").description]
        if tuple(columns) != SOURCE_COLUMNS:  # pragma: no cover - guards edits to _VIEW
            raise RuntimeError(f"{VIEW_NAME} columns drifted from the source contract: {columns}")
        return int(con.execute("SELECT count(*) FROM cx_alert").fetchone()[0])
    finally:
        con.close()


# --- equality monitoring ---------------------------------------------------------------------

EQUALITY_VIEW = "equality_counts"

# Made-up shares of the lead tenants' recorded characteristics: (group, share of all households,
# share of flagged households). Mental health is over-represented among flagged households, as
# Hexagon's impact assessment expects (Appendix 1), so the demo report has something to show;
# the tiny groups exercise small-count suppression.
_EQUALITY_GROUPS: tuple[tuple[str, tuple[tuple[str, float, float], ...]], ...] = (
    ("Age band", (
        ("16-24", 0.06, 0.08), ("25-34", 0.16, 0.18), ("35-49", 0.28, 0.30), ("50-64", 0.27, 0.26),
        ("65 and over", 0.20, 0.15), ("Not recorded", 0.03, 0.03),
    )),
    ("Sex", (("Female", 0.56, 0.50), ("Male", 0.41, 0.47), ("Not recorded", 0.03, 0.03))),
    ("Disability", (
        ("Mental health condition", 0.08, 0.24), ("Physical or mobility", 0.10, 0.09),
        ("Other disability", 0.05, 0.05), ("No disability", 0.65, 0.52), ("Not recorded", 0.12, 0.10),
    )),
    ("Ethnic group", (
        ("White", 0.78, 0.78), ("Asian or Asian British", 0.08, 0.08), ("Black or Black British", 0.06, 0.06),
        ("Mixed or multiple", 0.03, 0.03), ("Other ethnic group", 0.003, 0.003), ("Not recorded", 0.047, 0.047),
    )),
    ("Gender identity differs from sex registered at birth", (
        ("Yes", 0.003, 0.003), ("No", 0.85, 0.85), ("Not recorded", 0.147, 0.147),
    )),
)

_EQUALITY_SCHEMA = f"""
CREATE TABLE cx_equality_group (
    characteristic TEXT NOT NULL,
    group_label TEXT NOT NULL,
    characteristic_order INTEGER NOT NULL,
    group_order INTEGER NOT NULL,
    PRIMARY KEY (characteristic, group_label)
);
CREATE TABLE cx_tenancy_equality (
    tenancy_ref TEXT NOT NULL REFERENCES cx_tenancy(tenancy_ref),
    characteristic TEXT NOT NULL,
    group_label TEXT NOT NULL,
    PRIMARY KEY (tenancy_ref, characteristic)
) WITHOUT ROWID;
-- Aggregate counts only: what include/sql/equality_counts.sql reads (README, "Equality monitoring").
CREATE VIEW {EQUALITY_VIEW} AS
SELECT g.characteristic AS characteristic,
       g.group_label AS group_label,
       COUNT(e.tenancy_ref) AS households,
       COUNT(f.tenancy_ref) AS flagged_households
FROM cx_equality_group AS g
LEFT JOIN cx_tenancy_equality AS e
    ON e.characteristic = g.characteristic AND e.group_label = g.group_label
LEFT JOIN (SELECT DISTINCT tenancy_ref FROM cx_alert WHERE status = 'active' AND tenancy_ref IS NOT NULL) AS f
    ON f.tenancy_ref = e.tenancy_ref
GROUP BY g.characteristic, g.group_label, g.characteristic_order, g.group_order
ORDER BY g.characteristic_order, g.group_order
"""


def _write_equality(path: Path, estate: dict[str, Any], alerts: dict[str, np.ndarray], seed: int) -> None:
    """The lead tenants' characteristics (one group per tenancy and characteristic) and the
    `equality_counts` view. A separate Generator, so the rest of the database is unchanged."""
    rng = np.random.default_rng([seed, 7_011])
    tenancies = estate["tenancy_ref"]
    active = (alerts["status"] == "active") & (alerts["tenancy_ref"] != _NULL)
    flagged_refs = set(alerts["tenancy_ref"][active].tolist())  # hashing: np.isin sorts objects, slow at 1M
    flagged = np.fromiter((t in flagged_refs for t in tenancies.tolist()), dtype=bool, count=len(tenancies))
    groups, rows = [], []
    for c, (characteristic, options) in enumerate(_EQUALITY_GROUPS):
        labels = _cats([label for label, _, _ in options])
        groups.extend((characteristic, label, c, g) for g, (label, _, _) in enumerate(options))
        share_all = np.array([a for _, a, _ in options])
        share_flagged = np.array([f for _, _, f in options])
        u = rng.random(len(tenancies))
        pick = np.where(
            flagged,
            np.searchsorted(np.cumsum(share_flagged / share_flagged.sum()), u, side="right"),
            np.searchsorted(np.cumsum(share_all / share_all.sum()), u, side="right"),
        )
        pick = np.minimum(pick, len(options) - 1)
        rows.append(zip(tenancies.tolist(), [characteristic] * len(tenancies), labels[pick].tolist(), strict=True))
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN")
        for statement in _EQUALITY_SCHEMA.split(";"):
            if statement.strip():
                con.execute(statement)
        con.executemany("INSERT INTO cx_equality_group VALUES (?, ?, ?, ?)", groups)
        for chunk in rows:
            con.executemany("INSERT INTO cx_tenancy_equality VALUES (?, ?, ?)", chunk)
        con.execute("COMMIT")
    finally:
        con.close()

