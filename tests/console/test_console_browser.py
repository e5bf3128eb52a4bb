"""The console in a real browser: Debian's chromium through Debian's chromedriver (selenium is
told where the driver is, and Selenium Manager, which would download one, is never run),
against a real ``scanseal console`` and ``scanseal serve``.

Each page's main path is clicked through, the launch token is attacked from the browser (the
link reused, no session, a DNS-rebinding host name mapped to 127.0.0.1), and nothing is loaded
from another origin. Screenshots of the main pages are written to ``$SCANSEAL_SCREENSHOTS``
when set (``docs/img/console`` regenerates the committed ones), else to the test's directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from console_harness import CT, ConsoleProcess

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.selenium_manager import SeleniumManager  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="chromium and chromium-driver from Debian (make browser-tools, as root)",
    ),
]
REBOUND = "rebind.example"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("SCANSEAL_SCREENSHOTS")
    target = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    def no_download(*_args: object) -> None:
        raise AssertionError("Selenium Manager was invoked: it would download a driver")

    manager = pytest.MonkeyPatch()
    manager.setattr(SeleniumManager, "binary_paths", no_download)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1360,1500", "--no-first-run", "--disable-extensions",
                     f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        manager.undo()


def _wait(driver: webdriver.Chrome, css: str, seconds: float = 30) -> object:
    return WebDriverWait(driver, seconds).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _text(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def _shoot(driver: webdriver.Chrome, target: Path) -> None:
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(target))
    assert target.read_bytes().startswith(b"\x89PNG")


def _only_this_origin(driver: webdriver.Chrome, base: str) -> None:
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat([document.location.href])"
    )
    assert loaded
    assert all(str(name).startswith(base + "/") for name in loaded), loaded


@pytest.fixture(scope="module")
def signed_in(browser: webdriver.Chrome, console: ConsoleProcess) -> webdriver.Chrome:
    browser.get(console.url)
    _wait(browser, "h1")
    return browser


def test_a_rebinding_page_can_neither_spend_nor_use_the_token(
    browser: webdriver.Chrome, console: ConsoleProcess
) -> None:
    """A page at rebind.example whose name now resolves to 127.0.0.1 reaches the socket with
    the live token, and is refused by the Host check before the token is looked at: the link
    still works for the user afterwards (the next test)."""
    browser.get(f"http://{REBOUND}:{console.port}/?token={console.token}")
    assert "only at 127.0.0.1 or localhost" in _text(browser)
    assert browser.get_cookie("scanseal_console") is None
    browser.get(f"http://{REBOUND}:{console.port}/")
    assert "only at 127.0.0.1 or localhost" in _text(browser)


def test_the_link_opens_a_session_and_drops_the_token(
    signed_in: webdriver.Chrome, console: ConsoleProcess
) -> None:
    assert signed_in.current_url == console.base + "/"
    cookie = signed_in.get_cookie("scanseal_console")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert signed_in.execute_script("return document.cookie") == ""  # no script can read it
    assert signed_in.execute_script("return typeof htmx") == "object"  # the packaged script


def _expand(driver: webdriver.Chrome, record: str) -> object:
    """Open the study that holds ``record`` (a click on its row) and return the record's row."""
    study = driver.find_element(By.XPATH, f'//details[.//tr[@data-record="{record}"]]')
    if study.get_attribute("open") is None:
        study.find_element(By.TAG_NAME, "summary").click()
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-record="{record}"]')
    WebDriverWait(driver, 10).until(lambda _d: row.is_displayed())
    return row


def test_inbox(
    signed_in: webdriver.Chrome, console: ConsoleProcess, record: str, shots: Path
) -> None:
    row = signed_in.find_element(By.CSS_SELECTOR, f'tr[data-record="{record}"]')
    assert not row.is_displayed()  # inside its study, closed
    study = signed_in.find_element(By.XPATH, f'//details[.//tr[@data-record="{record}"]]')
    summary = study.find_element(By.TAG_NAME, "summary").text
    assert "CompressedSamples^CT1" in summary
    assert "1 instance" in summary
    assert "not flagged" in summary
    row = _expand(signed_in, record)
    assert "ito" in row.text  # type: ignore[attr-defined]
    assert "not flagged" in row.text  # type: ignore[attr-defined]
    _only_this_origin(signed_in, console.base)


