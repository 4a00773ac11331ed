"""`prodsafe dashboard` in a real browser: Debian's Chromium, headless, driven
through chromedriver by Selenium, loads the page served against the test's own
redis-server holding a fleet's state (fleet.py) and the test reads the
rendered DOM. Screenshots go to $PRODSAFE_SCREENSHOT_DIR (default: the
current directory's dashboard-screenshots/). No display is needed."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

import fleet
import prodsafe
from prodsafe.testing import RedisServer

CLI = os.environ.get("PRODSAFE_CLI", "prodsafe")
CHROMIUM = os.environ.get("PRODSAFE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PRODSAFE_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = pathlib.Path(os.environ.get("PRODSAFE_SCREENSHOT_DIR", "dashboard-screenshots"))


def wait_for(condition, timeout=15.0, what="the condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except Exception as error:  # the DOM is being replaced under us
            last = error
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Dashboard:
    """A `prodsafe dashboard` process on a free loopback port."""

    def __init__(self, url, *flags, env=None):
        self.process = subprocess.Popen(
            [CLI, "dashboard", "--redis", url, "--listen", "127.0.0.1:0",
             "--failure-threshold", str(fleet.THRESHOLD), *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, **(env or {})))
        line = self.process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        if not match:
            self.process.kill()
            raise AssertionError(f"dashboard did not start: {line!r} {self.process.stderr.read()!r}")
        self.url = match.group(1)

    def stop(self):
        """Stops it (SIGTERM) if running; its stderr (the action log)."""
        if self.process.poll() is None or not hasattr(self, "log"):
            self.process.terminate()
            _, self.log = self.process.communicate(timeout=15)
            assert self.process.returncode == 0, self.log
        return self.log


@pytest.fixture(scope="module")
def server():
    with RedisServer() as redis_server:
        yield redis_server


@pytest.fixture(scope="module")
def seeded(server):
    with tempfile.TemporaryDirectory() as journal_dir:
        fleet.seed(server.url, journal_dir)
        yield server


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="prodsafe-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 "--window-size=1400,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    return path


def live(driver):
    return driver.find_element(By.ID, "status").text == "live" and \
        driver.find_element(By.ID, "fleet").is_displayed()


def breaker_states(driver):
    return {row.get_attribute("data-job-type"): row.get_attribute("data-state")
            for row in driver.find_elements(By.CSS_SELECTOR, "#breaker-table tbody tr")}


def click(driver, selector):
    """Clicks the element `selector` finds, finding it again if the page
    re-rendered it in between."""
    def attempt():
        driver.find_element(By.CSS_SELECTOR, selector).click()
        return True
    wait_for(attempt, what=f"a click on {selector}")


def confirm(driver, selector):
    click(driver, selector)
    wait_for(lambda: driver.find_element(By.ID, "confirm").is_displayed(), what="the dialog")
    text = driver.find_element(By.ID, "confirm-text").text
    click(driver, "#confirm-ok")
    return text


@pytest.fixture
def read_write(seeded, browser):
    dashboard = Dashboard(seeded.url, "--allow-actions")
    browser.set_window_size(1400, 1600)
    browser.get(dashboard.url)
    wait_for(lambda: live(browser), what="the page to go live")
    yield browser, dashboard
    dashboard.stop()


# The page as rendered, read in one script: the page re-renders every second,
# so elements found one by one may be replaced between two reads.
PAGE_SCRIPT = """
const all = (selector, root) => Array.from((root || document).querySelectorAll(selector));
const text = (root, selector) => { const e = root.querySelector(selector); return e ? e.innerText : null; };
return {
  breakers: Object.fromEntries(all('#breaker-table tbody tr').map(tr => [tr.dataset.jobType, {
    state: tr.dataset.state, badge: text(tr, '.state'), badge_class: tr.querySelector('.state').className,
    failures: text(tr, '.failures'), calls: text(tr, '.calls'), trips: text(tr, '.trips'),
    probe: text(tr, '.probe'), forced: text(tr, '.forced')}])),
  histograms: Object.fromEntries(all('.histogram').map(h => [h.dataset.jobType,
    Object.fromEntries(all('.bar', h).map(b => [b.dataset.bucket, Number(b.dataset.count)]))])),
  open_windows: document.getElementById('open-windows-total').innerText,
  windows: Object.fromEntries(all('#window-table tbody tr').map(tr => [tr.dataset.jobId,
    Array.from(tr.cells).map(c => c.innerText)])),
  effect_counts: Object.fromEntries(all('#effect-counts tbody tr').map(tr => [tr.dataset.type,
    Object.fromEntries(all('td[data-state]', tr).map(td => [td.dataset.state, td.innerText]))])),
  orphans: all('#orphan-table tbody tr').map(tr => Array.from(tr.cells).map(c => c.innerText)),
  failed: all('#failed-table tbody tr').map(tr => tr.innerText),
  oldest: document.getElementById('oldest').innerText,
  alerts: all('#alerts li').map(li => li.innerText),
  checks: Object.fromEntries(all('#check-table tbody tr').map(tr => [tr.dataset.check, tr.dataset.level])),
};
"""


# How many of the elements a selector finds are rendered (not display: none).
VISIBLE_BUTTONS = """
return Array.from(document.querySelectorAll(arguments[0])).filter(e => e.offsetParent !== null).length;
"""


def page(driver):
    return driver.execute_script(PAGE_SCRIPT)


def test_the_page_shows_the_fleet_as_redis_holds_it(read_write):
    driver, _ = read_write
    wait_for(lambda: breaker_states(driver) == fleet.BREAKERS, what="every breaker")
    shown = page(driver)
    breakers = shown["breakers"]
    # Each state has its colour class, and counts against the threshold.
    for job_type, state in fleet.BREAKERS.items():
        assert breakers[job_type]["badge"] == state
        assert f"state-{state}" in breakers[job_type]["badge_class"]
    assert breakers["quotes"]["failures"].startswith(f"1 / {fleet.THRESHOLD}")
    # 5 successes and a failure, but a count-mode breaker sends Redis no
    # success while CLOSED: the recorded calls are the failure alone.
    assert breakers["quotes"]["calls"] == "1"
    assert re.fullmatch(r"in \d+m\d\ds", breakers["payments"]["probe"])
    assert breakers["payments"]["trips"] == "1"
    # Who forced it: fleet.seed() forced "ledger" open from this process.
    assert re.fullmatch(rf".+:{os.getpid()} at \d\d:\d\d:\d\d", breakers["ledger"]["forced"])
    assert breakers["payments"]["forced"] == ""

    # Retry histograms: one bar per bucket with the fleet's counts.
    labels = ["1", "2", "3", "4-5", "6-10", "11-20", "21+"]
    for job_type, recorded in fleet.HISTOGRAMS.items():
        wanted = {label: sum(n for attempts, n in recorded.items()
                             if prodsafe.RetryHistogram.bucket_for(attempts) == label)
                  for label in labels}
        assert shown["histograms"][job_type] == wanted, job_type
    assert shown["open_windows"] == "(2)"
    for job_id, (job_type, attempts) in fleet.OPEN_WINDOWS.items():
        assert shown["windows"][job_id][1:3] == [job_type, str(attempts)]

    # Effects: counted by state, the orphan and the failure listed.
    assert shown["effect_counts"]["place_order"] == {
        "in_progress": "0", "expired": "1", "completed": str(len(fleet.COMPLETED)), "failed": "1",
        "other": "0"}
    assert [row[1] for row in shown["orphans"]] == [fleet.ORPHAN]
    assert fleet.FAILED in shown["failed"][0] and "insufficient margin" in shown["failed"][0]
    assert fleet.ORPHAN in shown["oldest"]

    # The fleet's alert history: the breaker's trip and the spike, newest first.
    assert len(shown["alerts"]) == 2, shown["alerts"]
    assert "retry_spike [place_order] " + fleet.SPIKE_MESSAGE in shown["alerts"][0]
    assert "circuit_opened [payments]" in shown["alerts"][1]

    # The runtime checks of this (unpersisted) test server.
    assert shown["checks"]["persistence"] == "CRITICAL"
    assert shown["checks"]["eviction_policy"] == "OK"
    screenshot(driver, "dashboard")


def test_a_narrow_window_has_no_page_wide_scroll(read_write):
    driver, _ = read_write
    driver.set_window_size(390, 1400)
    wait_for(lambda: live(driver))
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    # Breakers stack: each value labelled, the actions still reachable.
    assert driver.execute_script(VISIBLE_BUTTONS, 'tr[data-job-type="payments"] button') == 4
    assert driver.execute_script(
        "return getComputedStyle(document.querySelector('#breaker-table thead')).display") == "none"
    screenshot(driver, "dashboard-narrow")


def test_actions_are_confirmed_applied_and_logged(read_write, seeded):
    driver, dashboard = read_write
    redis = prodsafe.Redis(seeded.url)
    # Cancel does nothing.
    click(driver, 'tr[data-job-type="quotes"] button[data-action="open"]')
    wait_for(lambda: driver.find_element(By.ID, "confirm").is_displayed())
    click(driver, "#confirm-cancel")
    time.sleep(1.2)
    assert redis.execute_command("HGET", "circuit:quotes", "state") == b"CLOSED"

    text = confirm(driver, 'tr[data-job-type="quotes"] button[data-action="open"]')
    assert "quotes" in text and "refuses calls" in text
    wait_for(lambda: breaker_states(driver)["quotes"] == "FORCED_OPEN", what="FORCED_OPEN")
    assert redis.execute_command("HGET", "circuit:quotes", "state") == b"FORCED_OPEN"
    assert "CLOSED → FORCED_OPEN" in driver.find_element(By.ID, "toast").text
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, 'tr[data-job-type="quotes"] .forced')
             .text.startswith("prodsafe dashboard (127.0.0.1:"), what="forced by the dashboard")
    # Seen by the next refresh as a transition.
    wait_for(lambda: "quotes: CLOSED → FORCED_OPEN" in driver.find_element(By.ID, "transitions").text)

    confirm(driver, 'tr[data-job-type="quotes"] button[data-action="reset"]')
    wait_for(lambda: breaker_states(driver)["quotes"] == "CLOSED")

    # Clearing the orphan (its lease ran out: no force needed).
    orphan_key = f"effect:place_order:{fleet.ORPHAN}"
    assert redis.execute_command("EXISTS", orphan_key) == 1
    text = confirm(driver, "#orphan-table button[data-action=clear]")
    assert fleet.ORPHAN in text
    wait_for(lambda: redis.execute_command("EXISTS", orphan_key) == 0, what="the orphan cleared")
    wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, "#orphan-table tbody tr"))
    screenshot(driver, "dashboard-after-actions")

    log = dashboard.stop()
    assert re.search(r"action from 127\.0\.0\.1:\d+: breaker open quotes: CLOSED -> FORCED_OPEN", log)
    assert "breaker reset quotes: FORCED_OPEN -> CLOSED" in log
    assert re.search(r"clear effect effect:place_order:o-orphan \(state expired.*\): deleted", log)


def test_read_only_by_default(seeded, browser):
    dashboard = Dashboard(seeded.url)
    try:
        browser.get(dashboard.url)
        wait_for(lambda: live(browser))
        assert browser.find_element(By.ID, "mode").text == "read-only"
        assert browser.execute_script(
            "return document.querySelectorAll('button[data-action]').length") > 0
        assert browser.execute_script(VISIBLE_BUTTONS, "button[data-action]") == 0
        # The API refuses too, whatever the page shows.
        request = urllib.request.Request(
            dashboard.url + "api/actions/breaker", method="POST",
            data=json.dumps({"job_type": "quotes", "action": "open"}).encode(),
            headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 403
    finally:
        dashboard.stop()


def test_a_token_is_taken_from_the_fragment(seeded, browser):
    dashboard = Dashboard(seeded.url, env={"PRODSAFE_DASHBOARD_TOKEN": "s3cret-token"})
    try:
        browser.get(dashboard.url)
        wait_for(lambda: browser.find_element(By.ID, "status").text == "token needed")
        assert not browser.find_element(By.ID, "fleet").is_displayed()
        browser.get(dashboard.url + "#token=s3cret-token")
        wait_for(lambda: live(browser), what="live with the token")
        assert "token" not in browser.current_url  # dropped from the address bar
    finally:
        dashboard.stop()
        browser.execute_script("sessionStorage.clear()")


def test_redis_unreachable_replaces_the_data(browser):
    with RedisServer() as redis_server:
        dashboard = Dashboard(redis_server.url, "--refresh", "200ms")
        try:
            browser.get(dashboard.url)
            wait_for(lambda: live(browser))
            redis_server.stop()
            wait_for(lambda: browser.find_element(By.ID, "status").text == "Redis unreachable",
                     what="the unreachable state")
            assert not browser.find_element(By.ID, "fleet").is_displayed()
            banner = browser.find_element(By.ID, "banner")
            assert banner.is_displayed() and "Redis unreachable" in banner.text
            screenshot(browser, "dashboard-unreachable")
            redis_server.restart()
            wait_for(lambda: live(browser), timeout=20, what="live again after a restart")
        finally:
            dashboard.stop()
