"""Accessibility in a real browser: axe-core (bundled by the PyPI package
axe-playwright-python) over every page a reader, a staff member or the consortium admin
sees, in Chinese and English, on a desktop (1366x900) and a phone (390x844), over the demo
consortium (tests/web/browser_fixtures.py).

A page fails on any violation of serious or critical impact; the failure names the page,
the rule and the elements. The same run checks what axe cannot: no page scrolls sideways
on the phone, the first Tab lands on the skip link, and the phone's menu opens and closes
without JavaScript.
"""

from __future__ import annotations

import pytest
from browser_fixtures import A11Y_VIEWPORTS, a11y_problems, a11y_world, login, sideways

pytest.importorskip("axe_playwright_python", reason="axe-playwright-python is not installed "
                    "(pip install -e '.[test]')")

__all__ = ["a11y_world"]  # the module fixture, by name

# (name, role, path); a path with {request}, {record}, {results} is filled from the world.
PAGES: tuple[tuple[str, str | None, str], ...] = (
    ("home", None, "/"),
    ("search", None, "/search"),
    ("directory", None, "/libraries"),
    ("results", None, "{results}"),
    ("record", None, "{record}"),
    ("marc", None, "{marc}"),
    ("members", None, "/members"),
    ("news", None, "/news"),
    ("news-item", None, "{news}"),
    ("rules", None, "/pages/rules"),
    ("guide", None, "/pages/guide"),
    ("faq", None, "/pages/faq"),
    ("about", None, "/pages/about"),
    ("notices", None, "/notices"),
    ("map", None, "/map"),
    ("exhibits", None, "/exhibits"),
    ("exhibit", None, "/exhibits/01-honglou"),
    ("downloads", None, "/downloads"),
    ("not-found", None, "/no/such/page"),
    ("login", None, "/login"),
    ("register", None, "/register"),
    ("reader-home", "reader", "/"),
    ("profile", "reader", "/profile"),
    ("request-form", "reader", "/ill/new"),
    ("requests", "reader", "/ill/requests"),
    ("request", "reader", "/ill/requests/{request}"),
    ("messages", "reader", "/ill/messages"),
    ("card", "reader", "/ill/card"),
    ("card-print", "reader", "/ill/card/print"),
    ("lending", "staff", "/ill/staff?queue=lending"),
    ("borrowing", "staff", "/ill/staff?queue=borrowing"),
    ("attention", "staff", "/ill/staff?queue=attention"),
    ("staff-request", "staff", "/ill/requests/{request}"),
    ("slips", "staff", "/ill/staff/slips"),
    ("stats", "staff", "/ill/staff/stats"),
    ("calendar", "staff", "/ill/staff/calendar"),
    ("cards-desk", "staff", "/ill/staff/cards"),
    ("admin-desk", "admin", "/ill/staff"),
    ("admin-lending", "admin", "/ill/staff?queue=lending&library={lender}"),
    ("admin-stats", "admin", "/ill/staff/stats"),
    ("admin-calendar", "admin", "/ill/staff/calendar"),
    ("admin-downloads", "admin", "/downloads/manage"),
)
ROLES = (None, "reader", "staff", "admin")


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("device", sorted(A11Y_VIEWPORTS))
def test_every_page_passes_axe(chromium_browser, demo_site, a11y_world, lang, device, shots):
    found: list[str] = []
    for role in ROLES:
        context = chromium_browser.new_context(base_url=demo_site.url,
                                               viewport=A11Y_VIEWPORTS[device])
        try:
            page = context.new_page()
            page.goto(f"/?lang={lang}")  # the language cookie
            if role:
                login(page, a11y_world.logins[role])
            for name, who, path in PAGES:
                if who != role:
                    continue
                page.goto(a11y_world.fill(path))
                where = f"{name} ({lang}, {device}, {role or 'anonymous'})"
                found += [f"{where}: {p}" for p in a11y_problems(page)]
                if device == "phone" and (wide := sideways(page)):
                    found.append(f"{where}: scrolls sideways ({wide})")
        finally:
            context.close()
    assert not found, "\n".join(found)


def test_the_skip_link_is_the_first_stop(chromium_browser, demo_site):
    context = chromium_browser.new_context(base_url=demo_site.url, viewport={
        "width": 1366, "height": 900})
    page = context.new_page()
    try:
        for lang, words in (("zh", "跳到主要内容"), ("en", "Skip to main content")):
            page.goto(f"/libraries?lang={lang}")
            page.keyboard.press("Tab")
            focused = page.evaluate("() => [document.activeElement.className,"
                                    " document.activeElement.textContent.trim()]")
            assert focused == ["skip-link", words], focused
            page.keyboard.press("Enter")
            assert page.evaluate("() => document.activeElement.id") == "main"
            page.keyboard.press("Tab")  # the next stop is in the page's own content
            assert page.evaluate("() => !!document.activeElement.closest('main')")
    finally:
        context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_the_phone_menu_collapses(chromium_browser, demo_site, javascript, shots):
    context = chromium_browser.new_context(base_url=demo_site.url, viewport=A11Y_VIEWPORTS[
        "phone"], java_script_enabled=javascript)
    page = context.new_page()
    try:
        page.goto("/?lang=zh")
        menu = page.locator("header.site nav a[href='/members']")
        assert not menu.is_visible()  # folded away on a phone
        toggle = page.locator(".menu-toggle")
        assert toggle.is_visible() and toggle.inner_text().strip() == "菜单"
        toggle.click()
        assert menu.is_visible()
        shots(page, f"a11y-phone-menu-{'js' if javascript else 'nojs'}")
        if javascript:  # the button says what it does, and Escape folds the menu again
            assert toggle.get_attribute("aria-expanded") == "true"
            page.keyboard.press("Escape")
            assert not menu.is_visible()
            assert toggle.get_attribute("aria-expanded") == "false"
        else:
            toggle.click()
            assert not menu.is_visible()
        page.set_viewport_size({"width": 1366, "height": 900})
        assert menu.is_visible() and not toggle.is_visible()  # a desktop shows it all
    finally:
        context.close()


def test_focus_moves_to_the_results_when_they_arrive(chromium_browser, demo_site):
    """Live results replace the page's panels; a keyboard or screen-reader user is then
    taken to the records, not left on <body>."""
    context = chromium_browser.new_context(base_url=demo_site.url)
    page = context.new_page()
    try:
        # A search no other test makes (a finished one would be served whole, not live),
        # with the demo's slow cafa, so results arrive while the page waits.
        page.goto("/search?field=title&text=中国&library=pku&library=cafa&live=1")
        assert page.url.endswith("?live=1")
        page.wait_for_selector("#results[data-done='1']", state="attached", timeout=60_000)
        page.wait_for_function("() => document.activeElement.id === 'records'", timeout=5_000)
        assert page.locator("#records li.record").count()
    finally:
        context.close()
