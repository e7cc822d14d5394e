"""The consortium's portal: 中心介绍, 最新动态, 公告信息, 管理办法, 使用指南, 常见问题,
关于我们, the member directory, 电子地图, 特色馆藏展 and 下载空间.

The consortium office edits Markdown files, not code, in the portal folder:

    intro.md                                 中心介绍 (also on the home page)
    news/2026-11-20-bupt-winter-closure.md   one file per item, newest first by date
    rules.md  guide.md  faq.md  about.md     管理办法, 使用指南, 常见问题, 关于我们
    members.md  map.md  downloads.md         optional text above the directory, map, files
    NAME.en.md                               the English version of a page, where written
    exhibits/NAME.md                         特色馆藏展: ``searches`` and ``records`` in
                                             the front matter (see ``Exhibit``)
    downloads/                               uploaded files (web.portal_files)

Where (``portal_dirs``), first folder wins file by file: ``PORTAL_DIR`` when configured;
otherwise the instance folder's ``portal/``, then ``portal/`` beside the libraries file,
then the bundled defaults (config/portal, or ``PORTAL_DEFAULTS``). So a fresh instance
folder shows the default pages, an office's own file replaces its default, and ``balis
demo`` has its pages whatever ``--port-base`` moved its libraries file to. ``news/`` and
``exhibits/`` come whole from the first folder that has one. 公告信息 are the ILL
announcements (web.ill_admin) of the consortium and of every member, each labelled.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markdown
import yaml
from flask import Blueprint, abort, current_app, g, render_template
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from web import get_balis, portal_map
from web.i18n import translate as _

logger = logging.getLogger(__name__)

bp = Blueprint("portal", __name__)

PAGES = ("intro", "rules", "guide", "faq", "about")
TITLES = {"intro": "portal.intro", "about": "portal.about"}  # the others' keys are their names
# The default pages: the repository's config/portal (``balis demo`` and a fresh instance).
BUNDLED = Path(__file__).resolve().parent.parent / "config" / "portal"
_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})-?(.*)$")
_SLUG = re.compile(r"^[\w.-]+$")


@dataclass(frozen=True, slots=True)
class Page:
    slug: str
    title: str
    date: dt.date | None
    summary: str | None
    html: Markup
    meta: dict[str, Any] = field(default_factory=dict)  # the front matter, for exhibits


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
    return Page(path.stem, str(title), date, str(summary) if summary else None, Markup(html),
                meta)


def portal_dirs() -> list[Path]:
    """The folders a portal file is looked for in, the office's own first."""
    config = current_app.config
    defaults = config.get("PORTAL_DEFAULTS")
    if config.get("PORTAL_DIR"):
        # An explicit folder is the whole portal, unless defaults are named too.
        dirs = [Path(config["PORTAL_DIR"])]
    else:
        dirs = [Path(current_app.instance_path) / "portal"]
        libraries_file = get_balis().consortium.path
        if libraries_file is not None:
            dirs.append(Path(libraries_file).resolve().parent / "portal")
        defaults = defaults or BUNDLED
    if defaults:
        dirs.append(Path(defaults))
    return list(dict.fromkeys(path.resolve() for path in dirs))


def portal_dir() -> Path:
    """The office's own folder: where uploads go (it may not exist yet)."""
    return portal_dirs()[0]


def find_file(name: str) -> Path | None:
    return next((path for folder in portal_dirs() if (path := folder / name).is_file()), None)


def _folder(name: str) -> Path | None:
    return next((path for folder in portal_dirs() if (path := folder / name).is_dir()), None)


def pages_in(name: str) -> list[Page]:
    folder = _folder(name)
    if folder is None:
        return []
    return [page for path in sorted(folder.glob("*.md")) if (page := load_page(path))]


def named_page(name: str) -> Page | None:
    """``NAME.md``; for an English reader ``NAME.en.md`` first, where the office wrote one."""
    english = getattr(g, "lang", "zh") == "en"
    path = (english and find_file(f"{name}.en.md")) or find_file(f"{name}.md")
    return load_page(path) if path else None


def news_items() -> list[Page]:
    return sorted(pages_in("news"), key=lambda p: (p.date or dt.date.min, p.slug),
                  reverse=True)


def latest_news(count: int) -> list[Page]:
    return news_items()[:count]


@bp.get("/news")
def news():
    return render_template("news.html", items=news_items())


@bp.get("/news/<slug>")
def news_item(slug: str):
    if not _SLUG.match(slug):
        abort(404)
    folder = _folder("news")
    path = folder / f"{slug}.md" if folder else None
    page = load_page(path) if path and path.is_file() else None
    if page is None:
        abort(404)
    return render_template("page.html", page=page)


@bp.get("/pages/<name>")
def page(name: str):
    if name not in PAGES:
        abort(404)
    found = named_page(name)
    if found is None:
        title = _(TITLES.get(name, name))
        return render_template("page.html", page=Page(name, title, None, None, Markup(
            "<p>" + _("not_found") + "</p>"))), 404
    return render_template("page.html", page=found)


@bp.get("/members")
def members():
    consortium = get_balis().consortium
    groups = [(cat, [lib for lib in consortium.libraries if lib.category == cat.id])
              for cat in consortium.categories]
    return render_template("members.html", groups=groups, intro=named_page("members"),
                           health=get_balis().searches.health(),
                           district_of=portal_map.district_of)


@bp.get("/map")
def map_page():
    found, unknown = portal_map.districts(get_balis().consortium)
    return render_template("portal_map.html", intro=named_page("map"), districts=found,
                           unknown=unknown, tiles=portal_map.tiles(found),
                           viewbox=portal_map.viewbox())


# --- 公告信息: the ILL announcements, public, each naming its library -----------------------

@dataclass(frozen=True, slots=True)
class Notice:
    title: str
    body: str
    library: str | None  # None: the consortium office's own
    library_name: str | None
    created: dt.datetime
    expires: dt.date | None


def notices(limit: int | None = None) -> list[Notice]:
    """Every member's and the consortium's unexpired announcements, newest first. The
    ledger being unreachable costs this list only, never the page around it."""
    from web.ill_context import ill, service

    names = {lib.id: lib.name for lib in get_balis().consortium.libraries}
    try:
        with ill().session() as s:
            found = service().announcements(s)
    except SQLAlchemyError:
        logger.exception("announcements cannot be read; the portal shows none")
        return []
    items = [Notice(a.title, a.body, a.library, names.get(a.library, a.library)
                    if a.library else None, a.created, a.expires) for a in found]
    return items[:limit] if limit is not None else items


@bp.get("/notices")
def notices_page():
    return render_template("portal_notices.html", items=notices())


@bp.app_context_processor
def _portal_globals() -> dict[str, Any]:
    # Functions, not values: only the templates that show them (home.html) pay for them.
    return {"portal_intro": lambda: named_page("intro"), "portal_notices": notices}


from web import portal_views  # noqa: E402  (下载空间 and 特色馆藏展, routes of this blueprint)

portal_views.register(bp)
