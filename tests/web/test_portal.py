"""The reader portal (web/portal.py, portal_views.py, portal_files.py, portal_map.py) with
Flask's test client over the real BALIS directory (config/libraries.yaml) and a fresh
instance folder: the bundled pages show, an office's own file replaces one at once,
uploads are the admin's alone and keep safe names, and a member's notice reaches every
member's readers, labelled with its library."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from ill_fixtures import PASSWORD, add_user, ill_config, real_consortium
from lxml import html

from web import create_app
from web.portal_files import safe_name
from web.portal_map import district_of

UPLOAD_MAX = 2 << 20  # above the site's 1 MiB form limit, so the raised limit is tested
BUNDLED = Path(__file__).resolve().parents[2] / "config" / "portal"


class Visitor:
    """One browser without JavaScript: cookies, and forms sent with the page's token."""

    def __init__(self, app) -> None:
        self.client = app.test_client()
        self.token = ""

    def get(self, url: str, status: int = 200):
        response = self.client.get(url)
        assert response.status_code == status, (url, response.status_code,
                                                response.get_data(as_text=True)[:600])
        if response.mimetype != "text/html":
            return response
        tree = html.fromstring(response.get_data(as_text=True))
        tokens = tree.cssselect("input[name=csrf_token]")
        if tokens:
            self.token = tokens[0].get("value")
        return tree

    def post(self, url: str, data: dict | None = None, **kw):
        return self.client.post(url, data={**(data or {}), "csrf_token": self.token}, **kw)

    def login(self, login: str) -> None:
        self.get("/login")
        assert self.post("/login", {"login": login, "password": PASSWORD,
                                    "next": "/"}).status_code == 302


def words(tree, css: str) -> list[str]:
    return [" ".join(el.text_content().split()) for el in tree.cssselect(css)]


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="module")
def app(instance) -> Iterator:
    # No PORTAL_DIR: a fresh instance folder, as `balis serve` starts on a new machine.
    app = create_app({
        "TESTING": True, "CONSORTIUM": real_consortium(), "SESSION_STORE": "memory",
        "SECRET_KEY": "test", "INSTANCE_PATH": str(instance), "PORTAL_UPLOAD_MAX": UPLOAD_MAX,
        **ill_config(f"sqlite:///{instance / 'ill.sqlite3'}"),
    })
    add_user(app, "r-bupt", "reader", "bupt")
    add_user(app, "s-bupt", "staff", "bupt")
    add_user(app, "office", "admin", None)
    yield app
    app.extensions["balis"].close()
    app.extensions["ill"].close()


@pytest.fixture(scope="module")
def admin(app) -> Visitor:
    visitor = Visitor(app)
    visitor.login("office")
    return visitor


PAGES = {  # url: (Chinese, English) the page must say
    "/": ("中心介绍", "About the Centre"),
    "/pages/intro": ("馆际互借中心", "one place to search and borrow"),
    "/pages/rules": ("馆际互借管理办法", "Interlibrary loan rules"),
    "/pages/guide": ("使用指南", "Requesting a book"),
    "/pages/faq": ("常见问题", "How many books may I borrow"),
    "/pages/about": ("关于我们", "consortium office"),
    "/news": ("最新动态", "News"),
    "/news/2026-11-20-winter-closures": ("寒假", "About us"),
    "/notices": ("公告信息", "Notices"),
    "/members": ("北京邮电大学图书馆", "not known"),
    "/map": ("海淀区", "Map"),
    "/exhibits": ("特色馆藏展", "Featured collections"),
    "/exhibits/01-honglou": ("红楼梦", "Search this collection"),
    "/downloads": ("下载空间", "Downloads"),
}


@pytest.mark.parametrize("url", PAGES)
def test_every_portal_page_in_chinese_and_english(app, url):
    client = app.test_client()
    zh, en = PAGES[url]
    chinese = client.get(url, query_string={"lang": "zh"})
    assert chinese.status_code == 200 and zh in chinese.get_data(as_text=True)
    english = client.get(url, query_string={"lang": "en"})
    assert english.status_code == 200 and en in english.get_data(as_text=True)
    # Every portal page is linked from the navigation, in either language.
    nav = html.fromstring(english.get_data(as_text=True)).cssselect("header.site nav a")
    links = {a.get("href").split("?")[0] for a in nav}
    assert {"/pages/rules", "/pages/guide", "/pages/faq", "/pages/about", "/news", "/notices",
            "/members", "/map", "/exhibits", "/downloads"} <= links


