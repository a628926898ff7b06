"""The look-up search box in a real browser (issue 16): the real `airflow api-server` on the demo
data (`tests/integration/conftest.py`), headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium) logs in through Airflow's own login page, types a demo
alert's postcode in lower case without its space into the register page's search box, and finds the
alert; its link opens the alert page. Screenshots are kept in tests/artefacts/search/ (git-ignored).

Karbon 6.3, Hexagon 1.2: staff check for an alert before a visit, typing the postcode as they have it.
Skipped, saying why, when Chromium, its driver or selenium is absent; `.ci/run` installs them."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support import REPO, headless_chromium, wait_for

ARTEFACTS = REPO / "tests" / "artefacts" / "search"

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("--window-size=1400,1400") as driver:
        yield driver


def test_a_postcode_typed_in_lower_case_without_its_space_finds_the_alert(browser, api_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    with sqlite3.connect(api_server.demo.register) as conn:
        [(alert_id, postcode)] = conn.execute(
            "SELECT alert_id, postcode FROM alerts WHERE register_state = 'active' AND postcode LIKE '% %' "
            "ORDER BY alert_id LIMIT 1"
        ).fetchall()
        [(at_postcode,)] = conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE replace(upper(postcode), ' ', '') = ?",
            (postcode.replace(" ", "").upper(),),
        ).fetchall()
    typed = postcode.replace(" ", "").lower()
    assert typed != postcode

    browser.get(f"{api_server.url}/cautionflow/")
    wait_for(browser, ec.presence_of_element_located((By.NAME, "username")))
    browser.find_element(By.NAME, "username").send_keys(api_server.username)
    browser.find_element(By.NAME, "password").send_keys(api_server.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    box = wait_for(browser, ec.presence_of_element_located((By.ID, "search-box")))
    box.send_keys(typed, Keys.ENTER)

    count = wait_for(browser, ec.presence_of_element_located((By.ID, "result-count")))
    assert "/cautionflow/search?q=" + typed in browser.current_url
    assert int(count.text) == at_postcode >= 1
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == at_postcode and all(postcode in row.text for row in rows)
    link = browser.find_element(By.LINK_TEXT, alert_id)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTEFACTS / "search-results.png"))

    link.click()
    shown = wait_for(browser, ec.presence_of_element_located((By.ID, "alert-id")))
    assert shown.text == alert_id
    assert browser.find_element(By.ID, "history").is_displayed()
    reads = browser.find_element(By.ID, "reads-table").text  # this very search is among its reads
    assert api_server.username in reads
    browser.save_screenshot(str(ARTEFACTS / "alert-page.png"))
