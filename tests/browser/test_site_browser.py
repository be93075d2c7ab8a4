"""The built site, as a reader sees it: headless Chromium (Playwright driving Debian's chromium)
against the site built from the real catalog and served on 127.0.0.1."""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kdatlas.catalog import load_catalog

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run must install it")
        pytest.skip("chromium not installed (apt-get install chromium)")
    out = tmp_path_factory.mktemp("site")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *a, **k: None
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def page(site):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page()
        external = []
        pg.on("request", lambda r: external.append(r.url) if not r.url.startswith(site) and not r.url.startswith("data:") else None)
        pg.external_requests = external  # type: ignore[attr-defined]
        yield pg
        browser.close()


def test_home_page_renders_with_counts(site, page):
    page.goto(site + "/")
    assert page.locator("article h1").first.inner_text().rstrip("¶") == "KD Atlas"
    cat = load_catalog(ROOT)
    assert str(len(cat.papers)) in page.locator("table").first.inner_text()


def test_search_finds_a_paper_by_a_title_word(site, page):
    page.goto(site + "/")
    page.locator("label.md-search__icon, .md-search__input").first.click()
    page.locator("input.md-search__input").fill("FitNets")
    result = page.locator(".md-search-result__item").first
    result.wait_for(timeout=15000)
    assert "FitNets" in page.locator(".md-search-result").inner_text()


def test_paper_page_shows_typeset_math_and_a_valid_colab_badge(site, page):
    page.goto(site + "/papers/hinton2015distilling/")
    page.locator("mjx-container").first.wait_for(timeout=15000)
    method = page.locator("article").inner_text()
    assert "$$" not in method and "\\frac" not in method
    badge = page.locator("a:has(img[alt='Open in Colab'])")
    if badge.count():
        href = badge.first.get_attribute("href")
        m = re.match(r"https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/main/(notebooks/[^/]+\.ipynb)$", href)
        assert m, href
        assert (ROOT / m.group(1)).exists(), f"Colab badge points at {m.group(1)}, which is not in the repository"
    else:
        pytest.fail("hinton2015distilling has no Colab badge")
    # Nothing the page needs comes from outside (fonts, MathJax, CSS, JS). Material's optional
    # repository-statistics fetch to api.github.com fails quietly offline and is allowed.
    assert not [u for u in page.external_requests if not u.startswith(("https://colab", "https://api.github.com/"))], page.external_requests


def test_year_page_and_tag_page_list_the_paper(site, page):
    page.goto(site + "/years/2015/")
    assert page.locator("a[href$='papers/hinton2015distilling/']").count() >= 1
    page.goto(site + "/tags/knowledge/response/")
    assert page.locator("a[href$='papers/hinton2015distilling/']").count() >= 1


def test_leaderboard_row_links_to_its_paper(site, page):
    page.goto(site + "/leaderboards/")
    page.locator("table a").first.click()
    page.wait_for_load_state()
    link = page.locator("article table a[href*='papers/']").last
    href = link.get_attribute("href")
    link.click()
    page.wait_for_load_state()
    assert "/papers/" in page.url and page.locator("h2#reported-results").count() == 1, href