def test_record_open_and_heat_map(
    signed_in: webdriver.Chrome, console: ConsoleProcess, flagged: str, shots: Path
) -> None:
    signed_in.get(console.base + "/")
    _expand(signed_in, flagged).find_element(By.CSS_SELECTOR, "a.record-link").click()  # type: ignore[attr-defined]
    _wait(signed_in, "#trail")
    page = _text(signed_in)
    assert "H1, H3 and pixel digest match the ledger record" in page
    assert "✔ holds" in page
    assert signed_in.find_element(By.ID, "verdict").text.startswith("flagged by the tamper screen")
    signed_in.find_element(By.ID, "open-record").click()
    picture = _wait(signed_in, "#heatmap")
    WebDriverWait(signed_in, 60).until(
        lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", picture
        )
    )
    columns = signed_in.find_element(By.CSS_SELECTOR, "#metadata").text
    width = signed_in.execute_script("return arguments[0].naturalWidth", picture)
    assert f"{width} ×" in columns  # the map is drawn on the image at its own size
    assert "Test^Patient" in columns
    assert "MR" in columns
    _only_this_origin(signed_in, console.base)
    _shoot(signed_in, shots / "record.png")
    signed_in.find_element(By.ID, "nav-inbox").click()
    _wait(signed_in, "#inbox")
    study = signed_in.find_element(By.XPATH, f'//details[.//tr[@data-record="{flagged}"]]')
    assert "Test^Patient" in study.text
    assert "⚠ 1 flagged" in study.text
    row = _expand(signed_in, flagged)
    assert "⚠ flagged" in row.text  # type: ignore[attr-defined]
    _shoot(signed_in, shots / "inbox.png")


def test_audit_search_chart_and_export(
    signed_in: webdriver.Chrome, console: ConsoleProcess, record: str, flagged: str, shots: Path
) -> None:
    signed_in.get(console.base + f"/records/{record}")
    signed_in.find_element(By.ID, "audit-link").click()
    _wait(signed_in, "#timeline svg")
    assert signed_in.find_elements(By.CSS_SELECTOR, "#timeline rect.denied")
    everything = len(signed_in.find_elements(By.CSS_SELECTOR, "#trail tbody tr"))
    Select(signed_in.find_element(By.ID, "audit-outcome")).select_by_visible_text("denied")
    signed_in.find_element(By.ID, "audit-go").click()  # htmx swaps the results in place
    WebDriverWait(signed_in, 30).until(lambda d: "outcome=denied" in d.current_url)
    WebDriverWait(signed_in, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#trail tbody tr")) < everything
    )
    rows = signed_in.find_elements(By.CSS_SELECTOR, "#trail tbody tr")
    assert rows
    assert {row.get_attribute("class") for row in rows} == {"denied"}
    link = signed_in.find_element(By.ID, "export-fhir").get_attribute("href")
    assert link is not None
    assert "outcome=denied" in link
    body = signed_in.execute_script(
        "const r = await fetch(arguments[0]); return [r.status, await r.text()]", link
    )
    assert body[0] == 200
    assert '"resourceType": "Bundle"' in body[1] or '"resourceType":"Bundle"' in body[1]
    # across records: no record, the flagged MR's patient from the catalogue, then everything
    signed_in.find_element(By.ID, "audit-record").clear()
    Select(signed_in.find_element(By.ID, "audit-outcome")).select_by_visible_text("any")
    signed_in.find_element(By.ID, "audit-patient").send_keys("Test^Patient")
    signed_in.find_element(By.ID, "audit-go").click()
    WebDriverWait(signed_in, 30).until(lambda d: "patient=Test" in d.current_url)
    WebDriverWait(signed_in, 30).until(lambda d: _shown_records(d) == {flagged})
    signed_in.find_element(By.ID, "audit-patient").clear()
    signed_in.find_element(By.ID, "audit-go").click()
    WebDriverWait(signed_in, 30).until(lambda d: _shown_records(d) >= {record, flagged})
    _wait(signed_in, "#timeline svg")
    _shoot(signed_in, shots / "audit.png")


def _shown_records(driver: webdriver.Chrome) -> set[str]:
    """The records the results link to; empty while htmx is swapping them."""
    try:
        links = driver.find_elements(By.CSS_SELECTOR, "#trail a.record-link")
        return {str(a.get_attribute("href")).rsplit("/", 1)[-1] for a in links}
    except StaleElementReferenceException:
        return set()


def test_verify_a_file(
    signed_in: webdriver.Chrome, console: ConsoleProcess, record: str, shots: Path
) -> None:
    signed_in.get(console.base + "/")
    signed_in.find_element(By.ID, "nav-verify").click()
    _wait(signed_in, "#verify-file").send_keys(str(CT))  # type: ignore[attr-defined]
    signed_in.find_element(By.ID, "verify-go").click()
    verdict = _wait(signed_in, "#verify-verdict")
    assert "the same bytes and the same pixels" in verdict.text  # type: ignore[attr-defined]
    assert record[:14] in _text(signed_in)
    _shoot(signed_in, shots / "verify.png")


def test_health(signed_in: webdriver.Chrome, console: ConsoleProcess, shots: Path) -> None:
    signed_in.find_element(By.ID, "nav-health").click()
    status = _wait(signed_in, "#health-status")
    assert "ok" in status.text  # type: ignore[attr-defined]
    assert "ledger_mode" in _text(signed_in)
    _shoot(signed_in, shots / "health.png")


def test_the_link_cannot_be_used_again(
    signed_in: webdriver.Chrome, console: ConsoleProcess
) -> None:
    signed_in.get(console.url)
    assert "already used" in _text(signed_in)
    signed_in.delete_all_cookies()  # another browser profile, with the link from the history
    signed_in.get(console.url)
    assert "already used" in _text(signed_in)
    signed_in.get(console.base + "/")
    assert "open the console with the link" in _text(signed_in)
