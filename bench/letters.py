"""Benchmark: queue and render 10,000 resident letters (HTML and an A4 PDF each).

    python -m bench.letters [--letters 10000] [--unicode-every 50] [--keep]

A synthetic housing database (SQLite, in a temporary folder) holds alerts that each owe one letter
today, spread over the five kinds (alert added, review kept or removed, appeal upheld or
dismissed), one in ten large print, and one in 50 (`--unicode-every`) for a resident whose name
has letters beyond Latin-1 (Łukasiewicz), whose PDF embeds DejaVu Sans. The sync and deadlines
steps run first (not timed). Then:

* **html** and **pdf**: each format on its own, over a sample, in letters per second; the PDFs
  with the core font and those embedding the Unicode font separately;
* **queue**: the `letters` step end to end: read the register and deadlines, decide what is owed,
  render HTML and PDF, write the PDF files and queue every letter in one insert. Goal: under two
  minutes for 10,000 letters on the 2-core development machine;
* **rerun**: the same day again: nothing is rendered, nothing queued.

Synthetic data only (example domains).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

AS_OF = dt.date(2026, 11, 23)
NAMES = ("Alex Example", "Sam Sample", "Eve Example", "Jo Testing", "Zoë Placeholder", "Rhys Dummy", "Nia Demo")
UNICODE_NAMES = ("Zoë Ó Briain-Łukasiewicz", "Ŵyn Ap Siôn", "Łucja Żółć")
STREETS = ("Larkspur Close", "Mill Lane", "Quay Street", "Orchard Way", "Station Road", "Beech Grove")
CODES = ("VIP", "DOG", "CM", "NLF", "NLM", "NFV", "NMV", "WPN", "SPOC")
GOAL_SECONDS = 120.0


def source_rows(count: int, unicode_every: int = 50) -> list[dict]:
    from cautionflow.domain.contract import SOURCE_COLUMNS

    rows = []
    for i in range(count):
        row = {c: None for c in SOURCE_COLUMNS}
        row.update(
            alert_id=f"CX-{i:07d}", alert_code=CODES[i % len(CODES)], subject_type="person", person_ref=f"P{i:07d}",
            person_name=UNICODE_NAMES[i % len(UNICODE_NAMES)] if unicode_every and i % unicode_every == 7
            else NAMES[i % len(NAMES)], tenancy_ref=f"T{i:07d}", asset_ref=f"H{i:07d}",
            address=f"{i % 200 + 1} {STREETS[i % len(STREETS)]}, Eastwick", postcode=f"EW{i % 9 + 1} {i % 9}AB",
            area="NORTH", status="active", notify_resident=1, source="staff", preferred_channel="post",
            language="en", large_print=int(i % 10 == 0), updated_at="2026-11-01T09:00:00",
            # Issue 14: without a reason for the resident every decision letter would be held.
            resident_reason="One of our operatives was threatened during a visit to your home.",
        )
        kind = i % 5
        if kind == 0:
            row.update(effective_from=(AS_OF - dt.timedelta(days=i % 50)).isoformat())
        else:
            row.update(effective_from="2026-01-05", notified_on="2026-01-06")
        if kind == 1:
            row.update(last_reviewed_on="2026-11-02", review_outcome="retained")
        elif kind == 2:
            row.update(last_reviewed_on="2026-11-02", review_outcome="removed", status="ended")
        elif kind in (3, 4):
            row.update(appeal_received_on="2026-10-01", appeal_decided_on="2026-10-20",
                       appeal_outcome="upheld" if kind == 3 else "dismissed", status="ended" if kind == 3 else "active")
        rows.append(row)
    return rows


def write_source(path: Path, rows: list[dict]) -> None:
    import sqlite3

    from cautionflow.domain.contract import SOURCE_COLUMNS

    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f"CREATE TABLE caution_alerts_export ({', '.join(SOURCE_COLUMNS)})")
        conn.executemany(
            f"INSERT INTO caution_alerts_export VALUES ({', '.join('?' * len(SOURCE_COLUMNS))})",
            [tuple(r[c] for c in SOURCE_COLUMNS) for r in rows],
        )
    conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.letters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=2_000, help="letters timed per format on its own")
    parser.add_argument("--unicode-every", type=int, default=50,
                        help="one letter in N names a resident beyond Latin-1 (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args(argv)

    from cautionflow.adapters.pdf import needs_unicode
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.templates import renderer
    from cautionflow.config import parse_config
    from cautionflow.domain.letters import owed_letters
    from cautionflow.services.letters import letter_pdf, queue_letters, render_html
    from cautionflow.steps import policy_profile, run_deadlines, run_sync

    folder = Path(tempfile.mkdtemp(prefix="cautionflow-bench-letters-"))
    write_source(folder / "housing.db", source_rows(args.letters, args.unicode_every))
    config = parse_config({
        "organisation": "Example Homes", "policy": "teign", "register_url": f"sqlite:///{folder / 'register.db'}",
        "source": {"url": f"sqlite:///{folder / 'housing.db'}"}, "output_dir": str(folder / "reports"),
        "letters": {"output_dir": str(folder / "letters"), "contact": {  # synthetic, as every letter carries one
            "address": ["Civic Offices", "1 Harbour Way", "Westford", "WF1 1AA"], "phone": "01632 960123",
            "appeals_email": "appeals@example-homes.example", "signed_by": "Jordan Example",
            "signed_title": "Tenancy Services Manager"}},
    }, home=Path(__file__).resolve().parents[1])
    started = time.perf_counter()
    run_sync(config, as_of=AS_OF, run_id="bench-sync")
    run_deadlines(config, as_of=AS_OF, run_id="bench-deadlines")
    print(f"setup: {args.letters:,} alerts synced and deadlines computed in {time.perf_counter() - started:.1f} s")

    profile = policy_profile(config)
    render = renderer(config)
    register = Register(config.register_url)
    try:
        plan = owed_letters(register.letter_reads.alerts_with_deadlines(), profile, AS_OF)
        sample = plan.letters[: args.sample]
        started = time.perf_counter()
        contact = config.letters.contact
        bodies = [render_html(render, x, organisation=config.organisation, contact=contact)[1] for x in sample]
        html_rate = len(sample) / (time.perf_counter() - started)
        print(f"html: {html_rate:,.0f} letters/s (HTML and the PDF's body, {len(sample):,} letters)")
        for label, wide in (("core font", False), ("DejaVu Sans embedded", True)):
            chosen = [(x, b) for x, b in zip(sample, bodies, strict=True)
                      if needs_unicode(x.person_name, *x.address_lines) is wide]
            if not chosen:
                continue
            started = time.perf_counter()
            sizes = [len(letter_pdf(x, b, organisation=config.organisation, contact=contact)) for x, b in chosen]
            rate = len(chosen) / (time.perf_counter() - started)
            print(f"pdf:  {rate:,.0f} letters/s (A4, {label}, {len(chosen):,} letters, "
                  f"{sum(sizes) / len(sizes) / 1024:.1f} KiB each)")

        # Through Airflow's ObjectStoragePath, as the letters step writes them (file:// here).
        from cautionflow.adapters.storage import storage_path

        letters_folder = storage_path(config, config.letters.output_dir)
        started = time.perf_counter()
        summary = queue_letters(register, profile, as_of=AS_OF, run_id="bench", render=render,
                                output_dir=letters_folder, organisation=config.organisation,
                                contact=contact)
        took = time.perf_counter() - started
        print(f"queue: {summary.queued:,} letters decided, rendered (HTML and PDF), written and queued in "
              f"{took:.1f} s = {summary.queued / took:,.0f} letters/s (goal: {args.letters:,} in under "
              f"{GOAL_SECONDS:.0f} s: {'met' if took < GOAL_SECONDS else 'NOT met'})")
        started = time.perf_counter()
        rerun = queue_letters(register, profile, as_of=AS_OF, run_id="bench-rerun", render=render,
                              output_dir=letters_folder, organisation=config.organisation,
                              contact=contact)
        print(f"rerun: {rerun.queued} queued, {rerun.already_queued:,} already queued, "
              f"{time.perf_counter() - started:.1f} s")
    finally:
        register.dispose()
    if args.keep:
        print(f"kept: {folder}")
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return 0 if summary.queued == args.letters else 1


if __name__ == "__main__":
    raise SystemExit(main())
