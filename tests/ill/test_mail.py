"""Notifications by e-mail against a real SMTP server (aiosmtpd) the tests start on
127.0.0.1: the outbox row is written with the status change, the sender delivers, retries
while the server is down, never sends a row twice; reminders and overdue notices once a
day; a reader without an address gets site messages only. SQLite and PostgreSQL."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from ill_helpers import form, walk
from sqlalchemy import select, update

from broker.kernel.errors import Conflict
from ill.mail import MailSettings
from ill.mail_sender import MailSender
from ill.models import MailOutbox


class _Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse = False

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd names it
        if self.refuse:
            return "451 try again later"
        self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.inbox = _Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def _settings(port: int, **overrides) -> MailSettings:
    return MailSettings(**{"host": "127.0.0.1", "port": port, "sender": "ill@balis.example",
                           "timeout": 5, "backoff_seconds": 60, **overrides})


@pytest.fixture
def mailing(db, svc, people, smtp, clock):
    """E-mail on; the reader has an address, reader2 has none."""
    settings = _settings(smtp.port)
    svc.configure_mail(settings)
    with db.session() as s:
        svc.update_profile(s, people.reader, {"email": "wang@example.edu.cn"})
    return MailSender(db, settings, clock=clock)


def _rows(db) -> list[MailOutbox]:
    with db.session() as s:
        return list(s.scalars(select(MailOutbox).order_by(MailOutbox.id)))


def _text(message: Message) -> str:
    part = message.get_payload(decode=True)
    assert isinstance(part, bytes)
    return part.decode(message.get_content_charset() or "utf-8")


def test_status_changes_reach_the_reader_by_mail(db, svc, people, smtp, mailing):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
    # Written with the change, sent only by the sender: the request did not wait.
    assert [(r.kind, r.status) for r in _rows(db)] == [("status", "pending")]
    assert smtp.inbox.messages == []
    walk(svc, db, people, req.id, [("pku", "accept")])
    report = mailing.run_once()
    assert report.sent == 2 and report.retrying == 0
    first, second = smtp.inbox.messages
    assert first["To"] == "wang@example.edu.cn" and first["From"] == "ill@balis.example"
    assert f"申请 {req.id}" in str(email.header.make_header(
        email.header.decode_header(second["Subject"])))
    body = _text(second)
    assert "已受理" in body and "English" in body and ": accepted." in body  # both languages
    assert body.index("已受理") < body.index("accepted")  # Chinese first, English below
    assert {r.status for r in _rows(db)} == {"sent"}
    assert mailing.run_once().sent == 0  # nothing is sent twice
    assert len(smtp.inbox.messages) == 2
    # Message-IDs are the rows' own.
    assert [m["Message-ID"] for m in smtp.inbox.messages] == [r.message_id for r in _rows(db)]


def test_a_failed_change_writes_no_mail(db, svc, people, mailing):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
        with pytest.raises(Conflict):
            svc.act(s, people.pku, req.id, "ship")  # not allowed from submitted
    assert len(_rows(db)) == 1  # only the submission's


def test_reader_without_email_gets_site_messages_only(db, svc, people, smtp, mailing):
    with db.session() as s:
        req = svc.create_request(s, people.reader2, form())
    walk(svc, db, people, req.id, [("pku", "accept")])
    assert _rows(db) == []
    with db.session() as s:
        assert len(svc.messages(s, people.reader2)) == 2
    assert mailing.run_once().sent == 0 and smtp.inbox.messages == []


def test_server_down_then_up_is_retried_with_backoff(db, svc, people, clock):
    server = SmtpServer()  # not started yet: nothing listens on its port
    settings = _settings(server.port)
    svc.configure_mail(settings)
    sender = MailSender(db, settings, clock=clock)
    with db.session() as s:
        svc.update_profile(s, people.reader, {"email": "wang@example.edu.cn"})
        svc.create_request(s, people.reader, form())
    try:
        report = sender.run_once()
        assert (report.sent, report.retrying) == (0, 1)
        (row,) = _rows(db)
        assert row.status == "pending" and row.attempts == 1
        assert row.last_error and "Connection" in row.last_error
        assert row.next_attempt == clock.now + timedelta(seconds=60)
        server.start()
        assert sender.run_once().sent == 0  # not yet due again: backoff
        clock.advance(seconds=61)
        server.inbox.refuse = True  # up, but a temporary refusal: retried too
        assert sender.run_once().retrying == 1
        (row,) = _rows(db)
        assert row.attempts == 2 and row.next_attempt == clock.now + timedelta(seconds=120)
        assert "451" in (row.last_error or "")
        server.inbox.refuse = False
        clock.advance(seconds=121)
        assert sender.run_once().sent == 1
        (row,) = _rows(db)
        assert (row.status, row.attempts) == ("sent", 3) and row.sent_at == clock.now
        assert len(server.inbox.messages) == 1
    finally:
        server.stop()


def test_too_many_failures_give_up(db, svc, people, clock):
    settings = _settings(_free_port(), max_attempts=2, backoff_seconds=1)
    svc.configure_mail(settings)
    sender = MailSender(db, settings, clock=clock)
    with db.session() as s:
        svc.update_profile(s, people.reader, {"email": "wang@example.edu.cn"})
        svc.create_request(s, people.reader, form())
    sender.run_once()
    clock.advance(seconds=5)
    assert sender.run_once().failed == 1
    assert _rows(db)[0].status == "failed"


def test_a_crash_between_send_and_mark_is_not_sent_again(db, svc, people, smtp, mailing,
                                                         clock):
    with db.session() as s:
        svc.create_request(s, people.reader, form())
    (row,) = _rows(db)
    # As a sender that stopped after handing it over: claimed, never marked.
    with db.session() as s:
        s.execute(update(MailOutbox).where(MailOutbox.id == row.id)
                  .values(status="sending", claimed_at=clock.now, attempts=1))
        s.commit()
    assert mailing.run_once().sent == 0  # its lease has not passed: someone may be sending
    clock.advance(minutes=10)
    report = mailing.run_once()
    assert (report.sent, report.uncertain) == (0, 1)  # at most once: not resent
    assert _rows(db)[0].status == "uncertain" and smtp.inbox.messages == []
    assert mailing.resend_uncertain() == 1  # the operator's deliberate choice
    assert mailing.run_once().sent == 1 and len(smtp.inbox.messages) == 1


def test_two_senders_never_send_one_row_twice(db, svc, people, smtp, mailing, clock):
    with db.session() as s:
        for n in range(4):
            svc.create_request(s, people.reader, form(title=f"书{n}"))
    other = MailSender(db, mailing.settings, clock=clock)
    assert mailing.run_once(limit=2).sent + other.run_once().sent == 4
    assert len(smtp.inbox.messages) == 4
    assert len({m["Message-ID"] for m in smtp.inbox.messages}) == 4


def test_reminders_and_overdue_notices_once_a_day(db, svc, people, smtp, mailing, clock):
    with db.session() as s:
        req = svc.create_request(s, people.reader, form())
    walk(svc, db, people, req.id, [("pku", "accept"), ("pku", "ship"), ("bupt", "receive"),
                                   ("bupt", "checkout")])
    mailing.run_once()
    smtp.inbox.messages.clear()
    with db.session() as s:
        due = svc.get_request(s, people.reader, req.id).due
        assert svc.queue_loan_notices(s) == 0  # weeks before the due date
    clock.now = clock.now + (due - clock.now.date()) - timedelta(days=3)
    with db.session() as s:
        assert svc.queue_loan_notices(s) == 1
        assert svc.queue_loan_notices(s) == 0  # the same day again: nothing new
    clock.advance(days=1)
    with db.session() as s:
        assert svc.queue_loan_notices(s) == 0  # one reminder per due date
    clock.advance(days=3)  # one day overdue
    with db.session() as s:
        assert svc.queue_loan_notices(s) == 1
        assert svc.queue_loan_notices(s) == 0
        texts = [m.text for m in svc.messages(s, people.reader)]
        assert "已逾期 1 天" in texts[0] and "应还日期" in texts[1]  # site messages too
    clock.advance(days=3)
    with db.session() as s:
        assert svc.queue_loan_notices(s) == 0  # again only after a week
    clock.advance(days=4)
    with db.session() as s:
        assert svc.queue_loan_notices(s) == 1
    assert mailing.run_once().sent == 3
    subjects = [str(email.header.make_header(email.header.decode_header(m["Subject"])))
                for m in smtp.inbox.messages]
    assert subjects[0].startswith("还书提醒") and "Due-date reminder" in subjects[0]
    assert subjects[1].startswith("逾期通知") and "Overdue notice" in subjects[2]


def test_mail_is_off_without_a_host(db, svc, people):
    assert MailSettings.from_config({}, {}) is None
    on = MailSettings.from_config({"SMTP_HOST": "smtp.example.edu.cn", "SMTP_STARTTLS": "yes"},
                                  {"BALIS_SMTP_USER": "ill", "BALIS_SMTP_FROM": "ill@x.cn"})
    assert on is not None and (on.port, on.starttls, on.user, on.sender) == (
        587, True, "ill", "ill@x.cn")
    with pytest.raises(ValueError, match="SMTP_PORT"):
        MailSettings.from_config({"SMTP_HOST": "h", "SMTP_PORT": "twenty-five"}, {})
    with db.session() as s:
        svc.update_profile(s, people.reader, {"email": "wang@example.edu.cn"})
        svc.create_request(s, people.reader, form())
    assert _rows(db) == []  # e-mail off: no outbox rows
    with db.session() as s:
        assert len(svc.messages(s, people.reader)) == 1  # the site message still is


def test_the_balis_mail_command(db, db_url, svc, people, smtp, mailing, tmp_path):
    """``balis mail`` as a cron job runs it: one pass, then the outbox's state."""
    import json
    import os
    import subprocess
    import sys

    with db.session() as s:
        svc.create_request(s, people.reader, form())
    env = {**os.environ, "BALIS_SMTP_HOST": "127.0.0.1", "BALIS_SMTP_PORT": str(smtp.port),
           "BALIS_SMTP_FROM": "ill@balis.example", "BALIS_INSTANCE": str(tmp_path)}

    def balis(*args: str, environ: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "balis", "mail", "--database", db_url,
                               *args], env=environ or env, capture_output=True, text=True,
                              timeout=120)

    done = balis("--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sent"] == 1 and len(smtp.inbox.messages) == 1
    status = balis("--status", "--json")
    assert [json.loads(line)["status"] for line in status.stdout.splitlines()] == ["sent"]
    off = balis(environ={k: v for k, v in env.items() if not k.startswith("BALIS_SMTP_")})
    assert off.returncode == 2 and "BALIS_SMTP_HOST" in off.stderr
    assert "Traceback" not in off.stderr
    bad = balis(environ={**env, "BALIS_SMTP_PORT": "x"})
    assert bad.returncode == 2 and "SMTP_PORT" in bad.stderr


def test_the_background_sender_of_balis_serve(db, svc, people, smtp, mailing):
    import time

    from ill.mail_sender import BackgroundSender

    with db.session() as s:
        svc.create_request(s, people.reader, form())
    background = BackgroundSender(lambda: mailing, svc.queue_loan_notices, interval=0.2)
    background.start()
    try:
        deadline = time.monotonic() + 30
        while not smtp.inbox.messages and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        background.stop()
    assert len(smtp.inbox.messages) == 1 and _rows(db)[0].status == "sent"
