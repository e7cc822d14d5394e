"""Fixtures for tests/web/test_browser.py: the web front end served by waitress on a free
loopback port over real member servers, and Debian's headless Chromium driven by
Playwright (sync API).

Two sites, each its own app and waitress server:

* ``demo_site``: the bundled demo consortium (broker.demo.servers): 46 members, each a real SRU or
  Z39.50 server on 127.0.0.1, one slow on purpose (cafa times out) and one down (buu);
* ``hostile_site``: two members (one SRU, one Z39.50, both our own servers) serving a MARC
  file written here whose titles, names, notes and holdings carry HTML and script.

The member servers run on one background event loop thread (as ``balis demo`` runs them),
the web app on waitress's threads, and Playwright on the test's thread. Screenshots go to
``$BALIS_TEST_OUTPUT/screenshots`` (default ``test-output/screenshots`` in the clone).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymarc import Field, Indicators, MARCWriter, Record, Subfield

from broker.kernel import config as config_module
from broker.kernel.errors import UsageError

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]

# The hostile catalogue: each value is markup that would run or show as markup if a page
# put catalogue data into HTML unescaped. Every one sets window.__xss (or opens a dialog).
XSS_TITLE = "Hostile <script>window.__xss=1</script> catalogue"
XSS_SUBTITLE = '<img src=x onerror="window.__xss=2;alert(2)">'
XSS_AUTHOR = '"><svg onload="window.__xss=3">'
XSS_PLACE = "</title><script>window.__xss=4</script>"
XSS_PUBLISHER = '<a href="javascript:window.__xss=5">evil press</a>'
XSS_SUBJECT = '<iframe src="javascript:window.__xss=6"></iframe>'
XSS_NOTE = "{{ 7*7 }} <b>not bold</b>"  # a template expression must stay text as well
XSS_LOCATION = "<style>body{display:none}</style>"
XSS_CONTROL = "<script>window.__xss=7</script>"  # a control field, shown on the MARC page
XSS_ID = '"><b>id</b> a/b?c#d'  # a control number that is no safe URL or HTML
XSS_TEXTS = (XSS_TITLE, XSS_SUBTITLE, XSS_AUTHOR, XSS_PLACE, XSS_PUBLISHER, XSS_SUBJECT,
             XSS_LOCATION)


def screenshot_dir() -> Path:
    base = os.environ.get("BALIS_TEST_OUTPUT")
    return (Path(base) if base else REPO / "test-output") / "screenshots"


class LoopThread:
    """An asyncio loop on a daemon thread: the member servers live on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="browser-members",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.loop.is_running():
            self.loop.close()


class WebSite:
    """An app served by web.server.make_server (waitress) on 127.0.0.1, in a thread."""

    def __init__(self, app, **extra: Any) -> None:
        from web.server import make_server

        self.app = app
        self.server = make_server(app, "127.0.0.1", 0, threads=8)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="browser-waitress",
                                       daemon=True)
        self.thread.start()
        self.__dict__.update(extra)

    def close(self) -> None:
        self.server.close()
        self.server.task_dispatcher.shutdown()
        self.thread.join(10)
        if self.thread.is_alive():  # a keep-alive channel still open: it is a daemon
            logger.warning("waitress thread still running at the end of the tests")
        self.app.extensions["balis"].close()


def make_app(consortium, folder: Path):
    """The app over ``consortium``, its portal pages and ILL database in ``folder``."""
    from ill_fixtures import ill_config

    from web import create_app

    return create_app({"CONSORTIUM": consortium, "SESSION_STORE": "memory", "TESTING": True,
                       "SECRET_KEY": "browser-tests", "PORTAL_DIR": str(write_portal(folder)),
                       **ill_config(f"sqlite:///{folder / 'ill.sqlite3'}")})


def write_portal(folder: Path) -> Path:
    path = folder / "portal"
    (path / "news").mkdir(parents=True)
    (path / "news" / "2026-11-20-winter.md").write_text(
        "---\ntitle: 寒假期间馆际互借服务安排\ndate: 2026-11-20\n---\n寒假期间照常受理。\n",
        encoding="utf-8")
    (path / "rules.md").write_text("# 管理办法\n\n每位读者最多借 10 册。\n", encoding="utf-8")
    return path


def _start_demo(loop: LoopThread, data_dir: Path):
    from broker.demo.servers import DemoConsortium

    for _ in range(20):  # another run may hold part of a range: try another
        demo = DemoConsortium(data_dir=data_dir, port_base=random.randrange(30000, 60000 - 64))
        try:
            return loop.run(demo.__aenter__())
        except UsageError as exc:
            logger.info("demo ports busy, trying others: %s", exc)
    pytest.skip("no free range of 46 ports on 127.0.0.1 for the demo consortium")