def test_fresh_instance_shows_the_default_portal(app):
    tree = html.fromstring(app.test_client().get("/?lang=zh").get_data(as_text=True))
    assert "一站式的联合检索" in words(tree, "section.portal-intro")[0]
    assert words(tree, "ul.news li a")[0] == "2027 年寒假期间各成员馆馆际互借服务安排"
    assert app.test_client().get("/pages/nothing").status_code == 404


def test_an_edit_in_the_instance_folder_shows_at_once(app, instance):
    client = app.test_client()
    own = instance / "portal"
    (own / "news").mkdir(parents=True, exist_ok=True)
    (own / "intro.md").write_text("---\ntitle: 中心介绍\n---\n本中心今日起试运行。\n", "utf-8")
    (own / "news" / "2027-01-05-open.md").write_text("# 新学期开馆\n\n照常开放。\n", "utf-8")
    try:
        tree = html.fromstring(client.get("/?lang=zh").get_data(as_text=True))
        assert "本中心今日起试运行" in words(tree, "section.portal-intro")[0]
        # The office's news/ replaces the bundled news as a whole.
        assert words(tree, "ul.news li a") == ["新学期开馆"]
        assert "照常开放" in client.get("/news/2027-01-05-open").get_data(as_text=True)
        # Pages it did not write still come from the defaults.
        assert "使用指南" in client.get("/pages/guide").get_data(as_text=True)
    finally:
        (own / "intro.md").unlink()
        (own / "news" / "2027-01-05-open.md").unlink()
        (own / "news").rmdir()
    assert "一站式的联合检索" in client.get("/").get_data(as_text=True)


def test_a_members_notice_reaches_another_members_reader_labelled(app):
    pku_staff = add_user(app, "s-pku", "staff", "pku")
    web = app.extensions["ill"]
    with web.session() as s:
        web.service.post_announcement(s, pku_staff, title="北大图书馆寒假闭馆",
                                      body="1月15日至2月20日闭馆, 暂停出借。")
    reader = Visitor(app)
    reader.login("r-bupt")
    home = reader.get("/?lang=zh")
    assert "北京大学图书馆 北大图书馆寒假闭馆" in words(home, "ul.notices li")[0]
    notices = reader.get("/notices")
    item = notices.cssselect("ul.notice-list li")[0]
    assert words(item, ".notice-lib") == ["北京大学图书馆"]
    assert "暂停出借" in item.text_content()
    # A visitor who is not logged in sees it too: notices are public.
    assert "北大图书馆寒假闭馆" in app.test_client().get("/notices").get_data(as_text=True)


def test_directory_says_not_known_and_every_address_has_its_district(app):
    tree = html.fromstring(app.test_client().get("/members?lang=zh").get_data(as_text=True))
    row = words(tree, "tr#lib-bupt td")
    assert row[1].startswith("北京市海淀区西土城路10号") and row[2] == "暂无"
    assert words(tree, "tr#lib-bjpc td")[1] == "暂无"  # its address is not known yet
    for library in real_consortium().libraries:
        if library.address:
            assert district_of(library.address), library.id
    page = html.fromstring(app.test_client().get("/map").get_data(as_text=True))
    haidian = words(page, "section#d-海淀区 li")
    assert any(w.startswith("北京邮电大学图书馆") for w in haidian)
    assert page.cssselect("figure.district-map svg rect.has")
    assert words(page, "section#d-unknown li")[0].startswith("北京警察学院图书馆")


def test_exhibit_links_run_its_searches(app):
    tree = html.fromstring(app.test_client().get("/exhibits/01-honglou").get_data(
        as_text=True))
    links = [a.get("href") for a in tree.cssselect("section.exhibit-shelf a")]
    assert any("cql=title%3D%E7%BA%A2%E6%A5%BC%E6%A2%A6" in h for h in links), links
    assert any("library=nlc" in h and "library=pku" in h for h in links), links


