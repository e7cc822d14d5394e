"""Accounts: registration and approval, logins with throttling, profiles, API tokens."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.kernel.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFound,
    Throttled,
    ValidationFailed,
)
from ill import passwords
from ill.core import ServiceCore, optional_text, raise_if, text_field, unit_of_work
from ill.models import USER_ROLES, ApiToken, LoginAttempt, User
from ill.values import Actor, UserView, actor_of, user_view

_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^[0-9+()\- ]{5,30}$")


class AccountsMixin(ServiceCore):
    # -- creating accounts
    @unit_of_work
    def register(self, session: Session, data: Mapping[str, Any]) -> UserView:
        """A reader registers (fields login, password, library, name, card_number, phone,
        email); the account stays pending until staff of that library approve it."""
        errors: dict[str, str] = {}
        en: dict[str, str] = {}
        login = self._check_login(data.get("login"), errors, en)
        password = self._check_password(data.get("password"), errors, en)
        library = self._check_library(data.get("library"), errors, en, required=True)
        name = text_field(errors, en, data, "name", 100, required="请填写姓名",
                          required_en="name is required")
        card = text_field(errors, en, data, "card_number", 40, required="请填写读者证号",
                          required_en="reader card number is required")
        phone = self._check_phone(data, errors, en, required=True)
        email = self._check_email(data, errors, en, required=True)
        raise_if(errors, en)
        user = self._insert_user(session, login=login, password=password, role="reader",
                                 library=library, name=name or "", status="pending",
                                 card_number=card, phone=phone, email=email)
        self._audit(session, None, "user.register", f"user:{user.id}", {"library": library})
        session.commit()
        return user_view(user)

    @unit_of_work
    def create_user(self, session: Session, *, login: str, password: str, role: str,
                    library: str | None = None, name: str = "", phone: str | None = None,
                    email: str | None = None, card_number: str | None = None,
                    by: Actor | None = None) -> UserView:
        """An active account (``balis user add``, the demo, an admin's page)."""
        if by is not None and not by.is_admin:
            raise Forbidden("只有联盟管理员可以直接开设账号")
        errors: dict[str, str] = {}
        en: dict[str, str] = {}
        login = self._check_login(login, errors, en)
        password = self._check_password(password, errors, en)
        if role not in USER_ROLES:
            errors["role"] = "角色须为 reader、staff 或 admin"
            en["role"] = "role must be reader, staff or admin"
        library = self._check_library(library, errors, en, required=role in ("reader", "staff"))
        raise_if(errors, en)
        user = self._insert_user(session, login=login, password=password, role=role,
                                 library=library if role != "admin" or library else None,
                                 name=name or login, status="active", card_number=card_number,
                                 phone=phone, email=email)
        self._audit(session, by, "user.create", f"user:{user.id}", {"role": role})
        session.commit()
        return user_view(user)

    def _insert_user(self, session: Session, **values: Any) -> User:
        password = values.pop("password")
        user = User(password_hash=passwords.hash_password(password, n=self.settings.scrypt_n),
                    created=self.now(), **values)
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            if session.scalar(select(User.id).where(User.login == values["login"])):
                raise ValidationFailed({"login": "该登录名已被使用"},
                                       {"login": "this login is taken"}) from None
            raise ValidationFailed({"card_number": "该读者证号已注册"},
                                   {"card_number": "this card number is registered"}) from None
        return user

    @unit_of_work
    def pending_registrations(self, session: Session, actor: Actor) -> list[UserView]:
        """Readers waiting for approval: of the actor's library (admins: all)."""
        self.require_staff(actor)
        query = select(User).where(User.status == "pending").order_by(User.created)
        if not actor.is_admin:
            query = query.where(User.library == actor.library)
        return [user_view(u) for u in session.scalars(query)]

    @unit_of_work
    def approve_registration(self, session: Session, actor: Actor, user_id: int, *,
                             approve: bool = True, reason: str | None = None) -> UserView:
        """Staff of the reader's home library approve (active) or refuse (disabled)."""
        reason = optional_text(reason, "reason", 200)
        user = self._user(session, user_id, lock=True)
        self.require_staff(actor, user.library)
        if user.status != "pending":
            raise Conflict(f"账号 {user.login} 已处理（{user.status}）")
        user.status = "active" if approve else "disabled"
        user.approved_at, user.approved_by = self.now(), actor.id
        self._audit(session, actor, "user.approve" if approve else "user.refuse",
                    f"user:{user.id}", {"reason": reason})
        self._tell(session, user.id, "您的读者注册已通过审核" if approve
                   else f"您的读者注册未通过审核：{reason or '请联系本馆'}")
        session.commit()
        return user_view(user)

    # -- logging in
    @unit_of_work
    def authenticate(self, session: Session, login: str, password: str) -> Actor:
        """The active account with this login and password.

        Throttled after ``login_failures`` failures within ``login_window_minutes``
        (counted per login, whether or not it exists); AuthenticationFailed otherwise."""
        login = (login or "").strip()
        now = self.now()
        window = timedelta(minutes=self.settings.login_window_minutes)
        # Failures since the last success (by id: a clock may repeat an instant).
        last_ok = session.scalar(select(func.max(LoginAttempt.id)).where(
            LoginAttempt.login == login, LoginAttempt.ok.is_(True))) or 0
        failures = session.scalars(
            select(LoginAttempt.at).where(LoginAttempt.login == login,
                                          LoginAttempt.at > now - window,
                                          LoginAttempt.id > last_ok,
                                          LoginAttempt.ok.is_(False))
            .order_by(LoginAttempt.id)).all()
        if len(failures) >= self.settings.login_failures:
            oldest = failures[-self.settings.login_failures]
            wait = max(1, math.ceil((oldest + window - now).total_seconds()))
            session.rollback()
            raise Throttled(f"登录失败次数过多，请 {(wait + 59) // 60} 分钟后再试", wait)
        user = session.scalars(select(User).where(User.login == login)).first()
        if user is None:
            passwords.dummy_verify(password or "", n=self.settings.scrypt_n)
            ok = False
        else:
            ok = passwords.verify_password(password or "", user.password_hash)
        session.add(LoginAttempt(login=login[:64], at=now, ok=ok))
        if user is not None and ok \
                and passwords.needs_rehash(user.password_hash, n=self.settings.scrypt_n):
            user.password_hash = passwords.hash_password(password, n=self.settings.scrypt_n)
        session.commit()
        if user is None or not ok:
            raise AuthenticationFailed("登录名或密码不正确")
        if user.status == "pending":
            raise AuthenticationFailed("您的注册正在等待本馆审核")
        if user.status != "active":
            raise AuthenticationFailed("该账号已停用，请联系本馆馆际互借处")
        return actor_of(user)

    @unit_of_work
    def actor(self, session: Session, user_id: int) -> Actor:
        """The actor behind a logged-in session's user id (must still be active)."""
        user = self._user(session, user_id)
        if user.status != "active":
            raise AuthenticationFailed("该账号已停用或尚未审核")
        return actor_of(user)

    # -- profile
    @unit_of_work
    def profile(self, session: Session, actor: Actor) -> UserView:
        return user_view(self._user(session, actor.id))

    @unit_of_work
    def update_profile(self, session: Session, actor: Actor,
                       data: Mapping[str, Any]) -> UserView:
        """Change name, phone, e-mail (only the keys given)."""
        errors: dict[str, str] = {}
        en: dict[str, str] = {}
        values: dict[str, Any] = {}
        if "name" in data:
            values["name"] = text_field(errors, en, data, "name", 100, required="请填写姓名",
                                        required_en="name is required")
        if "phone" in data:
            values["phone"] = self._check_phone(data, errors, en, required=False)
        if "email" in data:
            values["email"] = self._check_email(data, errors, en, required=False)
        raise_if(errors, en)
        user = self._user(session, actor.id, lock=True)
        for key, value in values.items():
            setattr(user, key, value)
        session.commit()
        return user_view(user)

    @unit_of_work
    def change_password(self, session: Session, actor: Actor, old: str, new: str) -> None:
        user = self._user(session, actor.id, lock=True)
        if not passwords.verify_password(old or "", user.password_hash):
            session.rollback()
            raise ValidationFailed({"old_password": "原密码不正确"},
                                   {"old_password": "the current password is wrong"})
        errors: dict[str, str] = {}
        en: dict[str, str] = {}
        new = self._check_password(new, errors, en, field="new_password")
        raise_if(errors, en)
        user.password_hash = passwords.hash_password(new, n=self.settings.scrypt_n)
        self._audit(session, actor, "user.password", f"user:{user.id}")
        session.commit()

    def home_contact(self, actor: Actor) -> dict[str, str | None]:
        """The actor's home library's ILL desk, for the foot of every page."""
        lib = self.library(actor.library or "")
        if lib is None:
            return {"library": None, "name": None, "phone": None, "email": None}
        return {"library": lib.name, "name": lib.contact.name, "phone": lib.contact.phone,
                "email": lib.contact.email}

    # -- API tokens (CONTRACTS section 6: POST /api/tokens)
    @unit_of_work
    def issue_token(self, session: Session, login: str, password: str) -> str:
        """A new bearer token for this login (the token itself is never stored)."""
        actor = self.authenticate(session, login, password)
        token = secrets.token_urlsafe(32)
        session.add(ApiToken(user_id=actor.id, token_hash=_token_hash(token),
                             created=self.now()))
        session.commit()
        return token

    @unit_of_work
    def token_actor(self, session: Session, token: str) -> Actor:
        row = session.scalars(select(ApiToken).where(
            ApiToken.token_hash == _token_hash(token or ""),
            ApiToken.revoked_at.is_(None))).first()
        if row is None:
            raise AuthenticationFailed("令牌无效或已撤销")
        actor = self.actor(session, row.user_id)
        row.last_used = self.now()
        session.commit()
        return actor

    @unit_of_work
    def revoke_token(self, session: Session, actor: Actor, token: str) -> None:
        row = session.scalars(select(ApiToken).where(
            ApiToken.token_hash == _token_hash(token or ""))).first()
        if row is None or row.user_id != actor.id:
            raise NotFound("没有这个令牌")
        row.revoked_at = self.now()
        session.commit()

    # -- field checks
    @staticmethod
    def _check_login(value: Any, errors: dict, en: dict) -> str:
        login = value.strip() if isinstance(value, str) else ""
        if not _LOGIN.match(login):
            errors["login"] = "登录名须为 3 到 64 个字母、数字或 _ . @ -"
            en["login"] = "login: 3 to 64 letters, digits or _ . @ -"
        return login

    def _check_password(self, value: Any, errors: dict, en: dict,
                        field: str = "password") -> str:
        if not isinstance(value, str) or len(value) < self.settings.password_min_length:
            errors[field] = f"密码至少 {self.settings.password_min_length} 位"
            en[field] = f"at least {self.settings.password_min_length} characters"
            return ""
        if len(value) > 1024:
            errors[field], en[field] = "密码过长", "password too long"
        return value

    def _check_library(self, value: Any, errors: dict, en: dict, *,
                       required: bool) -> str | None:
        if not value:
            if required:
                errors["library"], en["library"] = "请选择图书馆", "library is required"
            return None
        if not isinstance(value, str) or self.library(value) is None:
            errors["library"] = "没有这个成员馆"
            en["library"] = f"no member library {value!r}"
            return None
        return value

    @staticmethod
    def _check_phone(data: Mapping[str, Any], errors: dict, en: dict, *,
                     required: bool) -> str | None:
        phone = text_field(errors, en, data, "phone", 30,
                           required="请填写电话" if required else None,
                           required_en="phone is required")
        if phone and not _PHONE.match(phone):
            errors["phone"], en["phone"] = "电话号码格式不正确", "not a phone number"
        return phone

    @staticmethod
    def _check_email(data: Mapping[str, Any], errors: dict, en: dict, *,
                     required: bool) -> str | None:
        email = text_field(errors, en, data, "email", 200,
                           required="请填写电子邮箱" if required else None,
                           required_en="e-mail is required")
        if email and not _EMAIL.match(email):
            errors["email"], en["email"] = "电子邮箱格式不正确", "not an e-mail address"
        return email


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
