"""The MUSHRA page in Debian's chromium, headless, driven by Selenium: a whole test taken with keyboard and
mouse, then its ratings looked up in the database.

Needs `apt-get install chromium chromium-driver` and `pip install selenium`; skipped without them.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nsac.listen.server import ListeningServer
from nsac.listen.spec import DB_NAME

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: every wait for the page is bounded by this
WAIT_S = 15.0
#: playback must reach this position (s) to count as playing: the audio clock runs
PLAYED_S = 0.1
#: the flags this machine's chromium needs (background networking is refused here) and no autoplay gate
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
                  "--window-size=1200,1000")

try:
    import selenium  # noqa: F401

    _SELENIUM = True
except ImportError:
    _SELENIUM = False

pytestmark = [
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromedriver: "
                              "apt-get install chromium chromium-driver"),
    pytest.mark.skipif(not _SELENIUM, reason="needs the Selenium driver library: pip install selenium"),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="nsac-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(condition, message=f"waiting for {what}")


def _player_ready(driver: Any, player_id: str) -> None:
    _wait(driver, lambda d: d.find_element("id", player_id).get_attribute("data-ready") == "true",
          f"{player_id} to load its audio")


def _keys(driver: Any, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def _play_and_hear_all(driver: Any, player_id: str) -> None:
    """Space starts playback (from a focused slider); letter keys switch to every stimulus while it plays."""
    player = driver.find_element("id", player_id)
    driver.find_element("css selector", f"#{player_id} .slider").click()  # focus inside the page
    _keys(driver, " ")
    _wait(driver, lambda d: player.get_attribute("data-playing") == "true"
          and float(player.get_attribute("data-position") or 0) > PLAYED_S, "playback to advance")
    n_stimuli = len(driver.find_elements("css selector", f"#{player_id} .slider"))
    for index in range(n_stimuli):
        _keys(driver, "abcdefghijkl"[index])
        _wait(driver, lambda d, i=index: player.get_attribute("data-selected") == str(i + 1), "a switch")
    _keys(driver, "r")
    _wait(driver, lambda d: player.get_attribute("data-selected") == "0", "the switch to the reference")


def test_a_listener_takes_the_whole_test(live_server: ListeningServer, browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(live_server.url)
    driver.find_element("id", "listener").send_keys("Selenium Listener", Keys.ENTER)
    _wait(driver, lambda d: d.find_element("id", "training").is_displayed(), "the training page")
    _player_ready(driver, "training-player")
    driver.find_element("css selector", "#training-player .play").click()
    _wait(driver, lambda d: float(d.find_element("id", "training-player").get_attribute("data-position") or 0)
          > PLAYED_S, "training playback")
    driver.find_element("id", "begin").click()

    n_items = len(live_server.spec.items)
    expected: dict[str, int] = {}
    for page in range(n_items):
        title = f"Item {page + 1} of {n_items}"
        _wait(driver, lambda d, t=title: d.find_element("id", "page-title").text == t, title)
        _player_ready(driver, "rating-player")
        if page == 0:  # saving before listening is refused by the page, and nothing reaches the server
            driver.find_element("id", "submit").click()
            _wait(driver, lambda d: "listen to every version" in d.find_element("id", "error").text,
                  "the refusal")
        _play_and_hear_all(driver, "rating-player")
        sliders = driver.find_elements("css selector", "#rating-player .slider")
        for index, slider in enumerate(sliders):
            slider.click()
            slider.send_keys(Keys.HOME, *([Keys.ARROW_RIGHT] * (index + 3)), *([Keys.PAGE_UP] * index))
        sliders[0].send_keys(Keys.END)  # one version at 100, as the page asks
        for slider in sliders:
            expected[slider.get_attribute("data-key")] = int(slider.get_attribute("value"))
        _keys(driver, " ")  # stop
        driver.find_element("id", "submit").click()
    _wait(driver, lambda d: d.find_element("id", "thanks").is_displayed(), "the thank-you page")

    with sqlite3.connect(live_server.folder / DB_NAME) as db:
        rows = db.execute("SELECT item_id, condition_id, score FROM ratings WHERE listener_id = ?",
                          ("Selenium Listener",)).fetchall()
    n_stimuli = sum(len(item.stimuli) for item in live_server.spec.items)
    assert len(rows) == n_stimuli == len(expected)
    by_condition = {(item_id, condition_id): key for key, (item_id, condition_id) in live_server.keys.items()}
    assert {by_condition[(item, condition)]: score for item, condition, score in rows} == expected
    assert len(set(expected.values())) > 2 and 100 in expected.values()

    # the same name again resumes: everything is rated, so straight to the thank-you page
    driver.get(live_server.url)
    driver.find_element("id", "listener").send_keys("Selenium Listener", Keys.ENTER)
    _wait(driver, lambda d: d.find_element("id", "thanks").is_displayed(), "the resumed thank-you page")
    problems = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
    assert not problems, problems
