"""The register page in a real browser (issue 6): the real `airflow api-server` on the demo data
(`tests/integration/conftest.py`), headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by selenium) logs in through Airflow's own login page, opens the "Caution register" entry of
the Airflow UI and the page itself, and checks the overdue count shown equals the register's. A
screenshot of the page is kept in tests/artefacts/register-page/ (git-ignored).

Skipped, saying why, when Chromium, its driver or selenium is absent; `.ci/run` installs them."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support import REPO, headless_chromium, wait_for

ARTEFACTS = REPO / "tests" / "artefacts" / "register-page"

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("--window-size=1400,2200") as driver:
        yield driver


def test_a_logged_in_user_sees_the_registers_overdue_count(browser, api_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    page = f"{api_server.url}/cautionflow/"

    # Not logged in: the page sends the browser to Airflow's login, which brings it back.
    browser.get(page)
    wait_for(browser, ec.presence_of_element_located((By.NAME, "username")))
    assert "/auth/login" in browser.current_url
    assert not browser.find_elements(By.ID, "overdue-count")
    browser.find_element(By.NAME, "username").send_keys(api_server.username)
    browser.find_element(By.NAME, "password").send_keys(api_server.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    shown = wait_for(browser, ec.presence_of_element_located((By.ID, "overdue-count")))

    with sqlite3.connect(api_server.demo.register) as conn:
        [(overdue,)] = conn.execute("SELECT SUM(overdue) FROM alert_deadlines").fetchall()
    assert overdue > 0
    assert int(shown.text) == overdue
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Caution register")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTEFACTS / "register-page.png"))

    # The overdue tile links to the list of the same app, which lists as many.
    browser.find_element(By.CSS_SELECTOR, "#overdue-count").click()
    listed = wait_for(browser, ec.presence_of_element_located((By.ID, "row-count")))
    assert int(listed.text) == overdue
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody tr")) == overdue

    # In the Airflow UI, the "Caution register" entry frames the page.
    browser.get(f"{api_server.url}/plugin/caution-register")
    frame = wait_for(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "iframe[src*='cautionflow']")))
    browser.switch_to.frame(frame)
    framed = wait_for(browser, ec.presence_of_element_located((By.ID, "overdue-count")))
    assert int(framed.text) == overdue
    browser.switch_to.default_content()
    browser.save_screenshot(str(ARTEFACTS / "airflow-ui-caution-register.png"))
