"""The consortium's portal pages: news, rules, guide, FAQ, and the member directory.

The consortium admin edits Markdown files, not code, in the portal folder (see
``web.create_app``: ``instance/portal`` or ``portal/`` beside the libraries file):

    news/2026-11-20-bupt-winter-closure.md   one file per item, newest first by date
    rules.md  guide.md  faq.md               管理办法, 使用指南, 常见问题
    members.md                               optional text above the member directory

Each file may start with YAML front matter between ``---`` lines (``title``, ``date``
as YYYY-MM-DD, ``summary``); without it the first ``# heading`` is the title and a news
item's date comes from its file name. A file that cannot be read or parsed is logged and
shown as well as it can be, never an error page for the whole portal. Files are read
when asked for, so an edit shows at once. The admin is trusted: Markdown may hold HTML.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import markdown
import yaml
from flask import Blueprint, abort, render_template
from markupsafe import Markup

from web import get_balis
from web.i18n import translate as _

logger = logging.getLogger(__name__)

bp = Blueprint("portal", __name__)

PAGES = ("rules", "guide", "faq")
_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})-?(.*)$")
_SLUG = re.compile(r"^[\w.-]+$")


@dataclass(frozen=True, slots=True)
class Page:
    slug: str
    title: str
    date: dt.date | None
    summary: str | None
    html: Markup


def _split_front_matter(text: str, path: Path) -> tuple[dict, str]:
    if not text.startswith("---"):
        return {}, text
    head, sep, body = text[3:].partition("\n---")
    if not sep:
        return {}, text
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        logger.warning("%s: front matter is not valid YAML (%s); shown without it", path, exc)
        return {}, body.lstrip("-\n")
    if not isinstance(meta, dict):
        logger.warning("%s: front matter must be key: value lines", path)
        meta = {}
    return meta, body.lstrip("-").lstrip("\n")


def _date(value, path: Path) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        logger.warning("%s: date %r is not YYYY-MM-DD", path, value)
        return None


def load_page(path: Path) -> Page | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("portal page %s cannot be read: %s", path, exc)
        return None
    meta, body = _split_front_matter(text, path)
    title = meta.get("title")
    if not title:
        heading = re.search(r"^#\s+(.+)$", body, re.MULTILINE)
        title = heading.group(1).strip() if heading else path.stem
    dated = _DATED.match(path.stem)
    date = _date(meta.get("date"), path) or (
        _date(dated.group(1), path) if dated else None)
    html = markdown.markdown(body, extensions=["tables", "sane_lists"])
    summary = meta.get("summary")
    return Page(path.stem, str(title), date, str(summary) if summary else None, Markup(html))


def portal_dir() -> Path:
    return get_balis().portal_dir


def news_items() -> list[Page]:
    folder = portal_dir() / "news"
    pages = [page for path in sorted(folder.glob("*.md")) if (page := load_page(path))]
    return sorted(pages, key=lambda p: (p.date or dt.date.min, p.slug), reverse=True)


def latest_news(count: int) -> list[Page]:
    return news_items()[:count]


@bp.get("/news")
def news():
    return render_template("news.html", items=news_items())


@bp.get("/news/<slug>")
def news_item(slug: str):
    if not _SLUG.match(slug):
        abort(404)
    page = load_page(portal_dir() / "news" / f"{slug}.md")
    if page is None:
        abort(404)
    return render_template("page.html", page=page)


@bp.get("/pages/<name>")
def page(name: str):
    if name not in PAGES:
        abort(404)
    found = load_page(portal_dir() / f"{name}.md")
    if found is None:
        return render_template("page.html", page=Page(name, _(name), None, None, Markup(
            "<p>" + _("not_found") + "</p>"))), 404
    return render_template("page.html", page=found)


@bp.get("/members")
def members():
    consortium = get_balis().consortium
    intro_path = portal_dir() / "members.md"
    intro = load_page(intro_path) if intro_path.exists() else None
    groups = [(cat, [lib for lib in consortium.libraries if lib.category == cat.id])
              for cat in consortium.categories]
    return render_template("members.html", groups=groups, intro=intro,
                           health=get_balis().searches.health())
