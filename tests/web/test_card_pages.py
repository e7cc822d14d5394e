"""The consortium self-pickup card on the web, without JavaScript (Flask's test client) and in
headless Chromium (the printed card, axe-core): a reader applies, the home library issues
it, the reader prints it and asks for pick-up, the lender's desk checks it; expired and
revoked cards are refused in words; the JSON API answers as web/openapi.yaml says. A
request's status change made through the pages writes its e-mail to the outbox, delivered
to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import functools
import re
import socket
from collections.abc import Iterator
from datetime import timedelta

import jsonschema
import pytest
from ill_fixtures import PASSWORD, Clock, add_user, ill_config, real_consortium, valid_form
from lxml import html

from ill.mail_sender import MailSender
from web import create_app
from web.api import openapi_spec


class Visitor:
    """A browser without JavaScript: cookies, and forms sent with the page's CSRF token."""

    def __init__(self, app) -> None:
        self.client = app.test_client()
        self.token = ""

    def page(self, url: str, status: int = 200):
        response = self.client.get(url)
        assert response.status_code == status, (url, response.status_code)
        tree = html.fromstring(response.get_data(as_text=True))
        tokens = tree.cssselect("input[name=csrf_token]")
        if tokens:
            self.token = tokens[0].get("value")
        return tree

    def post(self, url: str, data: dict | None = None):
        return self.client.post(url, data={**(data or {}), "csrf_token": self.token})

    def login(self, login: str) -> Visitor:
        self.page("/login")
        response = self.post("/login", {"login": login, "password": PASSWORD, "next": "/"})
        assert response.status_code == 302
        return self


def _text(tree, selector: str) -> str:
    return " ".join(" ".join(e.itertext()) for e in tree.cssselect(selector))


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd names it
        self.messages.append(envelope.original_content)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # a free port: aiosmtpd's own start-up check needs one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def site(tmp_path, smtp) -> Iterator:
    clock = Clock()
    app = create_app({"TESTING": True, "CONSORTIUM": real_consortium(),
                      "SESSION_STORE": "memory", "SECRET_KEY": "test",
                      "PORTAL_DIR": str(tmp_path / "portal"),
                      "SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp[0],
                      "SMTP_FROM": "ill@balis.example", "MAIL_SENDER": False,
                      **ill_config(f"sqlite:///{tmp_path / 'ill.sqlite3'}", clock)})
    add_user(app, "wang", "reader", "bupt")
    add_user(app, "liu", "reader", "bupt")
    add_user(app, "s-bupt", "staff", "bupt")
    add_user(app, "s-pku", "staff", "pku")
    yield app, clock
    app.extensions["balis"].close()
    app.extensions["ill"].close()


def _issue(app, login: str = "wang") -> str:
    reader = Visitor(app).login(login)
    reader.page("/ill/card")
    assert reader.post("/ill/card", {"note": "常去北大"}).status_code == 302
    staff = Visitor(app).login("s-bupt")
    tree = staff.page("/ill/staff/cards")
    row = tree.cssselect(".card-applications tr[data-card]")[0]
    response = staff.post(f"/ill/staff/cards/{row.get('data-card')}", {"action": "approve"})
    assert response.status_code == 302
    tree = reader.page("/ill/card")
    return _text(tree, ".card-status .card-number").strip()


