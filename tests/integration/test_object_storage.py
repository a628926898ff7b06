"""Every file through Airflow's object storage (issue 17): with `output_dir: s3://cautionflow/reports`,
`letters.output_dir: s3://cautionflow/letters` and `storage_conn_id`, the command line writes and
reads letters, print batches, translations, reports, governance reports and subject access exports
in the bucket (moto's S3 server, `tests/object_store.py`, reached through an Airflow connection given
in the environment as a deployment gives its real one), and nothing in the local folders; retention
deletes a letter's object; the register page serves a report and a letter's PDF from the bucket.
A `file:///abs/path` URL is the local disk by another name. Synthetic data only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pypdf import PdfReader

from cautionflow.profiles import PROFILE_DIR
from tests.deployment import CONTACT, translated_pdf
from tests.object_store import MotoS3, moto_s3
from tests.smtp_server import serving
from tests.support import AS_OF, REPO, alert_row, cautionflow, pdf_text, write_sqlite_source

CONN_ID = "cautionflow_storage"
DAY = AS_OF.isoformat()
D1, D2 = dt.date(2025, 6, 2), dt.date(2025, 7, 1)  # GONE is added, then ended: long enough ago for retention
GONE = {"alert_id": "GONE", "person_ref": "P-GONE", "person_name": "Gwen Gone", "address": "3 Birch Way, Eastwick",
        "postcode": "EW9 9ZZ", "effective_from": "2025-05-26"}
TODAY = [
    alert_row(alert_id="ADD", person_ref="P-ADD", person_name="Alex Added", address="1 Larkspur Close, Eastwick",
              effective_from="2026-11-20"),
    alert_row(alert_id="POLSKI", person_ref="P-PL", person_name="Piotr Example", address="4 Bay View",
              effective_from="2026-11-18", language="pl"),
]


def source(day: dt.date) -> list[dict]:
    if day == D1:
        return [alert_row(**GONE)]
    ended = alert_row(**GONE, status="ended", ends_on="2025-06-30")
    return [ended] if day == D2 else [ended, *TODAY]


def write_deployment(folder: Path, port: int, *, reports: str, letters: str) -> Path:
    """A config file in `folder` (the project home): a SQLite register and source, Teign's profile
    with a 12-month retention period, reports and letters where the test says."""
    profile = yaml.safe_load((PROFILE_DIR / "teign.yaml").read_text())
    profile["retention_months_after_end"] = 12
    (folder / "teign-retention.yaml").write_text(yaml.safe_dump(profile))
    (folder / "var").mkdir(exist_ok=True)
    config = folder / "cautionflow.yaml"
    config.write_text(yaml.safe_dump({
        "organisation": "Example Homes",
        "policy": "teign-retention.yaml",
        "register_url": "sqlite:///var/register.db",
        "source": {"url": "sqlite:///var/housing.db"},
        "output_dir": reports,
        "storage_conn_id": CONN_ID,
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                 "sender": "Example Homes <alerts@example.org>"},
        "letters": {"output_dir": letters, "contact": CONTACT},
    }))
    return config


def run(config: Path, env: dict[str, str], *args: str, as_of: dt.date | None = AS_OF) -> dict:
    """One command as cron or an officer runs it, in its own process; its JSON summary."""
    dated = ("--as-of", as_of.isoformat()) if as_of else ()
    done = cautionflow(*args, "--config", str(config), *dated, cwd=config.parent, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def pipeline_day(config: Path, env: dict[str, str], day: dt.date, *steps: str) -> dict[str, dict]:
    write_sqlite_source(config.parent / "var" / "housing.db", source(day))
    return {step: run(config, env, "run", step, as_of=day) for step in steps}


def letter_ids(config: Path, env: dict[str, str]) -> dict[str, str]:
    """{alert id: letter id} of the queue, as `cautionflow letters list` shows it (a tab-separated table)."""
    listed = cautionflow("letters", "list", "--config", str(config), cwd=config.parent, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = csv.DictReader(listed.stdout.strip().splitlines()[:-1], delimiter="\t")
    return {row["alert"]: row["id"] for row in rows}


def local_files(folder: Path) -> list[str]:
    """Every file under the project home but the config, the profile, the databases and the
    translation the officer supplies: what cautionflow wrote on the local disk."""
    ignored = {"cautionflow.yaml", "teign-retention.yaml", "piotr-pl.pdf"}
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.name not in ignored and not p.name.endswith((".db", ".db-journal", ".lock")))


@pytest.fixture(scope="module")
def store() -> Iterator[MotoS3]:
    with moto_s3("cautionflow") as bucket:
        yield bucket


@pytest.fixture(scope="module")
def on_s3(store, tmp_path_factory) -> Iterator[tuple[Path, dict[str, str], dict[str, dict]]]:
    """A deployment whose every output is in the bucket, run through three days by the command line:
    (its folder, the environment its processes get, what each command said)."""
    folder = tmp_path_factory.mktemp("on_s3")
    env = store.environment(CONN_ID)
    said: dict[str, dict] = {}
    with serving() as mail:
        config = write_deployment(folder, mail.port, reports="s3://cautionflow/reports",
                                  letters="s3://cautionflow/letters")
        said["d1"] = pipeline_day(config, env, D1, "sync", "deadlines", "letters")
        said["gone_keys"] = {"keys": store.keys("letters/2025-06-02/")}
        pipeline_day(config, env, D2, "sync")
        said.update(pipeline_day(config, env, AS_OF, "sync", "deadlines", "letters"))
        said["ids"] = ids = letter_ids(config, env)
        # The translator uploaded the translation to the bucket; the officer attaches it by its URL.
        translation = translated_pdf(folder / "piotr-pl.pdf", "TLUMACZENIE")
        store.client().put_object(Bucket=store.bucket, Key="incoming/piotr-pl.pdf", Body=translation.read_bytes())
        said["translated"] = run(config, env, "letters", "translated", "--id", ids["POLSKI"],
                                 "--file", f"s3://{store.bucket}/incoming/piotr-pl.pdf", as_of=None)
        said["show"] = {"out": cautionflow("letters", "show", "--id", ids["ADD"], "--config", str(config),
                                           cwd=folder, env=env).stdout}
        said["approved"] = run(config, env, "letters", "approve", "--batch", DAY)
        said["dispatch"] = run(config, env, "letters", "dispatch")
        said["governance"] = run(config, env, "governance")
        said["dsar"] = run(config, env, "dsar", "--person-ref", "P-ADD")
        said["keys_before_retention"] = {"keys": store.keys()}
        said["retention"] = run(config, env, "retention")
    yield folder, env, said


def test_every_file_is_written_to_the_bucket_and_none_on_the_local_disk(store, on_s3):
    folder, _, said = on_s3
    keys = said["keys_before_retention"]["keys"]
    # Day 1's letter to GONE, today's letters (POLSKI's with its translation, its English one kept).
    assert len(said["gone_keys"]["keys"]) == 1 and said["gone_keys"]["keys"][0].startswith("letters/2025-06-02/alert_added-GONE-")
    today = [k for k in keys if k.startswith(f"letters/{DAY}/")]
    assert any(k.startswith(f"letters/{DAY}/alert_added-ADD-") and k.endswith(".pdf") for k in today)
    assert any(k.startswith(f"letters/{DAY}/alert_added-POLSKI-") and k.endswith("-with-pl.pdf") for k in today)
    # The print batch and its manifest; the reports of both days; the governance reports; the export.
    assert [k for k in keys if k.startswith("letters/dispatch/print-batch-") and k.endswith(".pdf")]
    assert [k for k in keys if k.startswith("letters/dispatch/print-batch-") and k.endswith("-manifest.csv")]
    for name in (f"all-alerts-{DAY}.csv", f"all-alerts-{DAY}.html", f"overdue-reviews-{DAY}.csv",
                 f"all-alerts-{D1}.csv", f"stale-alerts-{DAY}.csv", f"survey-exclusions-{DAY}.html"):
        assert f"reports/{name}" in keys, name
    assert f"reports/dsar/dsar-P-ADD-{DAY}-resident.json" in keys or any(k.startswith("reports/dsar/dsar-P-ADD-") for k in keys)
    # No partial or temporary object is left behind, and nothing at all on the local disk.
    assert not [k for k in keys if ".partial" in k or k.endswith(".part")]
    assert local_files(folder) == []


def test_the_summaries_name_the_objects_by_their_urls(on_s3):
    _, _, said = on_s3
    assert said["deadlines"]["reports"]["all_alerts_csv"] == f"s3://cautionflow/reports/all-alerts-{DAY}.csv"
    assert said["dispatch"]["print_batch"].startswith("s3://cautionflow/letters/dispatch/print-batch-")
    assert said["dsar"]["path"].startswith("s3://cautionflow/reports/dsar/dsar-P-ADD-")
    assert all(path.startswith("s3://cautionflow/reports/") for path in said["governance"]["reports"].values())
    assert CONN_ID not in json.dumps(said)  # the connection's id is Airflow's business, not the reader's


def test_the_letters_read_back_from_the_bucket(store, on_s3):
    _, _, said = on_s3
    assert said["translated"]["status"] == "queued" and said["translated"]["translation_file"] == "piotr-pl.pdf"
    assert "Alex Added" in said["show"]["out"]  # `letters show` read the PDF from the bucket
    assert (said["approved"]["approved"], said["dispatch"]["printed"]) == (2, 2)
    batch = store.read(said["dispatch"]["print_batch"].removeprefix("s3://cautionflow/"))
    text = pdf_text(io.BytesIO(batch))
    assert "Alex Added" in text and "Piotr Example" in text and "TLUMACZENIE" in text
    [translated] = [k for k in store.keys(f"letters/{DAY}/") if k.endswith("-with-pl.pdf")]
    combined = PdfReader(io.BytesIO(store.read(translated)))
    assert "Piotr Example" in combined.pages[0].extract_text()
    assert "TLUMACZENIE" in combined.pages[-1].extract_text()
    manifest = store.read(said["dispatch"]["manifest"].removeprefix("s3://cautionflow/")).decode("utf-8-sig")
    assert "ADD" in manifest and "POLSKI" in manifest and "yes (piotr-pl.pdf)" in manifest
    report = store.read(f"reports/all-alerts-{DAY}.csv").decode("utf-8-sig")
    assert "ADD" in report and "POLSKI" in report
    export = json.loads(store.read(said["dsar"]["path"].removeprefix("s3://cautionflow/")))
    assert "Alex Added" in json.dumps(export)


def test_retention_deletes_the_letters_object(store, on_s3):
    _, _, said = on_s3
    [gone] = said["gone_keys"]["keys"]
    assert gone in said["keys_before_retention"]["keys"]
    assert (said["retention"]["anonymised"], said["retention"]["alerts"][0]["letter_pdfs"]) == (1, 1)
    assert gone not in store.keys("letters/")
    assert store.keys(f"reports/all-alerts-{DAY}")  # nothing else went


def test_the_register_page_serves_a_report_and_a_letter_from_the_bucket(store, on_s3, tmp_path_factory, monkeypatch):
    from fastapi.testclient import TestClient

    from cautionflow.config import load_config
    from cautionflow.web.register_page import create_app
    from tests.support import simple_auth_manager

    folder, env, said = on_s3
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CAUTIONFLOW_HOME", str(folder))
    config = load_config(folder / "cautionflow.yaml", home=folder)
    app = create_app(config_loader=lambda: config, dag_runs=list)
    secret = "cautionflow-storage-jwt-" + "s" * 40
    with simple_auth_manager(tmp_path_factory.mktemp("storage_airflow"), secret) as manager, \
            TestClient(app, base_url="http://airflow.test") as client:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        cookies = {"_token": manager.generate_jwt(SimpleAuthManagerUser(username="ops", role="viewer"))}
        page = client.get("/", cookies=cookies)
        assert page.status_code == 200 and f"all-alerts-{DAY}.html" in page.text

        report = client.get(f"/reports/all-alerts-{DAY}.csv", cookies=cookies)
        assert report.status_code == 200
        assert report.content == store.read(f"reports/all-alerts-{DAY}.csv")
        assert report.headers["cache-control"] == "no-store"
        assert report.headers["content-disposition"] == f'attachment; filename="all-alerts-{DAY}.csv"'
        html = client.get(f"/reports/all-alerts-{DAY}.html", cookies=cookies)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")

        # POLSKI's letter was dispatched (no longer served); GONE's was anonymised. A letter queued
        # today by a fresh run of the letters step would be served: held/queued/approved ones only.
        for name in ("no-such-report.csv", f"all-alerts-{DAY}.pdf", "..%2Fletters%2Fx.pdf", f"dsar%2Fall-alerts-{DAY}.csv"):
            assert client.get(f"/reports/{name}", cookies=cookies).status_code == 404, name
        assert client.get(f"/letters/{said['ids']['ADD']}.pdf", cookies=cookies).status_code == 404  # dispatched


def test_the_register_page_serves_a_queued_letter_from_the_bucket(store, tmp_path, monkeypatch, mail_server):
    from fastapi.testclient import TestClient

    from cautionflow.config import load_config
    from cautionflow.web.register_page import create_app
    from tests.support import simple_auth_manager

    env = store.environment(CONN_ID)
    config_path = write_deployment(tmp_path, mail_server.port, reports="s3://cautionflow/page/reports",
                                   letters="s3://cautionflow/page/letters")
    pipeline_day(config_path, env, AS_OF, "sync", "deadlines", "letters")
    ids = letter_ids(config_path, env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_config(config_path, home=tmp_path)
    app = create_app(config_loader=lambda: config, dag_runs=list)
    secret = "cautionflow-storage-jwt-" + "q" * 40
    with simple_auth_manager(tmp_path / "airflow", secret) as manager, \
            TestClient(app, base_url="http://airflow.test") as client:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        cookies = {"_token": manager.generate_jwt(SimpleAuthManagerUser(username="ops", role="viewer"))}
        assert client.get(f"/letters/{ids['ADD']}.pdf").status_code == 401  # behind the login, as ever
        letter = client.get(f"/letters/{ids['ADD']}.pdf", cookies=cookies)
        assert letter.status_code == 200 and letter.headers["content-type"] == "application/pdf"
        assert letter.headers["cache-control"] == "no-store"
        assert letter.headers["content-disposition"] == f'inline; filename="letter-{ids["ADD"]}.pdf"'
        [key] = [k for k in store.keys(f"page/letters/{DAY}/") if "alert_added-ADD-" in k]
        assert letter.content == store.read(key)
        assert "Alex Added" in pdf_text(io.BytesIO(letter.content))
        assert client.get("/letters/99999.pdf", cookies=cookies).status_code == 404


def test_a_file_url_is_the_local_disk(tmp_path, mail_server):
    """`file:///abs/path` works as a URL: the files land in that folder, and nothing under the home."""
    home, outside = tmp_path / "home", tmp_path / "outside"
    home.mkdir()
    config = write_deployment(home, mail_server.port, reports=f"file://{outside}/reports",
                              letters=f"file://{outside}/letters")
    said = pipeline_day(config, {}, AS_OF, "sync", "deadlines", "letters")
    assert said["letters"]["queued"] >= 1
    assert said["deadlines"]["reports"]["all_alerts_csv"] == str(outside / "reports" / f"all-alerts-{DAY}.csv")
    assert (outside / "reports" / f"all-alerts-{DAY}.csv").is_file()
    [pdf] = (outside / "letters" / DAY).glob("alert_added-ADD-*.pdf")
    assert "Alex Added" in pdf_text(pdf)
    assert local_files(home) == []
    assert REPO not in outside.parents


def test_a_storage_connection_that_is_not_defined_stops_the_step_with_one_line(store, tmp_path, mail_server):
    """A typo in `storage_conn_id` must not send residents' letters wherever boto3's default
    credentials lead (Amazon's provider, not finding the connection, warns and goes on with them):
    the step stops before writing anything, naming the field and the connection."""
    config = write_deployment(tmp_path, mail_server.port, reports="s3://cautionflow/typo-reports",
                              letters="s3://cautionflow/typo-letters")
    write_sqlite_source(tmp_path / "var" / "housing.db", source(AS_OF))
    assert run(config, {}, "run", "sync")["inserted"] == len(TODAY) + 1
    done = cautionflow("run", "deadlines", "--config", str(config), "--as-of", DAY, cwd=tmp_path, env={})
    assert done.returncode == 2, done.stderr
    assert f"storage_conn_id: the Airflow connection '{CONN_ID}' for s3://cautionflow/typo-reports is not defined" \
        in done.stderr
    assert "Traceback" not in done.stderr
    assert store.keys("typo-") == []