def write_hostile_marc(path: Path) -> Path:
    """Three MARC21 records; the first carries markup in every field a page shows."""
    def record(control: str, title: list[Subfield], year: str, extra: list[Field]) -> Record:
        rec = Record(force_utf8=True, leader="00000nam a2200000 a 4500")  # a book, UTF-8
        rec.add_field(Field(tag="001", data=control),
                      Field(tag="008", data=f"200101s{year}    xx            000 0 eng d"),
                      Field(tag="245", indicators=Indicators("1", "0"), subfields=title),
                      Field(tag="260", indicators=Indicators(" ", " "), subfields=[
                          Subfield("a", XSS_PLACE), Subfield("b", XSS_PUBLISHER),
                          Subfield("c", year)]),
                      *extra)
        return rec

    first = record("xss-1", [Subfield("a", XSS_TITLE), Subfield("b", XSS_SUBTITLE),
                             Subfield("c", XSS_AUTHOR)], "2020", [
        Field(tag="009", data=XSS_CONTROL),
        Field(tag="100", indicators=Indicators("1", " "), subfields=[Subfield("a", XSS_AUTHOR)]),
        Field(tag="500", indicators=Indicators(" ", " "), subfields=[Subfield("a", XSS_NOTE)]),
        Field(tag="650", indicators=Indicators(" ", "0"), subfields=[Subfield("a", XSS_SUBJECT)]),
        Field(tag="852", indicators=Indicators(" ", " "), subfields=[
            Subfield("b", XSS_LOCATION), Subfield("h", "<u>QA76</u>"), Subfield("p", "B1")]),
    ])
    others = [record(f"plain-{n}", [Subfield("a", f"Hostile catalogue, plain volume {n}")],
                     str(2000 + n), []) for n in (1, 2)]
    others.append(record(XSS_ID, [Subfield("a", "Hostile catalogue, odd identifier")],
                         "1999", []))
    with path.open("wb") as out:
        writer = MARCWriter(out)
        for rec in (first, *others):
            writer.write(rec)
    return path


def _hostile_config(sru_url: str, z3950_url: str) -> str:
    def lib(lid: str, name: str, protocol: str, url: str) -> dict:
        return {"id": lid, "name": name, "category": "univ",
                "contact": {"name": "馆际互借部", "email": f"ill@{lid}.example.edu.cn"},
                "connector": {"protocol": protocol, "url": url}}

    return json.dumps({
        "consortium": {"name": "XSS", "max_selected": 10},
        "defaults": {"timeout": 10, "max_records": 20},
        "categories": [{"id": "univ", "name": "大学图书馆"}],
        "libraries": [lib("hsru", "甲大学图书馆", "sru", sru_url),
                      lib("hz", "乙大学图书馆", "z3950", z3950_url)],
    }, ensure_ascii=False)


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium_browser() -> Iterator:
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the Python playwright package is not installed "
        "(pip install -e '.[test]')")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    with sync_api.sync_playwright() as playwright:
        # CI runs as root, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def member_loop() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def demo_site(member_loop, tmp_path_factory) -> Iterator[WebSite]:
    pytest.importorskip("connectors.sru.server")
    demo = _start_demo(member_loop, tmp_path_factory.mktemp("demo-data"))
    try:
        app = make_app(config_module.load(demo.config), tmp_path_factory.mktemp("demo-web"))
        site = WebSite(app, demo=demo)
        yield site
        site.close()
    finally:
        member_loop.run(demo.close())


@pytest.fixture(scope="session")
def hostile_site(member_loop, tmp_path_factory) -> Iterator[WebSite]:
    from broker.catalogues.marc_file import LocalCatalogue
    from connectors.sru.server import SruServer
    from connectors.z3950.server import Z3950Server

    path = write_hostile_marc(tmp_path_factory.mktemp("hostile") / "hostile.mrc")
    catalogue = LocalCatalogue(path, name="hostile", flavour="marc21")
    assert not catalogue.problems, catalogue.problems
    sru = SruServer({"hostile": catalogue})
    z3950 = Z3950Server({"hostile": catalogue})
    member_loop.run(sru.__aenter__())
    try:
        member_loop.run(z3950.__aenter__())
        try:
            text = _hostile_config(sru.url("hostile"),
                                   f"z3950://127.0.0.1:{z3950.port}/hostile")
            app = make_app(config_module.loads(text), tmp_path_factory.mktemp("hostile-web"))
            site = WebSite(app)
            yield site
            site.close()
        finally:
            member_loop.run(z3950.__aexit__(None, None, None))
    finally:
        member_loop.run(sru.__aexit__(None, None, None))


# --- screenshots and what every page must not do ------------------------------------------

