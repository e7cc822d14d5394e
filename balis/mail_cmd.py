"""``balis mail``: generate due-date reminders and overdue notices, and deliver the e-mail
outbox over SMTP (ill/mail.py, ill/mail_sender.py).

SMTP comes from the environment: ``BALIS_SMTP_HOST`` (required: without it e-mail is off),
``BALIS_SMTP_PORT``, ``BALIS_SMTP_USER``, ``BALIS_SMTP_PASSWORD``, ``BALIS_SMTP_FROM``,
``BALIS_SMTP_STARTTLS``; ``BALIS_MAIL_REMIND_DAYS`` (default 3). The database is
``--database URL``, else ``$DATABASE_URL``, else SQLite in the instance folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading

from broker.kernel.errors import UsageError

log = logging.getLogger(__name__)


def register(subparsers, common: argparse.ArgumentParser) -> None:
    mail = subparsers.add_parser(
        "mail", parents=[common], help="send the ILL e-mail (reminders, status changes)",
        description="Generate due-date reminders and overdue notices (at most one per "
                    "request per day) and send the e-mail outbox through the SMTP server "
                    "named by BALIS_SMTP_HOST (and _PORT, _USER, _PASSWORD, _FROM, "
                    "_STARTTLS). A failed delivery is retried later with a growing delay. "
                    "Delivery is at most once: a message interrupted between sending and "
                    "marking is marked uncertain, not sent again, unless "
                    "--resend-uncertain is given.",
        epilog="Examples: balis mail (one pass) · balis mail --loop 60 · "
               "balis mail --status --json")
    mail.add_argument("--loop", type=float, metavar="SECONDS",
                      help="keep running, one pass every SECONDS (stop with Ctrl-C/SIGTERM)")
    mail.add_argument("--status", action="store_true",
                      help="print the newest outbox rows instead of sending")
    mail.add_argument("--resend-uncertain", action="store_true",
                      help="queue again the messages a stopped sender may or may not have "
                           "sent (a reader may get one twice)")
    mail.add_argument("--no-notices", action="store_true",
                      help="only deliver; generate no reminders or overdue notices")
    mail.add_argument("--json", action="store_true", help="machine-readable output")
    mail.add_argument("--database", metavar="URL",
                      help="database URL (default: $DATABASE_URL, else "
                           "sqlite:///instance/balis.sqlite3)")
    mail.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from balis.config_path import config_path
    from broker.kernel.config import load
    from ill.db import Database
    from ill.mail import MailSettings
    from ill.mail_sender import MailSender
    from ill.service import IllService

    if args.loop is not None and args.loop <= 0:
        raise UsageError("--loop must be a positive number of seconds")
    try:
        settings = MailSettings.from_config({})
    except ValueError as exc:
        raise UsageError(f"environment: {exc}") from None
    consortium = load(config_path(args))
    db = Database(args.database)
    try:
        service = IllService(consortium)
        service.configure_mail(settings)
        if args.status:
            with db.session() as s:
                rows = service.outbox(s)
            _print_status(rows, args.json)
            return 0
        if settings is None:
            raise UsageError("e-mail is off: set BALIS_SMTP_HOST (and BALIS_SMTP_FROM) to "
                             "the SMTP server to send through")
        sender = MailSender(db, settings)
        if args.resend_uncertain:
            print(f"queued again: {sender.resend_uncertain()}")
        stop = threading.Event()
        if args.loop is not None:
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while True:
            notices = 0
            if not args.no_notices:
                with db.session() as s:
                    notices = service.queue_loan_notices(s)
            report = sender.run_once()
            if args.json:
                print(json.dumps({"notices": notices, "sent": report.sent,
                                  "retrying": report.retrying, "failed": report.failed,
                                  "uncertain": report.uncertain}), flush=True)
            else:
                print(f"notices {notices}; {report}", flush=True)
            if args.loop is None:
                return 0 if report.retrying == 0 and report.failed == 0 else 1
            try:
                if stop.wait(args.loop):
                    return 0
            except KeyboardInterrupt:
                return 0
    finally:
        db.dispose()


def _print_status(rows: list[dict], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    for row in rows:
        error = f"  {row['last_error']}" if row["last_error"] else ""
        print(f"{row['id']:>6}  {row['status']:<9} {row['kind']:<8} {row['attempts']:>2}x  "
              f"{row['recipient']}{error}")
