"""The consortium self-pickup card (联盟自取借书证): apply, approve or refuse, the number and
its validity, pick-up requests need it, the lender's desk checks it; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from ill_helpers import form, walk

from broker.kernel.errors import Conflict, Forbidden, ValidationFailed
from ill.cards import CardSettings, card_number, luhn_digit, normalize_number


def _issue(db, svc, reader, staff):
    with db.session() as s:
        card = svc.apply_card(s, reader, note="常去首师大")
        return svc.decide_card(s, staff, card.id, approve=True)


def test_numbers_carry_a_check_digit():
    number = card_number(2025, 42)
    assert number[:10] == "2025000042" and len(number) == 11
    assert luhn_digit("7992739871") == "3"  # the textbook Luhn example
    assert normalize_number(number) == number
    assert normalize_number(f" {number[:4]}-{number[4:]} ") == number  # as printed
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert normalize_number(wrong) is None
    assert normalize_number("abc") is None and normalize_number("") is None


def test_apply_approve_and_the_validity_period(db, svc, people, clock):
    with db.session() as s:
        assert svc.my_card(s, people.reader) is None
        card = svc.apply_card(s, people.reader)
        assert card.state == "pending" and card.number is None and card.library == "bupt"
        with pytest.raises(Conflict, match="等待本馆审核"):
            svc.apply_card(s, people.reader)
        # Only the home library's staff decide.
        assert [c.id for c in svc.card_applications(s, people.bupt)] == [card.id]
        assert svc.card_applications(s, people.pku) == []
        with pytest.raises(Forbidden):
            svc.decide_card(s, people.pku, card.id, approve=True)
        with pytest.raises(Forbidden):
            svc.card_applications(s, people.reader)
        issued = svc.decide_card(s, people.bupt, card.id, approve=True)
        assert issued.state == "valid" and issued.valid
        assert issued.number == card_number(2025, card.id)
        assert issued.valid_from == date(2025, 3, 3)
        assert issued.valid_until == date(2025, 3, 3) + timedelta(days=364)  # a year
        with pytest.raises(Conflict, match="已处理"):
            svc.decide_card(s, people.bupt, card.id, approve=False)
        with pytest.raises(Conflict, match="已持有有效"):
            svc.apply_card(s, people.reader)
        texts = [m.text for m in svc.messages(s, people.reader)]
        assert any(issued.number in t for t in texts)  # the reader is told the number
    clock.advance(days=365)
    with db.session() as s:
        assert svc.my_card(s, people.reader).state == "expired"
        again = svc.apply_card(s, people.reader)  # an expired card may be renewed
        assert again.state == "pending"


def test_refuse_and_revoke(db, svc, people):
    with db.session() as s:
        card = svc.apply_card(s, people.reader2)
        refused = svc.decide_card(s, people.bupt, card.id, approve=False, reason="读者证已过期")
        assert refused.state == "refused" and refused.reason == "读者证已过期"
        assert refused.number is None
    issued = _issue(db, svc, people.reader, people.bupt)
    with db.session() as s:
        with pytest.raises(ValidationFailed):
            svc.revoke_card(s, people.bupt, issued.id)  # a reason is required
        revoked = svc.revoke_card(s, people.bupt, issued.id, reason="遗失补办")
        assert revoked.state == "revoked"
        check = svc.check_card(s, people.cnu, issued.number)
        assert check.result == "ok" and not check.valid and check.card.state == "revoked"


def test_pickup_needs_a_valid_card(db, svc, people, clock):
    with db.session() as s:
        with pytest.raises(ValidationFailed) as caught:
            svc.create_request(s, people.reader, form(delivery="pickup", lender="cnu",
                                                      year="x"))
        # All problems at once: the card and the form's own.
        assert "联盟自取借书证" in caught.value.errors["delivery"]
        assert "year" in caught.value.errors
        assert "pickup card" in caught.value.errors_en["delivery"]
        svc.create_request(s, people.reader, form(delivery="courier"))  # courier: no card
    card = _issue(db, svc, people.reader, people.bupt)
    with db.session() as s:
        req = svc.create_request(s, people.reader, form(delivery="pickup", lender="cnu",
                                                        title="水浒传"))
        assert req.delivery == "pickup"
    clock.now = clock.now + timedelta(days=366)
    with db.session() as s, pytest.raises(ValidationFailed, match="联盟自取借书证"):
        svc.create_request(s, people.reader, form(delivery="pickup", lender="cnu",
                                                  title="西游记"))
    assert card.valid_until is not None


def test_the_requirement_can_be_switched_off(db, svc, people):
    svc.configure_cards(CardSettings(valid_days=30, required_for_pickup=False))
    with db.session() as s:
        assert svc.create_request(s, people.reader, form(delivery="pickup",
                                                         lender="cnu")).delivery == "pickup"
    card = _issue(db, svc, people.reader2, people.bupt)
    assert card.valid_until == card.valid_from + timedelta(days=29)
    with pytest.raises(ValueError):
        svc.configure_cards(CardSettings(valid_days=0))


def test_the_lenders_desk_checks_the_card(db, svc, people):
    card = _issue(db, svc, people.reader, people.bupt)
    with db.session() as s:
        ready = svc.create_request(s, people.reader, form(delivery="pickup", lender="cnu"))
        other = svc.create_request(s, people.reader, form(delivery="pickup", lender="pku",
                                                          title="三国演义"))
    walk(svc, db, people, ready.id, [("cnu", "accept")])
    walk(svc, db, people, other.id, [("pku", "accept")])
    with db.session() as s:
        check = svc.check_card(s, people.cnu, f"{card.number[:4]} {card.number[4:]}")
        assert check.result == "ok" and check.valid
        assert check.card.reader_name == "wang-name"
        assert check.card.library_name == "北京邮电大学图书馆"
        # Only what waits at this desk, not at pku's.
        assert [r.id for r in check.waiting] == [ready.id] and check.on_loan == ()
    walk(svc, db, people, ready.id, [("cnu", "checkout")])
    with db.session() as s:
        check = svc.check_card(s, people.cnu, card.number)
        assert check.waiting == () and [r.id for r in check.on_loan] == [ready.id]
        assert svc.check_card(s, people.cnu, "12345").result == "malformed"
        assert svc.check_card(s, people.cnu, card_number(2025, 999)).result == "unknown"
        with pytest.raises(Forbidden):
            svc.check_card(s, people.reader, card.number)
        as_json = check.as_dict()
        assert as_json["card"]["number"] == card.number and as_json["valid"] is True
        assert as_json["on_loan"][0]["id"] == ready.id
