"""The MLflow UI as a user sees it: two tiny runs that differ in one override, sent to a real
`mlflow server` on 127.0.0.1, and the link their summary prints opened in headless Chromium.

The page must be the experiment's runs table (not MLflow 3's GenAI overview) in muse's saved
view, with both run names, told apart by that override, and the store each trained on in the
Dataset column. Needs the Debian packages `chromium` and `chromium-driver` (.ci/run installs
them); selenium drives the browser.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from composing import compose
from hydra.core.hydra_config import HydraConfig
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from tracking_server import tracking_server

from muse.runs.train import train

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
                None)
CHROMEDRIVER = shutil.which("chromedriver")
PAGE_S = 60  # the UI's scripts and first queries, on a busy 2-core machine
FAST = ["debug=short", "data.batch_size=8", "trainer.max_epochs=1"]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get "
                       "install chromium chromium-driver; .ci/run installs them)"),
    pytest.mark.skipif(CHROMEDRIVER is None, reason="no chromedriver binary on PATH (Debian: "
                       "apt-get install chromium-driver; .ci/run installs it)"),
]


def train_from_command_line(root: Path, data_dir: Path, *overrides: str):
    """`python train.py <overrides>` in this process: Hydra's job config holds the command-line
    overrides (which run names show), the run itself is composed as train.py composes it."""
    HydraConfig.instance().set_config(compose(*overrides, root=root, data=data_dir, hydra=True))
    cfg = compose(*overrides, root=root, data=data_dir)
    try:
        return train(cfg)
    finally:
        HydraConfig.instance().cfg = None


@pytest.fixture(scope="module")
def browser():
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1600,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def sweep(demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """Two runs on the server, lr 1e-3 and 3e-3, and what the second one printed."""
    home = tmp_path_factory.mktemp("ui_server")
    with tracking_server(home) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", server["url"])
        data = demo_stores["wild"].parent
        results = []
        for lr in ("0.001", "0.003"):
            results.append(train_from_command_line(home / f"lr{lr}", data, *FAST,
                                                   f"model.optimizer.lr={lr}"))
        yield {"server": server, "results": results}


def test_the_printed_link_opens_the_runs_table_with_both_runs_and_their_dataset(
        sweep: dict, browser: webdriver.Chrome) -> None:
    from muse.runs.artifacts import summary

    printed = summary(sweep["results"][-1])  # what the second run ended by printing
    (link,) = re.findall(r"look at it: open (\S+)", printed)
    assert link.startswith(sweep["server"]["url"])

    browser.get(link)
    names = ["lstm_att-ge_ft-s42 debug=short batch_size=8 max_epochs=1 lr=0.001",
             "lstm_att-ge_ft-s42 debug=short batch_size=8 max_epochs=1 lr=0.003"]
    try:
        WebDriverWait(browser, PAGE_S).until(
            lambda page: all(_cell(page, name) for name in names))
    except TimeoutException:
        pytest.fail(f"the runs table did not show both runs; the page says:\n"
                    f"{browser.find_element(By.TAG_NAME, 'body').text[:3000]}")
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "/runs" in browser.current_url and "Run Name" in page  # not the GenAI overview
    assert "muse: scores" in page  # the saved view muse made with the experiment
    for column in ("Dataset", "best/devel/score", "best/test/score"):
        assert column in page, column
    # Each run's row names the store it trained on, with its prepare fingerprint.
    digest = re.compile(r"wild\.h5/train \([0-9a-f]{16}\)")
    rows = [_row_text(browser, name) for name in names]
    assert all(digest.search(row) for row in rows), rows
    assert len(set(names)) == 2


def _cell(page: webdriver.Chrome, name: str):
    """The run-name cell showing `name` (its full text is in the link's title or text)."""
    for link in page.find_elements(By.CSS_SELECTOR, "a"):
        if name in ((link.get_attribute("title") or "") + (link.text or "")):
            return link
    return None


def _row_text(page: webdriver.Chrome, name: str) -> str:
    """The text of the run's whole row: the grid draws its pinned name column and the other
    columns as separate rows with the same `row-index`."""
    row = _cell(page, name).find_element(By.XPATH, "./ancestor::*[@role='row'][1]")
    index = row.get_attribute("row-index")
    parts = page.find_elements(By.CSS_SELECTOR, f"[role='row'][row-index='{index}']")
    return " ".join(part.text for part in parts)