def test_apply_issue_print_and_pick_up(site, smtp):
    app, _clock = site
    reader = Visitor(app).login("wang")
    tree = reader.page("/profile")
    assert tree.cssselect("a[href='/ill/card']")  # the card from the reader's profile
    tree = reader.page("/ill/card")
    assert "联盟自取借书证" in _text(tree, "h1") and "365" in _text(tree, "p.help")
    number = _issue(app)
    assert re.fullmatch(r"\d{11}", number)
    tree = reader.page("/ill/card")
    assert tree.cssselect(".card-status")[0].get("data-state") == "valid"
    printed = reader.page("/ill/card/print")
    assert _text(printed, ".pickup-card .card-number").strip() == number
    assert "wang-name" in _text(printed, ".card-holder")
    assert "北京邮电大学" in _text(printed, ".pickup-card")
    svg = printed.cssselect(".pickup-card svg.card-barcode")[0]
    assert svg.get("aria-label") == number and len(svg.cssselect("rect")) == 13 * 5
    # Pick-up is now allowed: the request form, as the reader sends it.
    form_page = reader.page("/ill/new?lender=pku")
    assert form_page.cssselect("a[href='/ill/card']")  # the pick-up option says what it needs
    response = reader.post("/ill/new", {**valid_form(delivery="pickup"), "key": "k1"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    web = app.extensions["ill"]
    with web.session() as s:
        (req,) = web.service.list_requests(s, web.service.actor(s, 1))
        staff_pku = web.service.authenticate(s, "s-pku", PASSWORD)
        web.service.act(s, staff_pku, req.id, "accept")
    # The lender's desk: a number typed with spaces, the holder and what waits.
    desk = Visitor(app).login("s-pku")
    tree = desk.page(f"/ill/staff/cards?number={number[:4]}+{number[4:]}")
    verdict = tree.cssselect(".card-verdict")[0]
    assert verdict.get("data-state") == "valid" and "有效，可以取书" in _text(tree, ".card-verdict")
    assert "wang-name" in _text(tree, ".card-verdict")
    assert str(req.id) in _text(tree, ".card-requests")
    # The status changes reached the outbox with the change, and the sender delivers them.
    sender = MailSender(web.db, web.service.mail_settings, clock=app.config["ILL_CLOCK"])
    assert sender.run_once().sent == 0  # wang has no e-mail address: site messages only
    reader.page("/profile")
    reader.post("/profile", {"name": "wang-name", "phone": "13800000000",
                             "email": "wang@example.edu.cn"})
    with web.session() as s:
        web.service.act(s, staff_pku, req.id, "checkout")
    assert sender.run_once().sent == 1
    (raw,) = smtp[1].messages
    assert b"wang@example.edu.cn" in raw and b"checked_out" not in raw


def test_pickup_without_a_card_is_refused_on_the_form(site):
    app, _clock = site
    reader = Visitor(app).login("liu")
    reader.page("/ill/new?lender=pku")
    response = reader.post("/ill/new", {**valid_form(delivery="pickup"), "key": "k2"})
    assert response.status_code == 422
    tree = html.fromstring(response.get_data(as_text=True))
    assert "联盟自取借书证" in _text(tree, "[data-field=delivery]")


def test_expired_revoked_and_mistyped_cards_are_refused_in_words(site):
    app, clock = site
    number = _issue(app)
    desk = Visitor(app).login("s-pku")
    tree = desk.page("/ill/staff/cards?number=12345")
    assert "11 位数字" in _text(tree, ".card-verdict")
    tree = desk.page(f"/ill/staff/cards?number={number[:-1]}{(int(number[-1]) + 1) % 10}")
    assert "11 位数字" in _text(tree, ".card-verdict")  # a wrong check digit
    clock.now = clock.now + timedelta(days=400)
    tree = desk.page(f"/ill/staff/cards?number={number}")
    assert tree.cssselect(".card-verdict")[0].get("data-state") == "expired"
    assert "已过期" in _text(tree, ".card-verdict")
    clock.now = clock.now - timedelta(days=400)
    home = Visitor(app).login("s-bupt")
    tree = home.page("/ill/staff/cards")
    card_id = tree.cssselect(".card-issued tr[data-card]")[0].get("data-card")
    assert home.post(f"/ill/staff/cards/{card_id}", {"action": "revoke"}).status_code == 302
    assert _text(home.page("/ill/staff/cards"), ".flash.error")  # no reason: refused, said why
    home.post(f"/ill/staff/cards/{card_id}", {"action": "revoke", "reason": "遗失"})
    tree = desk.page(f"/ill/staff/cards?number={number}")
    assert "已注销" in _text(tree, ".card-verdict")
    # Readers are not staff; English is there too.
    assert Visitor(app).login("wang").client.get("/ill/staff/cards").status_code == 403
    tree = desk.page(f"/ill/staff/cards?number={number}&lang=en")
    assert "revoked" in _text(tree, ".card-verdict")


@functools.cache
def _components() -> dict:
    return openapi_spec()["components"]


def _valid(instance, name: str) -> None:
    jsonschema.validate(instance, {"$ref": f"#/components/schemas/{name}",
                                   "components": _components()})


def test_the_card_api(site):
    app, _clock = site
    client = app.test_client()

    def token(login: str) -> dict:
        answer = client.post("/api/tokens", json={"login": login, "password": PASSWORD})
        return {"Authorization": f"Bearer {answer.get_json()['token']}"}

    reader, staff, lender = token("wang"), token("s-bupt"), token("s-pku")
    assert client.get("/api/ill/card").status_code == 401
    assert client.get("/api/ill/card", headers=reader).get_json() == {"card": None}
    applied = client.post("/api/ill/card", json={"note": "x"}, headers=reader)
    assert applied.status_code == 201
    _valid(applied.get_json(), "PickupCard")
    assert client.post("/api/ill/card", headers=reader).status_code == 409
    pending = client.get("/api/ill/cards", headers=staff).get_json()["cards"]
    assert [c["id"] for c in pending] == [applied.get_json()["id"]]
    assert client.get("/api/ill/cards", headers=reader).status_code == 403
    assert client.get("/api/ill/cards?status=x", headers=staff).status_code == 422
    url = f"/api/ill/cards/{pending[0]['id']}/decision"
    assert client.post(url, json={"action": "approve"}, headers=lender).status_code == 403
    assert client.post(url, json={"action": "?"}, headers=staff).status_code == 422
    issued = client.post(url, json={"action": "approve"}, headers=staff).get_json()
    _valid(issued, "PickupCard")
    assert issued["state"] == "valid" and re.fullmatch(r"\d{11}", issued["number"])
    check = client.get(f"/api/ill/cards/check?number={issued['number']}", headers=lender)
    _valid(check.get_json(), "PickupCardCheck")
    assert check.get_json()["valid"] is True
    assert client.get("/api/ill/cards/check?number=1", headers=lender).get_json()[
        "result"] == "malformed"
    assert client.post("/api/ill/cards/999/decision", json={"action": "approve"},
                       headers=staff).status_code == 404
    revoked = client.post(url, json={"action": "revoke"}, headers=staff)
    assert revoked.status_code == 422 and "reason" in revoked.get_json()["errors"]


def test_the_printed_card_in_chromium(site, chromium_browser):
    from browser_fixtures import WebSite, a11y_problems, login, new_page

    app, _clock = site
    _issue(app)
    web = WebSite(app)
    try:
        context, page, _watch = new_page(chromium_browser, web)
        login(page, "wang")
        page.goto("/ill/card")
        assert a11y_problems(page) == []
        page.goto("/ill/card/print")
        assert a11y_problems(page) == []
        page.emulate_media(media="print")
        assert page.locator(".pickup-card").is_visible()
        assert not page.locator("header.site").is_visible()
        assert not page.locator("p.no-print").is_visible()
        box = page.locator(".pickup-card").bounding_box()
        assert box is not None and box["width"] < 360  # a card, not a page-wide box
        context.close()
        context, page, _watch = new_page(chromium_browser, web)
        login(page, "s-bupt")
        page.goto("/ill/staff/cards")
        assert a11y_problems(page) == []
        context.close()
    finally:
        web.server.close()
        web.server.task_dispatcher.shutdown()
        web.thread.join(10)
