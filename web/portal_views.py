"""The portal's 下载空间 (files the office uploads) and 特色馆藏展 (exhibits it curates):
routes of the ``portal`` blueprint (web.portal), registered by ``register``.

An exhibit is ``exhibits/NAME.md`` in the portal folder, written like a news item, with
its shelf in the front matter::

    ---
    title: 红楼梦的版本与研究
    summary: one line for the list
    searches:                      # each a link that runs the search over the members
      - {label: 红楼梦, query: 'title=红楼梦', libraries: [pku, nlc]}
    records:                       # single works: found by ISBN, else by title
      - {title: 红楼梦, isbn: '9787020002207', library: nlc, note: 人民文学出版社本}
    ---

Entries that are not of this shape are skipped (and logged), never an error page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from web import portal as core
from web import portal_files as files
from web.i18n import translate as _

logger = logging.getLogger(__name__)

# Room for the form's other parts (the CSRF token, the boundaries) beside the file itself.
FORM_SLACK = 16 << 10


@dataclass(frozen=True, slots=True)
class ShelfItem:
    label: str
    note: str | None
    cql: str | None  # the search that finds it
    libraries: tuple[str, ...]
    record_id: str | None = None  # a record of a current search, when given by id


@dataclass(frozen=True, slots=True)
class Exhibit:
    page: core.Page
    searches: tuple[ShelfItem, ...]
    records: tuple[ShelfItem, ...]


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _search_item(entry: object, slug: str) -> ShelfItem | None:
    if isinstance(entry, str):
        entry = {"query": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("query"), str):
        logger.warning("exhibit %s: a search needs a query: %r", slug, entry)
        return None
    query = entry["query"].strip()
    return ShelfItem(str(entry.get("label") or query), _note(entry), query,
                     _strings(entry.get("libraries")))


def _note(entry: dict) -> str | None:
    return str(entry["note"]) if entry.get("note") else None


def _record_item(entry: object, slug: str) -> ShelfItem | None:
    if isinstance(entry, str):  # a record id: shown while a search holds it
        return ShelfItem(entry, None, None, (), record_id=entry)
    if not isinstance(entry, dict) or not (entry.get("isbn") or entry.get("title")):
        logger.warning("exhibit %s: a record needs an isbn or a title: %r", slug, entry)
        return None
    isbn = str(entry.get("isbn") or "").replace("-", "").strip()
    title = str(entry.get("title") or "").strip()
    cql = f"isbn={isbn}" if isbn else f"title={_quoted(title)}"
    return ShelfItem(title or isbn, _note(entry), cql, _strings(entry.get("library")))


def exhibit(page: core.Page) -> Exhibit:
    raw_searches = page.meta.get("searches") or []
    raw_records = page.meta.get("records") or []
    searches = [_search_item(e, page.slug) for e in
                (raw_searches if isinstance(raw_searches, list) else [])]
    records = [_record_item(e, page.slug) for e in
               (raw_records if isinstance(raw_records, list) else [])]
    return Exhibit(page, tuple(s for s in searches if s), tuple(r for r in records if r))


def exhibits() -> list[Exhibit]:
    return [exhibit(p) for p in sorted(core.pages_in("exhibits"),
                                       key=lambda p: (str(p.meta.get("order", "")), p.slug))]


def exhibits_page():
    return render_template("portal_exhibits.html", items=exhibits())


def exhibit_page(slug: str):
    found = next((e for e in exhibits() if e.page.slug == slug), None)
    if found is None:
        abort(404)
    return render_template("portal_exhibit.html", item=found)


# --- 下载空间 ------------------------------------------------------------------------------

def _admin() -> bool:
    from web.ill_context import current_actor

    actor = current_actor()
    return actor is not None and actor.is_admin


def downloads_page():
    return render_template("portal_downloads.html", intro=core.named_page("downloads"),
                           items=files.listing(core.portal_dirs()), admin=_admin())


def download(name: str):
    path = files.find(core.portal_dirs(), name)
    if path is None:
        abort(404)
    kind = name.rsplit(".", 1)[-1].lower()
    return send_file(path, mimetype=files.KINDS[kind], as_attachment=kind not in files.INLINE,
                     download_name=name, max_age=300)


def manage_downloads():
    if not _admin():
        abort(403, description=_("portal.admin_only"))
    here = url_for("portal.manage_downloads")
    if request.method == "GET":
        return render_template("portal_downloads_admin.html",
                               items=files.listing(core.portal_dirs()),
                               limit_mb=files.upload_limit() >> 20)
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        return _too_large(here)
    name = files.safe_name(upload.filename if upload else None)
    if upload is None or not upload.filename:
        flash(_("portal.upload_none"), "error")
        return redirect(here)
    if name is None:
        flash(_("portal.upload_bad_name", kinds=", ".join(files.KINDS)), "error")
        return redirect(here)
    data = upload.read(files.upload_limit() + 1)
    if len(data) > files.upload_limit():
        return _too_large(here)
    if not data:
        flash(_("portal.upload_empty"), "error")
        return redirect(here)
    try:
        files.save(core.portal_dir(), name, data)
    except OSError:
        logger.exception("portal upload %s could not be written", name)
        flash(_("portal.upload_failed"), "error")
        return redirect(here)
    flash(_("portal.uploaded", name=name), "info")
    return redirect(here)


def delete_download():
    if not _admin():
        abort(403, description=_("portal.admin_only"))
    name = request.form.get("name", "")
    if files.delete(core.portal_dir(), name):
        flash(_("portal.deleted", name=name), "info")
    else:
        flash(_("portal.delete_missing"), "error")
    return redirect(url_for("portal.manage_downloads"))


def _too_large(here: str) -> Response:
    flash(_("portal.upload_too_large", mb=files.upload_limit() >> 20), "error")
    return redirect(here)


def _upload_limit() -> Response | None:
    """Before the CSRF check reads the form: an upload may be larger than the site's
    usual 1 MiB, up to the upload limit; one announced as larger is refused unread."""
    if request.method != "POST" or request.endpoint != "portal.manage_downloads":
        return None
    allowed = files.upload_limit() + FORM_SLACK
    if (request.content_length or 0) > allowed:
        return _too_large(request.path)
    request.max_content_length = allowed
    return None


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/exhibits", view_func=exhibits_page, endpoint="exhibits")
    bp.add_url_rule("/exhibits/<slug>", view_func=exhibit_page, endpoint="exhibit")
    bp.add_url_rule("/downloads", view_func=downloads_page, endpoint="downloads")
    bp.add_url_rule("/downloads/manage", view_func=manage_downloads,
                    endpoint="manage_downloads", methods=["GET", "POST"])
    bp.add_url_rule("/downloads/manage/delete", view_func=delete_download,
                    endpoint="delete_download", methods=["POST"])
    bp.add_url_rule("/downloads/<name>", view_func=download, endpoint="download")

    @bp.record_once
    def first_of_all(state) -> None:
        # Ahead of every other before-request function (web.security's CSRF check reads
        # the form, which would otherwise be held to the 1 MiB of MAX_CONTENT_LENGTH).
        state.app.before_request_funcs.setdefault(None, []).insert(0, _upload_limit)
