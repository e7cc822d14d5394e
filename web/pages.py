"""The reader's pages: home, the library directory, search, live results, record, MARC.

Every page works without JavaScript: a results page asked for without ``live=1`` waits
until every library has answered. With JavaScript the search form adds ``live=1``, the
page comes back at once and static/live.js long-polls ``/results/ID/live`` for fragments
of the same templates as libraries answer.
"""

from __future__ import annotations

import math

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from broker.kernel import cql, directory
from broker.kernel.errors import BalisError, QueryError
from broker.search import rank
from web import get_balis
from web.closures import closed_lenders
from web.i18n import catalogue
from web.i18n import translate as _
from web.ill_context import ill
from web.portal import latest_news
from web.record_views import record_views
from web.searching import PageRequest, SearchGone, page_request, page_window

bp = Blueprint("pages", __name__)

PER_PAGE = 20
FIELDS = ("any", "title", "author", "isbn", "subject", "publisher")
SELECTION = "libraries"  # the flask session key of the reader's chosen libraries


# --- helpers -----------------------------------------------------------------------------

def selection() -> list[str]:
    known = {lib.id for lib in get_balis().consortium.libraries}
    return [lid for lid in session.get(SELECTION, []) if lid in known]


def field_query(field: str, text: str) -> str:
    """The CQL for a simple search: every word of ``text`` in ``field``."""
    words = text.split()
    if not words:
        return ""

    def term(word: str) -> str:
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'

    if field == "isbn":
        return " and ".join(f"(isbn={term(w)} or issn={term(w)})" for w in words)
    index = field if field in FIELDS else "any"
    return " and ".join(f"{index}={term(w)}" for w in words)


def library_names() -> dict[str, str]:
    return {lib.id: lib.name for lib in get_balis().consortium.libraries}


# A copy in one of these states cannot simply be lent: the reader is warned before asking.
UNLENDABLE = ("on_loan", "not_for_loan", "unavailable", "lost")


@bp.app_template_global()
def availability(holdings: list[dict]) -> dict:
    """A record's copies in short, for the result list: how many, how many on the shelf,
    the earliest due date when none is; ``reported`` false when no library said any
    copy's status (the list then says nothing rather than "0 on the shelf")."""
    statuses = [h.get("status") for h in holdings]
    dues = sorted(h["due"] for h in holdings if h.get("status") == "on_loan" and h.get("due"))
    return {"copies": len(holdings), "available": statuses.count("available"),
            "reported": any(s is not None for s in statuses),
            "next_due": dues[0] if dues else None}


def query_words(query: str) -> tuple[str, bool]:
    """(the words searched for, whether the query is advanced): the summary says
    根据关键字"中国" rather than the CQL; an advanced query (one the simple form does not
    write: other indexes, or, not, truncation...) shows its CQL too."""
    try:
        node = cql.parse(query)
    except QueryError:
        return query, True
    terms: list[str] = []

    def walk(n: cql.Node) -> None:
        if isinstance(n, cql.Boolean):
            walk(n.left)
            walk(n.right)
        elif not n.matches_all:
            terms.append(n.term + ("*" if n.truncated else ""))

    walk(node)
    words = " ".join(dict.fromkeys(terms))
    return words, not any(field_query(f, words) == query for f in FIELDS)


def query_error_text(exc: BalisError) -> str:
    """A query the broker refused, in the reader's language: a QueryError by its code
    (with the position and the offending text), anything else (too many libraries, an
    unknown sort) in general words, with the English detail on the English page only."""
    if isinstance(exc, QueryError):
        key = f"err.cql.{exc.code}"
        if key in catalogue("zh"):
            return _(key, **exc.params)
        return _("err.cql.invalid")
    words = _("err.search.refused")
    return f"{words} ({exc})" if getattr(g, "lang", "zh") == "en" else words


def _page_args() -> PageRequest:
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 1
    page = max(page, 1)
    try:
        return page_request(str((page - 1) * PER_PAGE + 1), str(PER_PAGE),
                            request.args.get("sort"), request.args.getlist("f"))
    except ValueError:  # the words for readers; the API (web/api.py) says which one
        abort(400, description=_("err.page.arguments"))