@pytest.mark.parametrize("given, kept", [
    ("申请表 (2027).pdf", "申请表_(2027).pdf"),
    ("../../secret_key.pdf", "secret_key.pdf"),
    ("C:\\forms\\Form.PDF", "Form.pdf"),
    (".hidden.pdf", "hidden.pdf"),
    ("page.html", None), ("run.sh", None), ("noext", None), ("..", None), ("", None),
    ("a\x00b.pdf", "a_b.pdf"),
])
def test_safe_names(given, kept):
    assert safe_name(given) == kept


def test_only_the_admin_manages_downloads(app):
    assert app.test_client().get("/downloads/manage").status_code == 403
    for login in ("r-bupt", "s-bupt"):
        person = Visitor(app)
        person.login(login)
        person.get("/downloads/manage", status=403)
        person.get("/downloads")
        response = person.post("/downloads/manage",
                               {"file": (io.BytesIO(b"%PDF-1.4"), "x.pdf")},
                               content_type="multipart/form-data")
        assert response.status_code == 403
        assert person.post("/downloads/manage/delete",
                           {"name": "馆际互借读者须知.txt"}).status_code == 403
    assert (BUNDLED / "downloads" / "馆际互借读者须知.txt").is_file()


def _upload(admin: Visitor, name: str, data: bytes):
    admin.get("/downloads/manage")
    return admin.post("/downloads/manage", {"file": (io.BytesIO(data), name)},
                      content_type="multipart/form-data")


def test_admin_uploads_serves_and_deletes(app, admin, instance):
    pdf = b"%PDF-1.4\n" + b"x" * (1536 << 10)  # 1.5 MiB: more than the site's 1 MiB
    response = _upload(admin, "../../BALIS 申请表.pdf", pdf)
    assert response.status_code == 302
    kept = instance / "portal" / "downloads" / "BALIS_申请表.pdf"
    assert kept.read_bytes() == pdf
    assert "已上传 BALIS_申请表.pdf" in words(admin.get("/downloads/manage"), "p.flash")
    served = app.test_client().get("/downloads/BALIS_申请表.pdf")
    assert served.status_code == 200 and served.mimetype == "application/pdf"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.data == pdf
    listed = words(html.fromstring(app.test_client().get("/downloads").get_data(as_text=True)),
                   "table.downloads td a")
    assert "BALIS_申请表.pdf" in listed and "馆际互借读者须知.txt" in listed

    # Hostile or unwanted uploads: refused with a message, nothing written.
    for name in ("evil.html", "x.svg", "noext"):
        assert _upload(admin, name, b"<script>alert(1)</script>").status_code == 302
        assert any("不支持这种文件" in f for f in words(admin.get("/downloads/manage"), "p.flash"))
    assert _upload(admin, "big.pdf", b"x" * (UPLOAD_MAX + 100_000)).status_code == 302
    assert any("文件太大" in f for f in words(admin.get("/downloads/manage"), "p.flash"))
    assert _upload(admin, "empty.pdf", b"").status_code == 302
    assert sorted(p.name for p in kept.parent.iterdir()) == ["BALIS_申请表.pdf"]

    # Names that try to leave the folder are never served or deleted.
    for url in ("/downloads/..%2Fsecret_key", "/downloads/..%2F..%2Fill.sqlite3",
                "/downloads/.BALIS_申请表.pdf.part", "/downloads/secret_key"):
        assert app.test_client().get(url).status_code == 404, url
    admin.get("/downloads/manage")
    assert admin.post("/downloads/manage/delete", {"name": "../ill.sqlite3"}).status_code == 302
    assert (instance / "ill.sqlite3").is_file()
    # A bundled file is listed, not deletable; the admin's own is.
    admin.get("/downloads/manage")
    admin.post("/downloads/manage/delete", {"name": "馆际互借读者须知.txt"})
    assert (BUNDLED / "downloads" / "馆际互借读者须知.txt").is_file()
    admin.get("/downloads/manage")
    assert admin.post("/downloads/manage/delete",
                      {"name": "BALIS_申请表.pdf"}).status_code == 302
    assert not kept.exists()
    assert app.test_client().get("/downloads/BALIS_申请表.pdf").status_code == 404
