"""Delivering the outbox (``mail_outbox``) over SMTP: ``balis mail`` and ``balis serve``'s
background sender.

One row at a time: **claim** it (``pending`` -> ``sending``, committed), hand it to the SMTP
server, **mark** it ``sent`` (committed). Two senders never claim the same row: the claim
is an UPDATE guarded by the row's status, and only the one that changed it sends.

A failure puts the row back to ``pending`` with its attempt counted, the error kept and the
next attempt later (doubling from ``backoff_seconds``, at most 6 hours); a permanent refusal
(an SMTP 5xx answer) or ``max_attempts`` failures give it up (``failed``).

Delivery is **at most once**: a sender that stops between handing a message to the server
and marking it leaves the row ``sending``; once its lease has passed, the next run marks it
``uncertain`` and does not send it again (the reader still has the site message). An
operator who prefers a possible duplicate to a possible loss resends those with
``balis mail --resend-uncertain``; each message keeps its own Message-ID, so a duplicate
can be recognised.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from ill import calendar
from ill.db import Database
from ill.mail import MailSettings
from ill.models import MailOutbox

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    uncertain: int = 0  # rows found interrupted by an earlier sender and not resent

    def __str__(self) -> str:
        return (f"sent {self.sent}, to retry {self.retrying}, failed {self.failed}, "
                f"uncertain {self.uncertain}")


class _Permanent(Exception):
    """The server refused the message for good (5xx): retrying would not help."""


class MailSender:
    def __init__(self, db: Database, settings: MailSettings, *,
                 clock: Callable[[], datetime] = calendar.utc_now) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    def run_once(self, limit: int = 100) -> SendReport:
        """Send what is due now (at most ``limit`` rows); never raises for SMTP trouble."""
        uncertain = self._expire_leases()
        sent = retrying = failed = 0
        connection: smtplib.SMTP | None = None
        try:
            for _ in range(limit):
                row = self._claim()
                if row is None:
                    break
                try:
                    if connection is None:
                        connection = self._connect()
                    connection.send_message(self._message(row))
                except Exception as exc:  # every failure is recorded on the row
                    outcome = self._failed(row, exc)
                    failed += outcome == "failed"
                    retrying += outcome == "pending"
                    _quit(connection)
                    connection = None
                    if outcome == "pending":
                        # The server is unreachable or busy: the rest wait for the next run.
                        break
                    continue
                self._mark_sent(row.id)
                sent += 1
        finally:
            _quit(connection)
        report = SendReport(sent, retrying, failed, uncertain)
        if sent or retrying or failed or uncertain:
            log.info("mail outbox: %s", report)
        return report

    def resend_uncertain(self) -> int:
        """Put ``uncertain`` rows back in the queue (the operator accepts duplicates)."""
        with self.db.session() as s:
            result = cast(CursorResult[Any], s.execute(
                update(MailOutbox).where(MailOutbox.status == "uncertain")
                .values(status="pending", next_attempt=self.clock(), claimed_at=None)))
            s.commit()
            return result.rowcount or 0

    # -- the steps, each its own transaction
    def _expire_leases(self) -> int:
        cutoff = self.clock() - self.settings.lease
        with self.db.session() as s:
            result = cast(CursorResult[Any], s.execute(
                update(MailOutbox).where(MailOutbox.status == "sending",
                                         MailOutbox.claimed_at < cutoff)
                .values(status="uncertain",
                        last_error="interrupted between sending and marking; not resent")))
            s.commit()
            count = result.rowcount or 0
        if count:
            log.warning("%d outbox rows were interrupted while sending; marked uncertain "
                        "(balis mail --resend-uncertain sends them again)", count)
        return count

    def _claim(self) -> MailOutbox | None:
        now = self.clock()
        with self.db.session() as s:
            while True:
                row = s.scalars(select(MailOutbox).where(
                    MailOutbox.status == "pending", MailOutbox.next_attempt <= now)
                    .order_by(MailOutbox.next_attempt, MailOutbox.id).limit(1)).first()
                if row is None:
                    s.rollback()
                    return None
                result = cast(CursorResult[Any], s.execute(
                    update(MailOutbox).where(MailOutbox.id == row.id,
                                             MailOutbox.status == "pending")
                    .values(status="sending", claimed_at=now,
                            attempts=MailOutbox.attempts + 1)))
                s.commit()
                if result.rowcount == 1:
                    s.refresh(row)
                    s.expunge(row)
                    return row
                # Another sender claimed it between our read and our update: the next one.

    def _mark_sent(self, row_id: int) -> None:
        with self.db.session() as s:
            s.execute(update(MailOutbox).where(MailOutbox.id == row_id)
                      .values(status="sent", sent_at=self.clock(), last_error=None))
            s.commit()

    def _failed(self, row: MailOutbox, exc: Exception) -> str:
        permanent = isinstance(exc, _Permanent) or _is_permanent(exc)
        give_up = permanent or row.attempts >= self.settings.max_attempts
        delay = min(timedelta(seconds=self.settings.backoff_seconds * 2 ** (row.attempts - 1)),
                    MAX_BACKOFF)
        status = "failed" if give_up else "pending"
        error = f"{type(exc).__name__}: {exc}"[:500]
        with self.db.session() as s:
            s.execute(update(MailOutbox).where(MailOutbox.id == row.id).values(
                status=status, last_error=error, claimed_at=None,
                next_attempt=self.clock() + delay))
            s.commit()
        log.warning("mail %s to %s: attempt %d failed (%s)%s", row.id, row.recipient,
                    row.attempts, error, "; given up" if give_up else f"; again in {delay}")
        return status

    # -- SMTP
    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.starttls:
                connection.starttls()
            if s.user:
                connection.login(s.user, s.password or "")
        except Exception:
            _quit(connection)
            raise
        return connection

    def _message(self, row: MailOutbox) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = row.recipient
        message["Subject"] = row.subject
        message["Message-ID"] = row.message_id
        message["Date"] = format_datetime(row.created)
        message.set_content(row.body, charset="utf-8")
        return message


def _is_permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _msg in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPAuthenticationError)
    return False


def _quit(connection: smtplib.SMTP | None) -> None:
    if connection is None:
        return
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


class BackgroundSender:
    """``balis serve``'s sender: reminders and the outbox every ``interval`` seconds in a
    daemon thread, so the web process needs no separate scheduler."""

    def __init__(self, make_sender: Callable[[], MailSender],
                 notices: Callable[[Session], int], interval: float = 60.0) -> None:
        # A factory: the web app opens its database on first use, not at start-up.
        self.make_sender = make_sender
        self.notices = notices
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="balis-mail", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        sender: MailSender | None = None
        while not self._stop.is_set():
            try:
                sender = sender or self.make_sender()
                with sender.db.session() as s:
                    self.notices(s)
                sender.run_once()
            except Exception:  # the thread must survive a bad minute
                log.exception("the mail sender failed; it tries again in %.0f s",
                              self.interval)
            self._stop.wait(self.interval)
