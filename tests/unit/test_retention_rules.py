"""Retention's date and clearing rules, pure (Teign 13, Dover 10). Synthetic data only."""

from __future__ import annotations

import datetime as dt
import json

from cautionflow.profiles import load_profile, shipped_profiles
from cautionflow.services.retention import ANONYMISED, _anonymise_changes, ended_on, is_due

D = dt.date


def alert(**values):
    return {"ends_on": None, "first_seen_on": D(2024, 1, 1), "last_changed_on": D(2025, 7, 1), **values}


def test_no_shipped_profile_pretends_to_know_the_period():
    # Teign 13 defers to "the organisational data retention policy"; Dover 10 to the legislation.
    assert all(load_profile(name).retention_months_after_end is None for name in shipped_profiles())


def test_the_period_runs_from_the_recorded_end():
    assert ended_on(alert(ends_on=D(2025, 6, 30)), D(2025, 7, 1)) == D(2025, 6, 30)  # the source's date
    assert ended_on(alert(), D(2025, 7, 1)) == D(2025, 7, 1)  # left the source: the day the register saw it
    assert ended_on(alert(ends_on=D(2027, 1, 1)), D(2025, 7, 1)) == D(2025, 7, 1)  # never a future end
    assert ended_on(alert(), None) == D(2025, 7, 1)  # inserted already ended: when first recorded as such


def test_due_on_the_same_day_of_the_month_after_the_period():
    assert not is_due(D(2025, 6, 30), 12, D(2026, 6, 29))
    assert is_due(D(2025, 6, 30), 12, D(2026, 6, 30))
    assert is_due(D(2024, 1, 31), 1, D(2024, 2, 29))  # the month's last day


def test_history_keeps_which_fields_changed_but_not_their_values():
    raw = json.dumps({"person_name": ["Alex", "Alex Example"], "note": [None, "NOTE"], "area": ["N", "S"]})
    new, touched = _anonymise_changes(raw)
    assert touched
    assert json.loads(new) == {"person_name": [ANONYMISED, ANONYMISED], "note": [None, ANONYMISED], "area": ["N", "S"]}
    assert _anonymise_changes(new) == (new, False)  # idempotent
    assert _anonymise_changes(None) == (None, False)


def test_a_lookups_query_keeps_what_was_asked_by_but_not_what_names_or_locates_the_resident():
    from cautionflow.services.retention import _anonymise_query

    raw = json.dumps({"q": "27 Yew Court", "postcode": "EW1 2AB", "asset_ref": "H0027", "page": 2, "page_size": 20})
    new, touched = _anonymise_query(raw)
    assert touched and json.loads(new) == {"q": ANONYMISED, "postcode": ANONYMISED, "asset_ref": ANONYMISED,
                                           "page": 2, "page_size": 20}
    assert _anonymise_query(new) == (new, False)  # idempotent
    assert _anonymise_query('{"alert_id": "N1"}') == ('{"alert_id": "N1"}', False)  # an alert id locates no one
    assert _anonymise_query("not json") == ("not json", False)
