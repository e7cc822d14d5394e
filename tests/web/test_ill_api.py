"""The ILL JSON API (CONTRACTS section 6) over HTTP with Flask's test client, on SQLite and
on a real PostgreSQL (tests/web/ill_fixtures.py), against the real BALIS directory
(config/libraries.yaml: nlc lets no reader cancel, pku and bupt allow 60 minutes).

No search is involved, so this module's ``app`` replaces the Zebra-backed one of
conftest.py. Answers are also checked against web/openapi.yaml's schemas.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import jsonschema
import pytest
from ill_fixtures import PASSWORD, Clock, add_user, ill_config, real_consortium, valid_form

from web import create_app
from web.api import openapi_spec

ROW_KEYS = {"id", "created", "status", "due", "lender", "title"}
REQUIRED = ("title", "year", "call_number", "lender", "delivery")


@pytest.fixture(scope="module")
def consortium():
    return real_consortium()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(consortium, ill_database_url, clock, tmp_path) -> Iterator:
    app = create_app({"TESTING": True, "CONSORTIUM": consortium, "SESSION_STORE": "memory",
                      "SECRET_KEY": "test", "PORTAL_DIR": str(tmp_path / "portal"),
                      **ill_config(ill_database_url, clock)})
    yield app
    app.extensions["balis"].close()
    app.extensions["ill"].close()


@dataclass
class Caller:
    """One account's side of the API: its Bearer token on every call."""

    client: object
    token: str
    login: str

    def _headers(self, extra: dict | None = None) -> dict:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, **kw):
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, **kw):
        return self.client.post(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def create(self, **overrides):
        return self.post("/api/ill/requests", json=valid_form(**overrides))

    def act(self, request_id: int, action: str, **body):
        return self.post(f"/api/ill/requests/{request_id}/actions",
                         json={"action": action, **body})


def login(client, name: str) -> Caller:
    response = client.post("/api/tokens", json={"login": name, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    valid(response.get_json(), "Token")
    return Caller(client, response.get_json()["token"], name)


ACCOUNTS = {"reader": ("wang", "reader", "bupt"), "reader2": ("zhao", "reader", "bupt"),
            "bupt": ("s-bupt", "staff", "bupt"), "pku": ("s-pku", "staff", "pku"),
            "nlc": ("s-nlc", "staff", "nlc"), "thu": ("s-thu", "staff", "thu"),
            "admin": ("root", "admin", None)}


class People:
    """The test's accounts, each made and logged in on first use: ``reader`` and
    ``reader2`` (home bupt), staff ``bupt``, ``pku``, ``nlc``, ``thu`` (a library with
    nothing to do with the requests here) and ``admin``."""

    def __init__(self, app, client) -> None:
        self._app, self._client = app, client

    def __getattr__(self, key: str) -> Caller:
        if key not in ACCOUNTS:
            raise AttributeError(key)
        name, role, library = ACCOUNTS[key]
        add_user(self._app, name, role, library)
        caller = login(self._client, name)
        setattr(self, key, caller)
        return caller

    def make(self, *keys: str) -> None:
        for key in keys:
            getattr(self, key)


@pytest.fixture
def people(app, client) -> People:
    return People(app, client)


@functools.cache
def _components() -> dict:
    return openapi_spec()["components"]


def valid(instance, name: str) -> None:
    jsonschema.validate(instance, {"$ref": f"#/components/schemas/{name}",
                                   "components": _components()})


def created(caller: Caller, **overrides) -> dict:
    response = caller.create(**overrides)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# --- tokens --------------------------------------------------------------------------------

def test_wrong_password_or_unknown_login_is_401(app, client, people):
    people.make("reader")
    for body in ({"login": "wang", "password": "wrong-password"},
                 {"login": "nobody", "password": PASSWORD}):
        response = client.post("/api/tokens", json=body)
        assert response.status_code == 401
        assert response.get_json() == {"error": "登录名或密码不正确"}
    bad = client.post("/api/tokens", data="login=wang", content_type="text/plain")
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"body"}


def test_a_pending_account_gets_no_token_until_approved(app, client, people):
    web = app.extensions["ill"]
    with web.session() as s:
        user = web.service.register(s, {
            "login": "newbie", "password": PASSWORD, "library": "bupt", "name": "新读者",
            "card_number": "B-1", "phone": "13800000001", "email": "newbie@example.edu.cn"})
    response = client.post("/api/tokens", json={"login": "newbie", "password": PASSWORD})
    assert response.status_code == 401
    assert response.get_json() == {"error": "您的注册正在等待本馆审核"}
    people.make("bupt")
    with web.session() as s:
        staff = web.service.authenticate(s, "s-bupt", PASSWORD)
        web.service.approve_registration(s, staff, user.id)
    assert login(client, "newbie").get("/api/ill/requests").status_code == 200


def test_repeated_failures_are_throttled_with_retry_after(app, client, people, clock):
    people.make("reader", "reader2")
    for _ in range(5):
        assert client.post("/api/tokens", json={"login": "zhao", "password": "nope-nope"}
                           ).status_code == 401
    # Now even the right password waits: a guesser learns nothing from it.
    response = client.post("/api/tokens", json={"login": "zhao", "password": PASSWORD})
    assert response.status_code == 429
    assert "登录失败次数过多" in response.get_json()["error"]
    retry = int(response.headers["Retry-After"])
    assert 0 < retry <= 15 * 60
    # Another account is not held up.
    assert client.post("/api/tokens", json={"login": "wang", "password": PASSWORD}
                       ).status_code == 200
    clock.advance(seconds=retry)
    assert client.post("/api/tokens", json={"login": "zhao", "password": PASSWORD}
                       ).status_code == 200


def test_calls_without_a_valid_token_are_401(app, client, people):
    for headers in ({}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": "Basic d2FuZzpwYXNzd29yZA=="}):
        response = client.get("/api/ill/requests", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        valid(response.get_json(), "Error")
    response = client.post("/api/ill/requests", json=valid_form())
    assert response.status_code == 401


# --- submitting ----------------------------------------------------------------------------

def test_create_returns_201_with_the_request(people):
    response = people.reader.create(record_id="za:123", phone="13911112222")
    assert response.status_code == 201
    body = response.get_json()
    valid(body, "IllRequest")
    assert body["status"] == "submitted" and body["status_label"] == "已提交"
    assert body["iso18626"] == "RequestReceived"
    assert (body["lender"], body["borrower"], body["delivery"]) == ("pku", "bupt", "courier")
    assert (body["title"], body["year"], body["call_number"]) == ("红楼梦", 2008, "I242.4/3")
    assert body["isbn"] == "9787020065875" and body["record_id"] == "za:123"
    assert body["note"] == "急用" and body["phone"] == "13911112222"
    assert body["reader_name"] == "wang-name" and body["due"] is None
    assert body["created"].startswith("2025-03-03T02:00")
    again = people.reader.get(f"/api/ill/requests/{body['id']}").get_json()
    valid(again, "IllRequestDetail")
    assert again["title"] == "红楼梦" and [e["action"] for e in again["events"]] == ["submit"]
    assert again["actions"] == ["cancel"] and again["next_step"] == "等待出借馆受理"


def test_the_same_idempotency_key_gives_the_first_request(people):
    first = people.reader.post("/api/ill/requests", json=valid_form(),
                               headers={"Idempotency-Key": "k-1"}).get_json()
    second = people.reader.post("/api/ill/requests", json=valid_form(),
                                headers={"Idempotency-Key": "k-1"})
    assert second.status_code == 201 and second.get_json()["id"] == first["id"]
    assert len(people.reader.get("/api/ill/requests").get_json()) == 1


@pytest.mark.parametrize("field", REQUIRED)
def test_each_missing_required_field_is_exactly_its_422(people, field):
    for value in (None, "", "   "):
        response = people.reader.create(**{field: value})
        assert response.status_code == 422, (field, value)
        body = response.get_json()
        valid(body, "ValidationErrors")
        assert list(body["errors"]) == [field], (value, body)


def test_every_missing_field_at_once_and_in_english(people):
    response = people.reader.post("/api/ill/requests", json={"note": "x"})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == set(REQUIRED)
    english = people.reader.post("/api/ill/requests?lang=en", json={})
    assert english.get_json()["errors"] == {
        "title": "title is required", "year": "year is required",
        "call_number": "call number is required", "lender": "lender is required",
        "delivery": "delivery is required"}


def test_an_idempotency_key_that_is_no_text_is_422(people):
    response = people.reader.create(idempotency_key=5)
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["idempotency_key"]
    assert people.reader.get("/api/ill/requests").get_json() == []


@pytest.mark.parametrize("overrides, field, words", [
    ({"year": "二〇〇八"}, "year", "四位数字"),
    ({"year": "1999-2001"}, "year", "四位数字"),
    ({"year": 99999}, "year", "四位数字"),
    ({"year": "2090"}, "year", "四位数字"),
    ({"delivery": "drone"}, "delivery", "courier"),
    ({"delivery": ["courier"]}, "delivery", "courier"),
    ({"delivery": {"courier": 1}}, "delivery", "courier"),
    ({"lender": "nowhere"}, "lender", "没有这个成员馆"),
    ({"lender": ["pku"]}, "lender", "没有这个成员馆"),
    ({"lender": "bupt"}, "lender", "不能向本馆申请"),
    ({"title": "x" * 501}, "title", "500"),
    ({"title": ["红楼梦"]}, "title", "格式不正确"),
    ({"call_number": {"a": 1}}, "call_number", "格式不正确"),
    ({"isbn": "978-7-02-006587-4"}, "isbn", "ISBN 无效"),
    ({"note": "备" * 51}, "note", "50"),
    ({"note": "n" * 51}, "note", "51"),
])
def test_invalid_fields_are_exactly_their_422(people, overrides, field, words):
    response = people.reader.create(**overrides)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert list(errors) == [field]
    assert words in errors[field]


def test_a_note_of_exactly_50_characters_is_accepted(people):
    body = created(people.reader, note="备" * 50)
    assert body["note"] == "备" * 50


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"', "null"])
def test_a_body_that_is_no_json_object_is_422(people, body):
    response = people.reader.post("/api/ill/requests", data=body,
                                  content_type="application/json")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["body"]


def test_a_duplicate_or_staff_submission_is_refused(people):
    created(people.reader)
    again = people.reader.create()
    assert again.status_code == 409 and "请勿重复提交" in again.get_json()["error"]
    staff = people.bupt.create()
    assert staff.status_code == 403 and "只有读者" in staff.get_json()["error"]


# --- listing and reading ---------------------------------------------------------------------

def test_list_rows_and_the_from_to_status_filters(people, clock):
    first = created(people.reader, title="第一本")  # 2025-03-03 (Beijing)
    clock.advance(days=1)
    second = created(people.reader, title="第二本", lender="thu")  # 03-04
    clock.advance(days=1)
    third = created(people.reader, title="第三本", lender="nlc", record_id="nlc:3")  # 03-05
    assert people.pku.act(first["id"], "accept").status_code == 200

    def ids(**query):
        response = people.reader.get("/api/ill/requests", query_string=query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        valid(body, "IllRequestList")
        for row in body:
            assert set(row) == ROW_KEYS
        return [row["id"] for row in body]

    assert ids() == [third["id"], second["id"], first["id"]]  # newest first
    rows = people.reader.get("/api/ill/requests").get_json()
    assert rows[-1] == {"id": first["id"], "created": first["created"], "status": "accepted",
                        "due": None, "lender": "pku", "title": "第一本"}
    assert ids(**{"from": "2025-03-04"}) == [third["id"], second["id"]]
    assert ids(to="2025-03-04") == [second["id"], first["id"]]
    assert ids(**{"from": "2025-03-04", "to": "2025-03-04"}) == [second["id"]]
    assert ids(status="submitted") == [third["id"], second["id"]]
    assert ids(status="accepted") == [first["id"]]
    assert ids(status="shipped") == []
    assert ids(**{"from": "2025-03-03", "to": "2025-03-03", "status": "accepted"}) == [
        first["id"]]
    # A day is a Beijing day: 2025-03-04 16:30 UTC is already the 5th in Beijing.
    clock.now = clock.now.replace(day=4, hour=16, minute=30)
    late = created(people.reader2, title="夜里提交")
    assert [r["id"] for r in people.reader2.get(
        "/api/ill/requests", query_string={"from": "2025-03-05"}).get_json()] == [
        late["id"]]


@pytest.mark.parametrize("query, field", [
    ({"from": "2025-13-01"}, "from"), ({"to": "yesterday"}, "to"),
    ({"status": "lent"}, "status")])
def test_bad_list_filters_are_422(people, query, field):
    response = people.reader.get("/api/ill/requests", query_string=query)
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [field]


def test_a_reader_sees_only_their_own_requests(people):
    mine = created(people.reader)
    theirs = created(people.reader2, title="别人的书")
    assert [r["id"] for r in people.reader.get("/api/ill/requests").get_json()] == [mine["id"]]
    response = people.reader.get(f"/api/ill/requests/{theirs['id']}")
    assert response.status_code == 403 and "不属于您" in response.get_json()["error"]
    assert people.reader.post(f"/api/ill/requests/{theirs['id']}/cancel").status_code == 403
    assert people.reader.act(theirs["id"], "accept").status_code == 403
    missing = people.reader.get("/api/ill/requests/999999")
    assert missing.status_code == 404 and "999999" in missing.get_json()["error"]
    assert people.reader.post("/api/ill/requests/999999/cancel").status_code == 404
    # Nothing of the other reader's request changed.
    assert people.reader2.get(f"/api/ill/requests/{theirs['id']}").get_json()[
        "status"] == "submitted"


def test_staff_list_their_library_and_admins_everything(people):
    to_pku = created(people.reader)
    to_nlc = created(people.reader, title="另一本", lender="nlc", record_id="nlc:2")

    def ids(caller, **query):
        return {r["id"] for r in caller.get("/api/ill/requests", query_string=query)
                .get_json()}

    assert ids(people.pku) == {to_pku["id"]}  # lender
    assert ids(people.nlc) == {to_nlc["id"]}
    assert ids(people.bupt) == {to_pku["id"], to_nlc["id"]}  # borrower
    assert ids(people.bupt, side="lending") == set()
    assert ids(people.thu) == set()
    assert ids(people.admin) == {to_pku["id"], to_nlc["id"]}
    assert people.pku.get(f"/api/ill/requests/{to_pku['id']}").get_json()["actions"] == [
        "cancel", "accept", "reject", "close"]


def test_huge_or_odd_request_ids_are_404_not_a_crash(people):
    for path in ("/api/ill/requests/99999999999999999999999",
                 "/api/ill/requests/9223372036854775808/cancel",
                 "/api/ill/requests/-1", "/api/ill/requests/abc"):
        response = (people.reader.post(path) if path.endswith("/cancel")
                    else people.reader.get(path))
        assert response.status_code == 404, (path, response.status_code)
        assert "error" in response.get_json()


# --- staff actions -----------------------------------------------------------------------------

def test_the_whole_loan_through_the_api(people):
    req = created(people.reader)
    steps = [(people.pku, "accept", "accepted"), (people.pku, "ship", "shipped"),
             (people.bupt, "receive", "received"), (people.bupt, "checkout", "checked_out"),
             (people.bupt, "return", "returned"), (people.bupt, "ship_back", "shipped_back"),
             (people.pku, "complete", "completed")]
    for caller, action, status in steps:
        response = caller.act(req["id"], action)
        assert response.status_code == 200, (action, response.get_json())
        body = response.get_json()
        valid(body, "IllRequest")
        assert body["status"] == status
        seen = people.reader.get(f"/api/ill/requests/{req['id']}").get_json()
        assert seen["status"] == status and seen["events"][-1]["action"] == action
    assert body["due"] == "2025-03-31"  # shipped on 03-03, pku lends for 28 days
    assert body["batch"].startswith("20250303-bupt-pku")  # the last courier trip: back
    events = people.reader.get(f"/api/ill/requests/{req['id']}").get_json()["events"]
    assert [e["action"] for e in events] == ["submit"] + [a for _, a, _ in steps]
    assert people.reader.get("/api/ill/requests", query_string={"status": "completed"}
                             ).get_json()[0]["due"] == "2025-03-31"


def test_an_action_the_state_does_not_allow_is_409(people):
    req = created(people.reader)
    for action in ("ship", "receive", "complete", "return"):
        response = people.pku.act(req["id"], action)
        assert response.status_code == 409, action
        assert "已提交" in response.get_json()["error"]
    assert people.pku.act(req["id"], "accept").status_code == 200
    again = people.pku.act(req["id"], "accept")
    assert again.status_code == 409 and "已受理" in again.get_json()["error"]
    # Two staff pages showing version 1: the second learns who acted first.
    stale = people.pku.act(req["id"], "ship", version=1)
    assert stale.status_code == 409 and "请刷新" in stale.get_json()["error"]


def test_a_library_neither_lender_nor_borrower_is_403(people):
    req = created(people.reader)
    for action in ("accept", "reject", "cancel", "close"):
        response = people.thu.act(req["id"], action, reason="x")
        assert response.status_code == 403, action
        assert "不属于您或您的图书馆" in response.get_json()["error"]
    assert people.thu.get(f"/api/ill/requests/{req['id']}").status_code == 403
    # The borrower may not do the lender's part either.
    assert people.bupt.act(req["id"], "accept").status_code == 403
    assert people.reader.get(f"/api/ill/requests/{req['id']}").get_json()[
        "status"] == "submitted"


@pytest.mark.parametrize("body, field", [
    ({}, "action"), ({"action": ""}, "action"), ({"action": 3}, "action"),
    ({"action": "teleport"}, "action"), ({"action": "reject"}, "reason"),
    ({"action": "reject", "reason": "   "}, "reason")])
def test_a_missing_or_unknown_action_or_reason_is_422(people, body, field):
    req = created(people.reader)
    response = people.pku.post(f"/api/ill/requests/{req['id']}/actions", json=body)
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["errors"]) == [field]


@pytest.mark.parametrize("body, field", [
    ({"action": "reject", "reason": 7}, "reason"),
    ({"action": "reject", "reason": ["NotHeld"]}, "reason"),
    ({"action": "accept", "batch": 12}, "batch"), ({"action": ["accept"]}, "action")])
def test_odd_types_in_an_action_are_422_not_a_crash(people, body, field):
    req = created(people.reader)
    response = people.pku.post(f"/api/ill/requests/{req['id']}/actions", json=body)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert list(response.get_json()["errors"]) == [field]
    assert people.reader.get(f"/api/ill/requests/{req['id']}").get_json()[
        "status"] == "submitted"
    reason = people.reader.post(f"/api/ill/requests/{req['id']}/cancel", json={"reason": 5})
    assert reason.status_code == 422 and list(reason.get_json()["errors"]) == ["reason"]


def test_a_version_that_is_no_number_is_ignored(people):
    req = created(people.reader)
    response = people.pku.act(req["id"], "accept", version="1")
    assert response.status_code == 200 and response.get_json()["status"] == "accepted"


def test_reject_with_an_iso_reason(people):
    req = created(people.reader)
    response = people.pku.act(req["id"], "reject", reason="NotOnShelf: 在装订")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "unfilled" and body["reason_code"] == "NotOnShelf"
    assert people.pku.act(req["id"], "accept").status_code == 409


# --- cancelling ---------------------------------------------------------------------------------

def test_cancel_within_the_window_is_done(people, clock):
    req = created(people.reader)
    clock.advance(minutes=59)
    response = people.reader.post(f"/api/ill/requests/{req['id']}/cancel",
                                  json={"reason": "不需要了"})
    assert response.status_code == 200
    body = response.get_json()
    valid(body, "CancelOutcome")
    assert body["cancelled"] is True and body["cancel_requested"] is False
    assert body["request"]["status"] == "cancelled"
    again = people.reader.post(f"/api/ill/requests/{req['id']}/cancel")
    assert again.status_code == 409 and "不能再取消" in again.get_json()["error"]


def test_after_the_window_or_once_accepted_a_cancel_is_asked_of_staff(people, clock):
    late = created(people.reader)
    clock.advance(minutes=61)
    body = people.reader.post(f"/api/ill/requests/{late['id']}/cancel").get_json()
    assert body["cancelled"] is False and body["cancel_requested"] is True
    assert body["request"]["status"] == "submitted" and "时限" in body["message"]

    accepted = created(people.reader, title="已受理的书")
    assert people.pku.act(accepted["id"], "accept").status_code == 200
    response = people.reader.post(f"/api/ill/requests/{accepted['id']}/cancel")
    assert response.status_code == 200
    body = response.get_json()
    assert body["cancelled"] is False and body["cancel_requested"] is True
    assert body["request"]["status"] == "accepted" and body["request"]["cancel_requested"]
    assert "出借馆已受理" in body["message"]
    # Once shipped there is nothing left to cancel.
    assert people.pku.act(accepted["id"], "ship").status_code == 200
    refused = people.reader.post(f"/api/ill/requests/{accepted['id']}/cancel")
    assert refused.status_code == 409 and "已寄出" in refused.get_json()["error"]


def test_no_direct_request_to_the_national_library(people):
    """CONTRACTS section 6: without record_id (the direct request form) nlc is refused,
    422 with errors.lender; a request from one of its records is allowed."""
    response = people.reader.create(lender="nlc")
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"lender"}
    valid(response.get_json(), "ValidationErrors")
    assert "不受理直接申请" in response.get_json()["errors"]["lender"]
    english = people.reader.post("/api/ill/requests?lang=en", json=valid_form(lender="nlc"))
    assert "no direct requests" in english.get_json()["errors"]["lender"]
    assert people.reader.create(lender="nlc", record_id="nlc:000123").status_code == 201
    assert people.reader.create(title="别的书", lender="thu").status_code == 201


def test_nlc_requests_are_never_cancelled_by_the_reader(people, clock):
    req = created(people.reader, lender="nlc", record_id="nlc:1")
    for _ in range(2):  # at once, and asked again: still only a request to staff
        body = people.reader.post(f"/api/ill/requests/{req['id']}/cancel").get_json()
        assert body["cancelled"] is False and body["cancel_requested"] is True
        assert body["request"]["status"] == "submitted"
        assert "国家图书馆的申请不能自行取消" in body["message"]
    events = people.reader.get(f"/api/ill/requests/{req['id']}").get_json()["events"]
    assert [e["action"] for e in events] == ["submit", "cancel_requested"]
    # The lender's staff may cancel it.
    staff = people.nlc.act(req["id"], "cancel")
    assert staff.status_code == 200 and staff.get_json()["status"] == "cancelled"


def test_staff_cancel_through_the_cancel_endpoint(people):
    req = created(people.reader)
    assert people.pku.act(req["id"], "accept").status_code == 200
    response = people.bupt.post(f"/api/ill/requests/{req['id']}/cancel")
    assert response.status_code == 200 and response.get_json()["cancelled"] is True
    assert people.thu.post(f"/api/ill/requests/{req['id']}/cancel").status_code == 403