@pytest.fixture(scope="session")
def shots(request) -> Iterator:
    folder = screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # last run's pictures would mislead
        old.unlink()
    taken: list[str] = []

    def take(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        taken.append(name)

    yield take
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin(
        "capturemanager")
    if reporter is not None and capture is not None and taken:
        with capture.global_and_fixture_disabled():  # say where to look, even under -q
            reporter.write_line(f"\nbrowser tests: {len(taken)} screenshots in {folder}")


class Watch:
    """What a page did that a reader would not want: script errors, console errors
    (a CSP violation is one), dialogs, failed requests."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.policies: dict[str, str | None] = {}  # each page's Content-Security-Policy
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        page.on("response", self._response)

    def _console(self, message) -> None:
        # a resource's failure is reported (with its address) by _response
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console: {message.text}")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            self.policies[response.url] = response.headers.get("content-security-policy")
        if response.status >= 500 or (response.status == 404
                                       and not response.url.endswith("/favicon.ico")):
            self.problems.append(f"{response.status} for {response.url}")

    def check(self) -> None:
        assert not self.problems and not self.dialogs, (self.problems, self.dialogs)
        for url, policy in self.policies.items():  # scripts and styles from the site only
            assert policy and "default-src 'self'" in policy, f"{url}: {policy}"
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy


def new_page(browser, site, **options):
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900},
                                  **options)
    page = context.new_page()
    return context, page, Watch(page)


def follow(page, selector: str) -> None:
    """Click what leads to another page and wait until that page has loaded."""
    with page.expect_navigation():
        page.click(selector)


# --- accessibility: axe-core, the phone, and a world of pages to look at -------------------
# (tests/web/test_a11y.py and tests/web/test_walkthrough.py)

A11Y_VIEWPORTS = {"desktop": {"width": 1366, "height": 900},
                  "phone": {"width": 390, "height": 844}}
SERIOUS = ("serious", "critical")  # the impacts that fail a page
# and two rules of lesser impact that issue 14 found on many pages: content outside every
# landmark (a screen reader's landmark list skips it) and a table header with no words
ALSO_FAIL = ("region", "empty-table-header")


def a11y_problems(page) -> list[str]:
    """axe-core's violations of serious or critical impact (and ``ALSO_FAIL``'s) on the page
    as it is now: one line each, with the rule, its impact and the elements (CSS selectors)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page).response
    return [f"{v['id']} ({v['impact']}): " + ", ".join(
        " ".join(map(str, node["target"])) for node in v["nodes"][:6])
        for v in results["violations"] if v.get("impact") in SERIOUS or v["id"] in ALSO_FAIL]


def sideways(page) -> str:
    """How far the page scrolls sideways and the innermost elements that stick out past
    the viewport's right edge; "" when it fits."""
    return str(page.evaluate("""() => {
      const root = document.documentElement, over = root.scrollWidth - root.clientWidth;
      if (over <= 0) { return ""; }
      const out = [...document.body.querySelectorAll("*")].filter(e =>
        e.getBoundingClientRect().right > root.clientWidth + 1 &&
        ![...e.children].some(c => c.getBoundingClientRect().right > root.clientWidth + 1));
      return over + " px: " + out.slice(0, 4).map(e => e.tagName.toLowerCase() +
        (e.className ? "." + String(e.className).split(" ").join(".") : "")).join(", ");
    }"""))


def login(page, user: str) -> None:
    from ill_fixtures import PASSWORD

    page.goto("/login")
    page.fill("form.stacked input[name=login]", user)
    page.fill("form.stacked input[name=password]", PASSWORD)
    follow(page, "form.stacked button[type=submit]")
    assert page.locator("form.inline[action='/logout']").count(), f"{user} did not log in"


class A11yWorld:
    """Accounts, a request in the lender's queue and a finished search, so every page has
    something on it: ``fill`` puts their addresses into a path."""

    HOME, LENDER = "bnu", "bupt"  # neither is used by test_ill_browser.py's counts

    def __init__(self, site, browser) -> None:
        from ill_fixtures import add_user, valid_form

        app = site.app
        self.logins = {"reader": "a11y-reader", "staff": f"a11y-staff-{self.LENDER}",
                       "admin": "a11y-admin"}
        reader = add_user(app, self.logins["reader"], "reader", self.HOME, name="李明")
        staff = add_user(app, self.logins["staff"], "staff", self.LENDER, name="北邮馆员")
        add_user(app, self.logins["admin"], "admin", None, name="联盟管理员")
        web = app.extensions["ill"]
        with web.session() as s:
            made = web.service.create_request(s, reader, valid_form(lender=self.LENDER))
        with web.session() as s:
            web.service.act(s, staff, made.id, "accept")
        context = browser.new_context(base_url=site.url)
        try:
            page = context.new_page()
            page.goto(f"/search?field=title&text=中国&library={self.LENDER}"
                      f"&library={self.HOME}&library=thu")
            page.wait_for_selector("li.record a.title", timeout=60_000)
            results = page.url.removeprefix(site.url)
            record = page.locator("li.record a.title").first.get_attribute("href")
            page.goto(record)
            marc = page.locator("p.tabs a[href*='/marc/']").first.get_attribute("href")
            page.goto("/news")
            news = page.locator("main a[href^='/news/']").first.get_attribute("href")
        finally:
            context.close()
        self.values = {"request": str(made.id), "results": results, "record": record,
                       "marc": marc, "news": news, "lender": self.LENDER}

    def fill(self, path: str) -> str:
        return path.format(**self.values)


@pytest.fixture(scope="session")
def a11y_world(demo_site, chromium_browser) -> A11yWorld:
    return A11yWorld(demo_site, chromium_browser)
