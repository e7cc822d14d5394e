"""The request form's checks (CONTRACTS section 6): one message per field, all at once."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from ill_helpers import form

from broker.kernel.errors import Conflict, ValidationFailed
from ill.values import CancelTerms

REQUIRED = {"title": "请填写题名", "year": "请填写出版年", "call_number": "请填写索书号",
            "lender": "请选择出借馆", "delivery": "请选择取书方式"}


@pytest.mark.parametrize("field", sorted(REQUIRED))
def test_each_required_field_missing_gives_its_message(db, svc, people, field):
    with db.session() as s:
        for empty in (..., "", "   ", None):
            with pytest.raises(ValidationFailed) as info:
                svc.create_request(s, people.reader, form(**{field: empty}))
            assert info.value.errors == {field: REQUIRED[field]}
            assert info.value.errors_en[field].endswith("is required")
        assert svc.list_requests(s, people.reader) == []


def test_every_problem_is_reported_at_once(db, svc, people):
    with db.session() as s, pytest.raises(ValidationFailed) as info:
        svc.create_request(s, people.reader, {"note": "字" * 51, "isbn": "9787020065876"})
    assert set(info.value.errors) == {*REQUIRED, "note", "isbn"}
    assert info.value.errors["note"] == "备注不能超过 50 个字（现有 51 个）"


@pytest.mark.parametrize("overrides, field, message", [
    ({"note": "字" * 51}, "note", "备注不能超过 50 个字（现有 51 个）"),
    ({"year": "二〇〇八"}, "year", "出版年须为四位数字的年份，如 2008"),
    ({"year": "08"}, "year", "出版年须为四位数字的年份，如 2008"),
    ({"year": "2099"}, "year", "出版年须为四位数字的年份，如 2008"),
    ({"isbn": "978-7-02-006587-6"}, "isbn", "ISBN 无效（请核对位数和校验位）"),
    ({"issn": "1234-5678"}, "issn", "ISSN 无效"),
    ({"delivery": "drone"}, "delivery",
     "取书方式须为快递到本馆（courier）或到出借馆自取（pickup）"),
    ({"lender": "mit"}, "lender", "没有这个成员馆"),
    ({"lender": "bupt"}, "lender", "不能向本馆申请馆际互借，请直接在本馆借阅"),
    ({"lender": "ruc"}, "lender", "中国人民大学图书馆不提供馆际互借外借服务"),
    ({"title": "长" * 501}, "title", "不能超过 500 个字"),
    ({"title": ["a list"]}, "title", "格式不正确"),
])
def test_invalid_values(db, svc, people, overrides, field, message):
    with db.session() as s, pytest.raises(ValidationFailed) as info:
        svc.create_request(s, people.reader, form(**overrides))
    assert info.value.errors == {field: message}


def test_accepted_forms_are_normalized(db, svc, people):
    with db.session() as s:
        view = svc.create_request(s, people.reader, form(
            year="2008年", isbn="7-02-006587-2", note="字" * 50,
            title="  红楼梦  ", phone=None))
    assert (view.year, view.isbn, view.title, view.note) == (2008, "9787020065875", "红楼梦",
                                                              "字" * 50)
    assert view.phone == "13800000000"  # from the profile
    assert (view.borrower, view.lender, view.status) == ("bupt", "pku", "submitted")


def test_issn_typed_into_the_isbn_box_is_kept_as_issn(db, svc, people):
    with db.session() as s:
        view = svc.create_request(s, people.reader, form(isbn="0028-0836", title="Nature"))
    assert (view.isbn, view.issn) == (None, "0028-0836")


def test_a_closed_lender_refuses_with_the_reopening_date(db, svc, people, clock):
    with db.session() as s:
        svc.add_closure(s, people.pku, start=date(2025, 2, 20), end=date(2025, 3, 9),
                        name="寒假")
        # A consortium-wide holiday right after keeps it closed one more day.
        svc.add_closure(s, people.admin, start=date(2025, 3, 10), end=date(2025, 3, 10),
                        name="联盟盘点")
        with pytest.raises(ValidationFailed) as info:
            svc.create_request(s, people.reader, form())
        assert info.value.errors == {"lender": "北京大学图书馆闭馆中（寒假），2025年03月11日起受理"}
        assert svc.lender_open(s, "pku") == {"open": False, "closure": "寒假",
                                             "reopens": date(2025, 3, 11)}
        svc.create_request(s, people.reader, form(lender="nlc", record_id="nlc:1"))  # others
        # still lend
        clock.advance(days=8)  # 2025-03-11
        assert svc.create_request(s, people.reader, form(title="水浒传")).status == "submitted"


def test_prefill_from_a_merged_record_and_the_lenders_holding(svc, people):
    record = {"id": "pku:000123", "title": "红楼梦", "authors": ["曹雪芹", "高鹗"],
              "responsibility": "曹雪芹著", "publisher": "人民文学出版社", "year": 2008,
              "isbns": ["9787020065875"], "issns": [], "material_type": "book",
              "call_numbers": ["I242.4/1"],
              "holdings": [{"library": "bupt", "call_number": "I242.4/9"},
                           {"library": "pku", "call_number": "I242.4/3"}]}
    filled = svc.prefill(people.reader, record, "pku")
    assert filled["call_number"] == "I242.4/3" and filled["lender"] == "pku"
    assert filled["author"] == "曹雪芹；高鹗" and filled["record_id"] == "pku:000123"
    assert filled["name"] == people.reader.name and filled["delivery"] == "courier"
    assert svc.prefill(people.reader, record, "nlc")["call_number"] == "I242.4/1"


def test_duplicate_and_quota_are_refused_with_the_reason(db, svc, people, consortium, clock):
    with db.session() as s:
        first = svc.create_request(s, people.reader, form())
        with pytest.raises(Conflict, match=f"编号 {first.id}"):
            svc.create_request(s, people.reader, form(title="紅樓夢 ", lender="nlc",
                                                      record_id="nlc:1"))
        # Another reader may ask for the same book.
        svc.create_request(s, people.reader2, form())
        for i in range(9):
            svc.create_request(s, people.reader, form(title=f"第{i}本"))
        with pytest.raises(Conflict, match="达到上限 10 笔"):
            svc.create_request(s, people.reader, form(title="第十一本"))
        # A finished request frees a place.
        svc.cancel(s, people.reader, first.id)
        svc.create_request(s, people.reader, form(title="第十一本"))
        assert len(svc.list_requests(s, people.reader)) == 11


def test_the_quota_is_configurable(db, consortium, clock, people):
    from ill.service import IllService, IllSettings

    svc = IllService(consortium, IllSettings(max_active=2, scrypt_n=2**4), clock=clock)
    with db.session() as s:
        svc.create_request(s, people.reader, form(title="一"))
        svc.create_request(s, people.reader, form(title="二"))
        with pytest.raises(Conflict, match="达到上限 2 笔"):
            svc.create_request(s, people.reader, form(title="三"))


def test_json_of_the_wrong_shape_is_a_validation_error_not_a_crash(db, svc, people):
    with db.session() as s:
        with pytest.raises(ValidationFailed) as info:
            svc.create_request(s, people.reader, form(delivery=["courier"], lender={"id": 1},
                                                      year=[2008], note=7))
        assert set(info.value.errors) == {"delivery", "lender", "year"}
        req = svc.create_request(s, people.reader, form())
        for bad in ({"action": ["accept"]}, {"action": "reject", "reason": ["NotHeld"]},
                    {"action": "ship", "batch": 5}):
            with pytest.raises(ValidationFailed):
                svc.act(s, people.pku, req.id, bad["action"], reason=bad.get("reason"),
                        batch=bad.get("batch"))
        with pytest.raises(ValidationFailed):
            svc.cancel(s, people.reader, req.id, reason={"why": "no"})
        assert svc.get_request(s, people.reader, req.id).status == "submitted"


def test_no_direct_request_to_the_national_library(db, svc, people):
    """BALIS: nlc takes requests only from one of its records (ill direct_requests: false);
    the direct request form (no record_id) is refused on the lender, in both languages."""
    with db.session() as s:
        with pytest.raises(ValidationFailed) as info:
            svc.create_request(s, people.reader, form(lender="nlc"))
        assert set(info.value.errors) == {"lender"}
        assert info.value.errors["lender"].startswith("国家图书馆不受理直接申请")
        assert "no direct requests" in info.value.errors_en["lender"]
        with pytest.raises(ValidationFailed):  # an empty record id is no record
            svc.create_request(s, people.reader, form(lender="nlc", record_id="  "))
        assert svc.create_request(s, people.reader, form(
            lender="nlc", record_id="nlc:000123")).lender == "nlc"
        # Every other member still takes direct requests.
        assert svc.create_request(s, people.reader, form(title="水浒传")).lender == "pku"


def test_the_cancel_terms_follow_the_lenders_window(db, svc, people, clock):
    with db.session() as s:
        to_pku = svc.create_request(s, people.reader, form())
        to_nlc = svc.create_request(s, people.reader, form(title="西游记", lender="nlc",
                                                           record_id="nlc:7"))
    terms = svc.cancel_terms(to_pku)
    assert terms.mode == "self" and terms.until == to_pku.created + timedelta(minutes=60)
    assert svc.cancel_terms(to_nlc) == CancelTerms("ask", None)  # nlc: never by the reader
    clock.advance(minutes=61)
    assert svc.cancel_terms(to_pku) == CancelTerms("ask", None)
    with db.session() as s:
        svc.act(s, people.pku, to_pku.id, "accept")
        svc.act(s, people.pku, to_pku.id, "ship")
        shipped = svc.get_request(s, people.reader, to_pku.id)
    assert svc.cancel_terms(shipped) == CancelTerms("none", None)