def _results_context(session_id: str, data: dict, page: PageRequest) -> dict:
    pages = max(1, math.ceil(data["merged"] / PER_PAGE))
    number = (page.start - 1) // PER_PAGE + 1
    filters = [f"{k}:{v}" for k, v in page.filters]
    current = data["sort"]  # the page's order: asked for, or the search's own

    def link(page_no: int = 1, sort: str = current, f: list[str] = filters) -> str:
        args: dict = {"page": page_no} if page_no != 1 else {}
        args["sort"] = sort  # always named: the search may have been started in another
        if f:
            args["f"] = f
        return url_for("pages.results", session_id=session_id, **args)

    def toggle(facet: str, value: str) -> str:
        key = f"{facet}:{value}"
        return link(1, current, [x for x in filters if x != key] if key in filters
                    else [*filters, key])

    words, advanced = query_words(data["query"])
    return {"sid": session_id, "data": data, "page_no": number, "pages": pages,
            "window": page_window(number, pages), "words": words, "advanced": advanced,
            "sort": current, "filters": filters, "link": link, "toggle": toggle,
            "names": library_names(), "sorts": rank.SORTS, "facets": rank.FACETS}


@bp.app_context_processor
def _closures() -> dict:
    # Every page that lists libraries (the member list is web/portal.py's) marks the
    # closed ones; read only when a template asks, once per request.
    return {"closed_lenders": closed_lenders}


# --- pages -------------------------------------------------------------------------------

@bp.get("/favicon.ico")
def favicon():
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.get("/")
def home():
    return render_template("home.html", news=latest_news(5), fields=FIELDS,
                           selected=selection(), names=library_names())


@bp.route("/libraries", methods=["GET", "POST"])
def libraries():
    balis = get_balis()
    consortium = balis.consortium
    if request.method == "POST":
        chosen = list(dict.fromkeys(request.form.getlist("library")))
        known = {lib.id for lib in consortium.libraries}
        chosen = [lid for lid in chosen if lid in known]
        if len(chosen) > consortium.max_selected:
            flash(_("too_many", n=consortium.max_selected, k=len(chosen)), "error")
            return _directory(chosen, status=400)
        session[SELECTION] = chosen
        flash(_("selection_saved", k=len(chosen)), "info")
        return redirect(url_for("pages.search_form") if request.form.get("then") == "search"
                        else url_for("pages.libraries"))
    return _directory(selection())


def _directory(chosen: list[str], status: int = 200):
    consortium = get_balis().consortium
    match = request.args.get("match", "").strip()
    category = request.args.get("category", "")
    members = [lib for lib in consortium.libraries
               if (not match or directory.match(lib, match))
               and (not category or lib.category == category)]
    health = get_balis().searches.health()
    groups = []
    for cat in consortium.categories:
        libs = [lib for lib in members if lib.category == cat.id]
        total = sum(1 for lib in consortium.libraries if lib.category == cat.id)
        groups.append((cat, total, libs))
    keys = {lib.id: " ".join((lib.id, directory.full_pinyin(lib.name), directory.initials(lib)))
            for lib in consortium.libraries}
    shown = {lib.id for lib in members}
    return render_template("directory.html", groups=groups, chosen=chosen, match=match,
                           hidden_chosen=[lid for lid in chosen if lid not in shown],
                           category=category, health=health, keys=keys,
                           max_selected=consortium.max_selected), status


@bp.get("/search")
def search_form():
    cql = request.args.get("cql", "").strip()
    text = request.args.get("text", "").strip()
    field = request.args.get("field", "any")
    query = cql or field_query(field, text)
    sort = request.args.get("sort", "relevance")
    chosen = request.args.getlist("library") or selection()
    if not query:
        return render_template("search.html", fields=FIELDS, selected=chosen,
                               names=library_names(), field=field, text=text, cql=cql,
                               sort=sort, sorts=rank.SORTS)
    try:
        session_id = get_balis().searches.start(query, chosen, sort)
    except BalisError as exc:
        if not isinstance(exc, ValueError):
            raise
        return render_template("search.html", fields=FIELDS, selected=chosen,
                               names=library_names(), field=field, text=text, cql=cql,
                               sort=sort, sorts=rank.SORTS, error=query_error_text(exc)), 400
    if request.args.get("live") == "1":
        return redirect(url_for("pages.results", session_id=session_id, live="1"))
    return redirect(url_for("pages.results", session_id=session_id))


