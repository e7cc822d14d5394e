"""Demo accounts for ``balis demo``: a reader, one staff account per library, an admin.

The demo reader holds a valid consortium self-pickup card (联盟自取借书证), so collecting in
person at the lender can be tried at once.

``seed`` is idempotent (existing logins are left alone) and returns the credentials to
print. Every demo account shares one password and hence one stored hash: hashing 48
passwords with production scrypt costs would hold up the demo's start by seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from broker.kernel.config import Consortium
from ill import passwords
from ill.calendar import utc_now
from ill.cards import card_number
from ill.db import Database
from ill.models import PickupCard, User, UserRole

DEMO_PASSWORD = "balis-demo"
DEMO_READER = "reader"
DEMO_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    login: str
    password: str
    role: UserRole
    library: str | None
    name: str


def accounts(consortium: Consortium) -> list[DemoAccount]:
    """The demo's accounts: the reader's home library is the first member that lends."""
    libs = consortium.libraries
    home = next((lib for lib in libs if lib.id == "bupt"), libs[0] if libs else None)
    out = [DemoAccount(DEMO_READER, DEMO_PASSWORD, "reader", home.id if home else None,
                       "演示读者")]
    out += [DemoAccount(f"staff-{lib.id}", DEMO_PASSWORD, "staff", lib.id,
                        f"{lib.name}馆际互借员") for lib in libs]
    out.append(DemoAccount(DEMO_ADMIN, DEMO_PASSWORD, "admin", None, "联盟管理员"))
    return out


def seed(target: Database | str | None, consortium: Consortium) -> list[DemoAccount]:
    """Create the demo accounts that do not exist yet (in ``target``, a Database or URL)."""
    db = target if isinstance(target, Database) else Database(target)
    wanted = accounts(consortium)
    try:
        with db.session() as session:
            existing = set(session.scalars(select(User.login)))
            stored = passwords.hash_password(DEMO_PASSWORD)
            now = utc_now()
            for account in wanted:
                if account.login in existing:
                    continue
                session.add(User(login=account.login, password_hash=stored, role=account.role,
                                 library=account.library, status="active", name=account.name,
                                 card_number="D0000001" if account.role == "reader" else None,
                                 phone="010-00000000" if account.role == "reader" else None,
                                 email=None, created=now))
            session.flush()
            _card_for_the_reader(session, now)
            session.commit()
    finally:
        if db is not target:
            db.dispose()
    return wanted


def _card_for_the_reader(session, now) -> None:
    reader = session.scalar(select(User).where(User.login == DEMO_READER))
    if reader is None or reader.library is None or session.scalar(
            select(PickupCard.id).where(PickupCard.reader_id == reader.id)) is not None:
        return
    card = PickupCard(reader_id=reader.id, library=reader.library, status="active",
                      applied_at=now, decided_at=now, valid_from=now.date(),
                      valid_until=now.date() + timedelta(days=364))
    session.add(card)
    session.flush()
    card.number = card_number(now.year, card.id)


def credentials_text(created: list[DemoAccount]) -> str:
    """What ``balis demo`` prints: the reader, the admin, and how staff logins are formed."""
    reader = next(a for a in created if a.role == "reader")
    staff = [a for a in created if a.role == "staff"]
    lines = [f"  reader: {reader.login} / {reader.password} (home library {reader.library})",
             f"  admin:  {DEMO_ADMIN} / {DEMO_PASSWORD}"]
    if staff:
        lines.append(f"  staff:  staff-<library id> / {DEMO_PASSWORD}, e.g. {staff[0].login} "
                     f"({len(staff)} libraries)")
    return "\n".join(lines)
