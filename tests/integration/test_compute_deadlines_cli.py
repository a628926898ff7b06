"""`cautionflow compute-deadlines` run as a real process on a CSV file."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

HEADER = ("alert_id,alert_code,effective_from,last_reviewed_on,ends_on,notified_on,appeal_received_on,"
          "postcode,note")
ROWS = [
    # Dover 6.21: due Sunday 30 May 2027 moves past the spring bank holiday to Tuesday 1 June
    # Dover 6.34/6.35: 20 and 10 working days across Christmas
    'A-3,VIP,2026-05-30,,,2026-12-10,2026-12-22,CT16 3PJ,"Visit in pairs, always"',
    "A-1,XYZ,2026-05-30,,,,,CT16 1AA,unknown code",
    "A-2,CM,31/12/2025,,,,,,bad date",
    "A-9,DNV,2025-12-25,,2026-06-25,,,, NA ",  # Dover 6.16: 6 months is allowed
    "A-4,VIP,2026-05-30,,2026-11-29,,,,too short",  # Dover 6.16: under 6 months
]
ADDED = ["review_due", "review_window_opens", "expires_on", "appeal_deadline", "appeal_response_due",
         "overdue", "error"]
QUOTED_HEADER = ",".join(f'"{name}"' for name in (*HEADER.split(","), *ADDED))


@pytest.fixture(scope="module")
def cautionflow() -> list[str]:
    """The real command line; skipped, saying why, while another command module is still missing."""
    probe = subprocess.run([sys.executable, "-c", "import cautionflow.cli as c; c.build_parser()"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the cautionflow CLI cannot start yet: " + probe.stderr.strip().splitlines()[-1])
    return [sys.executable, "-m", "cautionflow"]


def run(cautionflow: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cautionflow, "compute-deadlines", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def alerts_csv(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    return path


def test_appends_the_deadlines_to_every_row_in_order(cautionflow: list[str], alerts_csv: Path) -> None:
    done = run(cautionflow, "--policy", "dover", "--input", str(alerts_csv), "--as-of", "2027-06-02")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert done.stdout.splitlines()[0] == QUOTED_HEADER  # the one CSV writer: every text cell quoted
    assert [r["alert_id"] for r in rows] == ["A-3", "A-1", "A-2", "A-9", "A-4"]

    first = rows[0]
    assert first["note"] == "Visit in pairs, always"  # extra columns pass through untouched
    assert first["postcode"] == "CT16 3PJ"
    assert {k: first[k] for k in ADDED} == {
        "review_due": "2027-06-01",  # Dover 6.21
        "review_window_opens": "2027-05-22",
        "expires_on": "2027-05-30",
        "appeal_deadline": "2027-01-12",  # Dover 6.34
        "appeal_response_due": "2027-01-08",  # Dover 6.35
        "overdue": "true",
        "error": "",
    }
    assert rows[3]["note"] == " NA "  # not read as a missing value, spaces kept
    assert (rows[3]["review_due"], rows[3]["overdue"]) == ("2026-06-25", "true")
    assert rows[3]["appeal_deadline"] == ""

    assert rows[1]["error"] == "alert_code: unknown code 'XYZ'"
    assert rows[2]["error"] == "effective_from: '31/12/2025' is not a date written YYYY-MM-DD"
    assert rows[4]["error"] == "ends_on: 2026-11-29 is less than 6 months after effective_from 2026-05-30"
    for bad in (rows[1], rows[2], rows[4]):
        assert [bad[k] for k in ADDED[:5]] == [""] * 5
        assert bad["overdue"] == "false"


def test_a_profile_file_path_works_like_a_shipped_name(
    cautionflow: list[str], alerts_csv: Path, tmp_path: Path
) -> None:
    profile = tmp_path / "acme.yaml"
    profile.write_text("review:\n  interval_months: 3\n", encoding="utf-8")
    done = run(cautionflow, "--policy", str(profile), "--input", str(alerts_csv), "--as-of", "2026-01-01")
    assert done.returncode == 0, done.stderr
    first = next(csv.DictReader(io.StringIO(done.stdout)))
    assert (first["review_due"], first["expires_on"], first["overdue"]) == ("2026-08-30", "", "false")


def test_an_empty_register_gives_just_the_header(cautionflow: list[str], tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(HEADER + "\n", encoding="utf-8")
    done = run(cautionflow, "--policy", "teign", "--input", str(path), "--as-of", "2026-01-01")
    assert done.returncode == 0, done.stderr
    assert done.stdout == QUOTED_HEADER + "\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "dover", "--input", "{missing}"], "cautionflow: error: input file not found: "),
        (["--policy", "dovr", "--input", "{csv}"],
         "cautionflow: error: unknown policy profile 'dovr'; "
         "shipped profiles: dover, hexagon, karbon, teign, wandle"),
        (["--policy", "dover", "--input", "{no_column}"],
         "cautionflow: error: input file {no_column} is missing required column(s): appeal_received_on"),
        (["--policy", "dover", "--input", "{empty}"], "cautionflow: error: input file is empty: "),
        (["--policy", "dover", "--input", "{rerun}"],
         "cautionflow: error: input already has output column(s): review_due; remove them first"),
        (["--policy", "{bad_profile}", "--input", "{csv}"],
         "cautionflow: error: profile 'bad.yaml': review.interval_months: must be a positive integer"),
    ],
)
def test_problems_the_user_can_fix_are_one_line_on_stderr_and_exit_2(
    cautionflow: list[str], alerts_csv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    files = {
        "no_column.csv": HEADER.replace(",appeal_received_on", "") + "\n",
        "empty.csv": "",
        "rerun.csv": HEADER + ",review_due\n",
        "bad.yaml": "review:\n  interval_months: 0\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    paths = {
        "missing": str(tmp_path / "nowhere.csv"), "csv": str(alerts_csv),
        "no_column": str(tmp_path / "no_column.csv"),
        "empty": str(tmp_path / "empty.csv"), "rerun": str(tmp_path / "rerun.csv"),
        "bad_profile": str(tmp_path / "bad.yaml"),
    }
    done = run(cautionflow, *[a.format(**paths) for a in args], "--as-of", "2026-01-01")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(message.format(**paths))
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_as_of_date_is_a_usage_error(cautionflow: list[str], alerts_csv: Path) -> None:
    done = run(cautionflow, "--policy", "dover", "--input", str(alerts_csv), "--as-of", "02/06/2027")
    assert done.returncode == 2
    assert "--as-of: '02/06/2027' is not a date written YYYY-MM-DD" in done.stderr