@bp.get("/results/<session_id>")
def results(session_id: str):
    page = _page_args()
    live = request.args.get("live") == "1"
    try:
        data = get_balis().searches.page(session_id, page, wait=not live)
    except SearchGone:
        return render_template("message.html", title=_("gone"), text=_("gone")), 404
    context = _results_context(session_id, data, page)
    if data["done"] and context["page_no"] > context["pages"]:
        # 跳转到 a page past the end (typed into the jump form): its last page.
        return redirect(context["link"](context["pages"]))
    return render_template("results.html", live=live and not data["done"], **context)


@bp.get("/results/<session_id>/live")
def results_live(session_id: str):
    """The long poll behind live results: fragments once something changed."""
    page = _page_args()
    try:
        seen = int(request.args.get("rev", "-1"))
    except ValueError:
        seen = -1
    try:
        data = get_balis().searches.live(session_id, seen, page)
    except SearchGone as exc:
        return jsonify(error=str(exc)), 404
    context = _results_context(session_id, data, page)
    return jsonify(
        revision=data["revision"], done=data["done"],
        summary=render_template("_summary.html", **context),
        libraries=render_template("_libraries.html", **context),
        records=render_template("_records.html", **context),
        facets=render_template("_facets.html", **context),
        pager=render_template("_pager.html", **context))


def _record(record_id: str, *, marc: bool = False):
    session_id = request.args.get("s")
    try:
        return get_balis().searches.record(record_id, session_id, marc=marc)
    except SearchGone:
        abort(404, description=_("gone"))


@bp.get("/record/<path:record_id>")
def record(record_id: str):
    cluster, search = _record(record_id)
    rec = cluster.as_dict()
    views = record_views().count_view(rec["sources"])
    return render_template("record.html", cluster=cluster, rec=rec, views=views,
                           sid=search.id, names=library_names(), ledger=_ledger(rec))


@bp.get("/marc/<path:record_id>")
def marc(record_id: str):
    cluster, search = _record(record_id, marc=True)  # the sources' MARC, from the store
    sources = [(library, record.id, record.marc()) for library, record in cluster.records]
    return render_template("marc.html", cluster=cluster, rec=cluster.as_dict(),
                           sources=sources, sid=search.id, names=library_names())


def _ledger(rec: dict) -> dict | None:
    """How often this title was requested through ILL, and between which libraries."""
    with ill().session() as s:
        ledger = ill().service.title_ledger(s, record_ids=rec["sources"], isbns=rec["isbns"])
    ledger["graph"] = ledger_graph(ledger["pairs"])
    return ledger


def ledger_graph(pairs: list[dict]) -> dict:
    """The 借阅关系图 as positions an inline SVG draws: lenders in a column on the left,
    borrowers on the right, one line per pair, as thick as its share of the requests."""
    lenders = list(dict.fromkeys(p["lender"] for p in pairs))
    borrowers = list(dict.fromkeys(p["borrower"] for p in pairs))
    row = 28
    top = 20
    most = max((p["count"] for p in pairs), default=1)
    edges = [{"y1": top + row * lenders.index(p["lender"]),
              "y2": top + row * borrowers.index(p["borrower"]),
              "width": round(1.5 + 6.5 * p["count"] / most, 1), "count": p["count"]}
             for p in pairs]
    return {"lenders": [(lid, top + row * i) for i, lid in enumerate(lenders)],
            "borrowers": [(lid, top + row * i) for i, lid in enumerate(borrowers)],
            "edges": edges, "height": top + row * max(len(lenders), len(borrowers), 1)}
