"""Accounts: registration and approval by the home library, logins and their throttling,
password hashes, profiles, API tokens."""

from __future__ import annotations

import pytest
from ill_helpers import PASSWORD
from sqlalchemy import select

from broker.kernel.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    Throttled,
    ValidationFailed,
)
from ill import passwords
from ill.models import ApiToken, User

REGISTRATION = {"login": "newbie", "password": "long-enough-1", "library": "bupt",
                "name": "新读者", "card_number": "2023110001", "phone": "13900000000",
                "email": "newbie@bupt.edu.cn"}


def test_registration_waits_for_the_home_librarys_approval(db, svc, people):
    with db.session() as s:
        user = svc.register(s, REGISTRATION)
        assert user.status == "pending" and user.role == "reader"
        with pytest.raises(AuthenticationFailed, match="等待本馆审核"):
            svc.authenticate(s, "newbie", "long-enough-1")
        assert svc.pending_registrations(s, people.pku) == []
        assert [u.login for u in svc.pending_registrations(s, people.bupt)] == ["newbie"]
        with pytest.raises(Forbidden):
            svc.approve_registration(s, people.pku, user.id)
        with pytest.raises(Forbidden):
            svc.pending_registrations(s, people.reader)
        svc.approve_registration(s, people.bupt, user.id)
        with pytest.raises(Conflict):
            svc.approve_registration(s, people.bupt, user.id)
        actor = svc.authenticate(s, "newbie", "long-enough-1")
        assert (actor.library, actor.role) == ("bupt", "reader")
        assert svc.messages(s, actor)[0].text == "您的读者注册已通过审核"


def test_registration_checks_every_field(db, svc, people):
    with db.session() as s:
        with pytest.raises(ValidationFailed) as info:
            svc.register(s, {"login": "x", "password": "short", "library": "mit",
                             "email": "not-mail", "phone": "call me"})
        assert set(info.value.errors) == {"login", "password", "library", "name",
                                          "card_number", "phone", "email"}
        svc.register(s, REGISTRATION)
        with pytest.raises(ValidationFailed) as info:
            svc.register(s, REGISTRATION)
        assert info.value.errors == {"login": "该登录名已被使用"}
        with pytest.raises(ValidationFailed) as info:
            svc.register(s, {**REGISTRATION, "login": "other"})
        assert info.value.errors == {"card_number": "该读者证号已注册"}
        refused = svc.register(s, {**REGISTRATION, "login": "third", "card_number": "9"})
        svc.approve_registration(s, people.bupt, refused.id, approve=False, reason="非本校")
        with pytest.raises(AuthenticationFailed, match="已停用"):
            svc.authenticate(s, "third", "long-enough-1")


def test_five_failures_lock_a_login_for_fifteen_minutes(db, svc, people, clock):
    with db.session() as s:
        for _ in range(5):
            with pytest.raises(AuthenticationFailed) as info:
                svc.authenticate(s, "wang", "wrong")
            assert not isinstance(info.value, Throttled)
        with pytest.raises(Throttled) as info:  # even the right password now
            svc.authenticate(s, "wang", PASSWORD)
        assert 0 < info.value.retry_after <= 15 * 60
        svc.authenticate(s, "zhao", PASSWORD)  # other accounts are not affected
        clock.advance(minutes=15, seconds=1)
        assert svc.authenticate(s, "wang", PASSWORD).login == "wang"
        # A success clears the count.
        for _ in range(4):
            with pytest.raises(AuthenticationFailed):
                svc.authenticate(s, "wang", "wrong")
        svc.authenticate(s, "wang", PASSWORD)
        with pytest.raises(AuthenticationFailed):
            svc.authenticate(s, "wang", "wrong")
        svc.authenticate(s, "wang", PASSWORD)
        # Unknown logins are throttled the same way (no telling which logins exist).
        for _ in range(5):
            with pytest.raises(AuthenticationFailed):
                svc.authenticate(s, "nobody", "x")
        with pytest.raises(Throttled):
            svc.authenticate(s, "nobody", "x")


def test_passwords_are_scrypt_with_their_own_salt_and_cost(db, svc, people):
    with db.session() as s:
        hashes = {login: h for login, h in s.execute(select(User.login, User.password_hash))}
    assert hashes["wang"].startswith("scrypt$16$8$3$")
    assert PASSWORD not in hashes["wang"]
    assert len(set(hashes.values())) == len(hashes)  # a salt each
    stored = passwords.hash_password("密码 with spaces")
    assert stored.startswith(f"scrypt${2**15}$8$3$")  # the production cost
    assert passwords.verify_password("密码 with spaces", stored)
    assert not passwords.verify_password("密码 with space", stored)
    assert not passwords.verify_password("x", "md5$abc") and not passwords.verify_password(
        "x", "scrypt$1$2")


def test_a_login_rehashes_a_password_stored_at_an_old_cost(db, svc, people, consortium, clock):
    from ill.service import IllService, IllSettings

    stronger = IllService(consortium, IllSettings(scrypt_n=2**5), clock=clock)
    with db.session() as s:
        stronger.authenticate(s, "wang", PASSWORD)
        stored = s.scalar(select(User.password_hash).where(User.login == "wang"))
    assert stored.startswith("scrypt$32$")


def test_profile_and_password_change(db, svc, people):
    with db.session() as s:
        view = svc.update_profile(s, people.reader, {"phone": "010-12345678",
                                                     "email": "w@example.cn"})
        assert (view.phone, view.email, view.name) == ("010-12345678", "w@example.cn",
                                                       "wang-name")
        with pytest.raises(ValidationFailed):
            svc.update_profile(s, people.reader, {"email": "nope", "name": ""})
        with pytest.raises(ValidationFailed) as info:
            svc.change_password(s, people.reader, "wrong", "new-password-1")
        assert "old_password" in info.value.errors
        svc.change_password(s, people.reader, PASSWORD, "new-password-1")
        svc.authenticate(s, "wang", "new-password-1")


def test_api_tokens_are_stored_only_as_hashes(db, svc, people):
    with db.session() as s:
        token = svc.issue_token(s, "s-pku", PASSWORD)
        assert svc.token_actor(s, token).login == "s-pku"
        stored = s.scalars(select(ApiToken.token_hash)).all()
        assert token not in stored and len(stored[0]) == 64
        with pytest.raises(AuthenticationFailed):
            svc.token_actor(s, token + "x")
        with pytest.raises(AuthenticationFailed):
            svc.issue_token(s, "s-pku", "wrong")
        svc.revoke_token(s, people.pku, token)
        with pytest.raises(AuthenticationFailed):
            svc.token_actor(s, token)


def test_only_admins_open_accounts_directly(db, svc, people):
    with db.session() as s:
        with pytest.raises(Forbidden):
            svc.create_user(s, login="sneaky", password=PASSWORD, role="admin",
                            by=people.pku)
        made = svc.create_user(s, login="helper", password=PASSWORD, role="staff",
                               library="nlc", by=people.admin)
        assert made.status == "active"
        with pytest.raises(ValidationFailed) as info:
            svc.create_user(s, login="xyz2", password=PASSWORD, role="staff")
        assert info.value.errors == {"library": "请选择图书馆"}
