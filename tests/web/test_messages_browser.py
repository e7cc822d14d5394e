"""An expired form keeps what was typed, in a real browser: headless Chromium through
Playwright over waitress and the demo consortium (tests/web/browser_fixtures.py).

A reader fills in the direct request form; the session runs out (its cookies are gone);
submitting shows, in Chinese, what was typed (never the password) and a way to log in
again; after login the form comes back filled, and one click sends it. Screenshots are
``expired-NN-...`` beside the other browser tests'.
"""

from __future__ import annotations

from browser_fixtures import follow, new_page
from ill_fixtures import PASSWORD, add_user

HOME, LENDER = "bjtu", "buct"  # not used by the other browser tests' counts
READER = "expired-reader"


def login_on(page, user: str) -> None:
    page.fill("form.stacked input[name=login]", user)
    page.fill("form.stacked input[name=password]", PASSWORD)
    follow(page, "form.stacked button[type=submit]")


def test_an_expired_request_form_comes_back_filled_after_login(demo_site, chromium_browser,
                                                               shots):
    add_user(demo_site.app, READER, "reader", HOME, name="王芳")
    context, page, watch = new_page(chromium_browser, demo_site)
    try:
        page.goto("/login")
        login_on(page, READER)
        page.goto("/ill/new")
        form = page.locator("form.ill-form")
        form.locator("input[name=title]").fill("过期表单测试书")
        form.locator("input[name=year]").fill("2019")
        form.locator("input[name=call_number]").fill("TP312/99")
        form.locator("select[name=lender]").select_option(LENDER)
        form.locator("input[name=note]").fill("请尽快")
        shots(page, "expired-01-form-filled")

        context.clear_cookies()  # the session ran out while the reader was typing
        follow(page, "form.ill-form button[type=submit]")
        assert page.locator("h1").inner_text().strip() == "页面已过期"
        kept = page.locator("dl.kept-values").inner_text()
        assert "过期表单测试书" in kept and "TP312/99" in kept and "请尽快" in kept
        assert "北京化工大学" in kept  # the lender by its name, not its id
        assert PASSWORD not in page.content()
        shots(page, "expired-02-kept-values")

        follow(page, "a.button")  # 重新登录并继续
        assert "/login" in page.url
        login_on(page, READER)
        assert "/form/resume" in page.url
        resumed = page.locator("form.kept-form")
        assert resumed.locator("input[name=title]").input_value() == "过期表单测试书"
        assert resumed.locator("input[name=call_number]").input_value() == "TP312/99"
        shots(page, "expired-03-back-after-login")

        follow(page, "form.kept-form button[type=submit]")  # 重新提交
        assert "/ill/requests/" in page.url, page.url
        assert "过期表单测试书" in page.locator("main").inner_text()
        shots(page, "expired-04-request-sent")
        # Only the deliberate 400 of the expired form: no 500, no 404, no script error.
        watch.check()
    finally:
        context.close()
