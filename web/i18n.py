"""Chinese by default, English on request: the pages' own words in two languages.

The language comes from ``?lang=zh|en`` (remembered in a cookie) or the cookie alone;
library names and catalogue data are shown as the libraries wrote them. Templates call
``_("key")``; a key missing from the table shows itself, so a forgotten one is visible.
"""

from __future__ import annotations

from typing import Literal, get_args

from flask import Flask, Response, g, request

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
COOKIE = "lang"

STRINGS: dict[str, tuple[str, str]] = {
    "site": ("北京地区高校图书馆文献资源保障体系 联合检索与馆际互借",
             "BALIS union search and interlibrary loan"),
    "home": ("首页", "Home"),
    "search": ("检索", "Search"),
    "directory": ("成员馆", "Libraries"),
    "news": ("最新动态", "News"),
    "rules": ("管理办法", "Rules"),
    "guide": ("使用指南", "Guide"),
    "faq": ("常见问题", "FAQ"),
    "members": ("成员馆名录", "Member directory"),
    "other_language": ("English", "中文"),
    "field": ("检索字段", "Field"),
    "f.any": ("任意词", "Any word"),
    "f.title": ("题名", "Title"),
    "f.author": ("责任者", "Author"),
    "f.isbn": ("ISBN/ISSN", "ISBN/ISSN"),
    "f.subject": ("主题", "Subject"),
    "f.publisher": ("出版社", "Publisher"),
    "advanced": ("高级检索 (CQL)", "Advanced search (CQL)"),
    "advanced_help": ("例如 title=数据结构 and year>=2010",
                      "e.g. title=python and year>=2010"),
    "sort": ("排序", "Sort"),
    "s.relevance": ("相关度", "Relevance"),
    "s.year": ("出版年 (升序)", "Year (oldest first)"),
    "s.-year": ("出版年 (降序)", "Year (newest first)"),
    "s.title": ("题名拼音", "Title (pinyin)"),
    "go": ("检索", "Search"),
    "selected": ("已选成员馆", "Selected libraries"),
    "none_selected": ("未选择: 将检索全部可检索的成员馆",
                      "None chosen: every searchable member will be searched"),
    "choose": ("选择成员馆", "Choose libraries"),
    "choose_help": ("最多选择 {n} 个成员馆; 可按馆名、拼音或拼音首字母筛选 (如 bjyddx)",
                    "Choose at most {n}; filter by name, pinyin or pinyin initials (bjyddx)"),
    "filter": ("筛选", "Filter"),
    "save_selection": ("保存选择", "Save selection"),
    "clear_selection": ("清除选择", "Clear"),
    "too_many": ("最多只能选择 {n} 个成员馆, 您选择了 {k} 个", "Choose at most {n} libraries "
                 "({k} chosen)"),
    "selection_saved": ("已保存所选的 {k} 个成员馆", "{k} libraries selected"),
    "searchable_now": ("可检索", "searchable"),
    "suspended": ("暂停检索 (连续失败)", "paused (failing)"),
    "not_searchable": ("暂不可检索", "not searchable yet"),
    "ill_contact": ("馆际互借联系人", "ILL contact"),
    "library": ("成员馆", "Library"),
    "status": ("状态", "Status"),
    "hits": ("命中", "Hits"),
    "time": ("用时", "Time"),
    "st.ok": ("完成", "done"),
    "st.pending": ("检索中…", "searching…"),
    "st.timeout": ("超时", "timed out"),
    "st.error": ("出错", "failed"),
    "results": ("检索结果", "Results"),
    "results_for": ("检索: {q}", "Results for {q}"),
    "still_searching": ("{d}/{t} 个馆已返回, 其余仍在检索", "{d} of {t} libraries have "
                        "answered; the others are still searching"),
    "all_answered": ("全部 {t} 个馆已返回 (用时 {s} 秒)", "All {t} libraries done ({s} s)"),
    "merged_count": ("合并去重后 {m} 条 (共获取 {f} 条, 总命中 {h})",
                     "{m} records after merging ({f} fetched, {h} hits in all)"),
    "no_records": ("没有找到记录", "No records found"),
    "page_of": ("当前第 {n}/{m} 页", "Page {n} of {m}"),
    "jump": ("跳转", "Go"),
    "prev": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "held_by": ("馆藏", "Held by"),
    "narrow": ("缩小范围", "Narrow"),
    "fc.library": ("成员馆", "Library"),
    "fc.decade": ("出版年代", "Decade"),
    "fc.material_type": ("类型", "Type"),
    "fc.language": ("语种", "Language"),
    "remove_filters": ("取消全部筛选", "Remove all filters"),
    "record": ("书目详情", "Record"),
    "holdings": ("馆藏信息", "Holdings"),
    "location": ("馆藏地点", "Location"),
    "call_number": ("索书号", "Call number"),
    "barcode": ("条码号", "Barcode"),
    "due": ("应还日期", "Due"),
    "request_ill": ("申请馆际互借", "Request ILL"),
    "marc": ("机读格式", "MARC"),
    "marc_of": ("{lib} 的机读格式记录", "MARC record from {lib}"),
    "marc_missing": ("该记录的原始 MARC 已不在本服务器上", "The source MARC of this record "
                     "is no longer on this server"),
    "back_results": ("返回检索结果", "Back to results"),
    "title": ("题名", "Title"),
    "responsibility": ("责任说明", "Statement of responsibility"),
    "authors": ("责任者", "Authors"),
    "publisher": ("出版者", "Publisher"),
    "place": ("出版地", "Place"),
    "year": ("出版年", "Year"),
    "edition": ("版本", "Edition"),
    "extent": ("载体形态", "Extent"),
    "language": ("语种", "Language"),
    "material_type": ("文献类型", "Type"),
    "isbn": ("ISBN", "ISBN"),
    "issn": ("ISSN", "ISSN"),
    "subjects": ("主题", "Subjects"),
    "classification": ("分类号", "Classification"),
    "problems": ("数据问题", "Data problems"),
    "merge_why": ("合并依据 (馆员可见)", "Why these records were merged (staff)"),
    "merge_none": ("仅一条书目记录, 未合并", "One record only: nothing was merged"),
    "merge_joined": ("{record} 并入 {matched}", "{record} joined {matched}"),
    "merge.identifier": ("标识号一致", "identifier agrees"),
    "merge.description": ("著录一致", "description agrees"),
    "ev.title": ("题名", "title"),
    "ev.subtitle": ("副题名", "subtitle"),
    "ev.part": ("分册", "part"),
    "ev.author": ("第一责任者", "first author"),
    "ev.year": ("出版年", "year"),
    "ev.edition": ("版次", "edition"),
    "ev.publisher": ("出版者", "publisher"),
    "ev.extent": ("页数", "extent"),
    "gone": ("该检索已过期或不存在, 请重新检索", "This search has expired or never existed: "
             "please search again"),
    "error": ("出错了", "Something went wrong"),
    "not_found": ("页面不存在", "Page not found"),
    "address": ("地址", "Address"),
    "hours": ("开放时间", "Opening hours"),
    "phone": ("电话", "Phone"),
    "email": ("电子邮件", "E-mail"),
    "loan_days": ("借期 (天)", "Loan (days)"),
    "cancel_window": ("读者可撤销时限 (分钟)", "Reader may cancel within (minutes)"),
    "never": ("不可撤销", "never"),
    "announcements": ("通知公告", "Announcements"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "register": ("注册", "Register"),
    "login_name": ("用户名", "Login"),
    "password": ("密码", "Password"),
    "count_libs": ("{n} 个馆", "{n} libraries"),
    "all_categories": ("全部类别", "All categories"),
    "no_js_wait": ("正在检索, 请稍候…", "Searching, please wait…"),
    "bad_query": ("检索式有误", "The query is not valid"),
    "more_news": ("更多动态", "More news"),
    # --- values shown by name (material types, languages; others shown as they are)
    "mt.book": ("图书", "book"), "mt.serial": ("连续出版物", "serial"),
    "mt.article": ("文章", "article"), "mt.manuscript": ("手稿", "manuscript"),
    "mt.music_score": ("乐谱", "music score"), "mt.map": ("地图", "map"),
    "mt.video": ("视频", "video"), "mt.audio": ("音频", "audio"), "mt.image": ("图像", "image"),
    "mt.electronic": ("电子资源", "electronic resource"), "mt.mixed": ("混合资料", "mixed"),
    "mt.object": ("实物", "object"), "mt.other": ("其他", "other"),
    "lang.chi": ("中文", "Chinese"), "lang.eng": ("英文", "English"),
    "lang.jpn": ("日文", "Japanese"), "lang.rus": ("俄文", "Russian"),
    "lang.ger": ("德文", "German"), "lang.fre": ("法文", "French"),
    "lang.ita": ("意大利文", "Italian"), "lang.kor": ("朝鲜文", "Korean"),
    # --- accounts and ILL
    "login_first": ("请先登录", "Please log in first"),
    "welcome": ("欢迎, {name}", "Welcome, {name}"),
    "passwords_differ": ("两次输入的密码不一致", "The two passwords differ"),
    "registered": ("注册成功, 请等待所在馆馆员审核后登录", "Registered: you can log in once "
                   "your home library's staff have approved you"),
    "saved": ("已保存", "Saved"),
    "my_requests": ("我的申请", "My requests"),
    "messages": ("消息", "Messages"),
    "staff_desk": ("馆际互借工作台", "ILL desk"),
    "your_ill_desk": ("您所在馆的馆际互借", "Your library's ILL desk"),
    "direct_request": ("直接申请 (检索不到的图书)", "Request a book not found by search"),
    "register_help": ("注册后须由所在馆馆员审核", "Your home library's staff approve new "
                      "registrations"),
    "password_again": ("再次输入密码", "Password again"),
    "home_library": ("所在馆", "Home library"),
    "real_name": ("姓名", "Name"),
    "card_number": ("读者证号", "Reader card number"),
    "profile": ("个人信息", "Profile"),
    "role.reader": ("读者", "reader"),
    "role.staff": ("馆员", "staff"),
    "role.admin": ("联盟管理员", "consortium admin"),
    "change_password": ("修改密码", "Change password"),
    "old_password": ("原密码", "Current password"),
    "new_password": ("新密码", "New password"),
    "save": ("保存", "Save"),
    "staff_only": ("仅限馆员", "Staff only"),
    "bad_date": ("{name} 须为 YYYY-MM-DD", "{name} must be YYYY-MM-DD"),
    "request_submitted": ("申请 {id} 已提交", "Request {id} submitted"),
    "renewal_sent": ("续借申请已提交出借馆", "Renewal request sent to the lender"),
    "action_done": ("申请 {id}: {action} 完成", "Request {id}: {action} done"),
    "registration_approved": ("已批准 {name} 的注册", "{name} approved"),
    "registration_refused": ("已拒绝 {name} 的注册", "{name} refused"),
    "fix_fields": ("请修改标出的内容", "Please correct the marked fields"),
    "lender": ("出借馆", "Lender"),
    "borrower": ("借入馆", "Borrower"),
    "delivery": ("取书方式", "Delivery"),
    "delivery.courier": ("物流送达所在馆", "Courier to my library"),
    "delivery.pickup": ("持联盟自取借书证到出借馆自取", "Pick up at the lender with the "
                        "consortium card"),
    "note": ("备注 (50 字以内)", "Note (at most 50 characters)"),
    "submit_request": ("提交申请", "Submit request"),
    "from": ("从", "From"),
    "to": ("到", "To"),
    "all": ("全部", "All"),
    "request_no": ("申请号", "Request"),
    "submitted_at": ("申请时间", "Submitted"),
    "no_requests": ("没有申请", "No requests"),
    "due_shifted": ("因闭馆由 {d} 顺延", "moved from {d}: a library is closed"),
    "cancel_pending": ("取消申请待馆员处理", "cancel request waiting for staff"),
    "next_step": ("下一步", "Next"),
    "reason": ("原因", "Reason"),
    "cancel_request": ("撤销申请", "Cancel request"),
    "renew": ("申请续借", "Ask to renew"),
    "courier_batch": ("物流批次", "Courier batch"),
    "undo": ("撤销上一步操作", "Undo last action"),
    "timeline": ("处理记录", "Timeline"),
    "no_messages": ("没有消息", "No messages"),
    "fines": ("逾期费记录", "Fines"),
    "overdue_days": ("逾期天数", "Days overdue"),
    "rate": ("每日费率", "Rate per day"),
    "amount": ("金额", "Amount"),
    "queue.lending": ("出借 (向本馆的申请)", "Lending"),
    "queue.borrowing": ("借入 (本馆读者的申请)", "Borrowing"),
    "queue.attention": ("需要处理", "Needs attention"),
    "pull_slips": ("取书单", "Pull slips"),
    "statistics": ("统计", "Statistics"),
    "pending_registrations": ("待审核的读者注册", "Registrations to approve"),
    "approve": ("批准", "Approve"),
    "refuse": ("拒绝", "Refuse"),
    "grant_cancel": ("同意取消", "Grant cancel"),
    "decline_cancel": ("不同意取消", "Decline cancel"),
    "grant_renewal": ("同意续借", "Grant renewal"),
    "decline_renewal": ("不同意续借", "Decline renewal"),
    "queue_empty": ("暂无", "Nothing here"),
    "reader": ("读者", "Reader"),
    "st_requested": ("本馆读者申请", "Requested by our readers"),
    "st_received_requests": ("收到的申请", "Requests received"),
    "st_lent": ("出借", "Lent"),
    "st_borrowed": ("借入", "Borrowed"),
    "st_filled": ("满足", "Filled"),
    "st_unfilled": ("未满足", "Unfilled"),
    "st_turnaround": ("周转时间 (小时, 中位数 / 90%)", "Turnaround (hours, median / p90)"),
    "st_overdue": ("逾期", "Overdue"),
    "monthly_volume": ("每月出借量", "Books lent per month"),
    "subsidy_report": ("补贴结算 (各馆出借量)", "Subsidy report (lending per library)"),
    "courier_report": ("物流结算 (各路线发送量)", "Courier report (shipments per route)"),
    "calendar": ("闭馆安排与公告", "Closures and announcements"),
    "calendar_help": ("闭馆期间不受理向该馆的新申请; 落在闭馆期间的应还日期顺延至开馆后第一天",
                      "A closed lender takes no new requests; due dates in a closure move to "
                      "the first open day after it"),
    "closure_name": ("闭馆名称 (如 寒假)", "Closure (e.g. winter break)"),
    "whole_consortium": ("全联盟", "Whole consortium"),
    "add_closure": ("登记闭馆", "Add closure"),
    "closure_added": ("已登记闭馆", "Closure added"),
    "closure_removed": ("已删除闭馆安排", "Closure removed"),
    "delete": ("删除", "Delete"),
    "until": ("截止", "until"),
    "announcement_title": ("公告标题", "Title"),
    "announcement_body": ("公告内容", "Text"),
    "post_announcement": ("发布公告", "Post announcement"),
    "announcement_posted": ("公告已发布", "Announcement posted"),
    "ill_history": ("馆际互借记录", "ILL history"),
    "ill_history_text": ("本书通过馆际互借被申请 {n} 次, 满足 {f} 次",
                         "Requested {n} times through ILL, filled {f} times"),
}


def init_app(app: Flask) -> None:
    @app.before_request
    def choose_language() -> None:
        wanted = request.args.get("lang")
        g.lang_changed = wanted in LANGUAGES and wanted != request.cookies.get(COOKIE)
        g.lang = wanted if wanted in LANGUAGES else request.cookies.get(COOKIE, "zh")
        if g.lang not in LANGUAGES:
            g.lang = "zh"

    @app.after_request
    def remember_language(response: Response) -> Response:
        if getattr(g, "lang_changed", False):
            response.set_cookie(COOKIE, g.lang, max_age=365 * 86400, samesite="Lax",
                                httponly=True)
        return response

    app.jinja_env.globals["_"] = translate
    app.jinja_env.globals["value_label"] = value_label
    app.jinja_env.globals["current_lang"] = lambda: getattr(g, "lang", "zh")


def translate(key: str, **values: object) -> str:
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if getattr(g, "lang", "zh") == "en" else pair[0]
    return text.format(**values) if values else text


def value_label(kind: str, value: str | None) -> str:
    """A coded value by its name (``mt``: material type, ``lang``: language), or the
    value itself where the table has no name for it."""
    if value is None:
        return ""
    return translate(f"{kind}.{value}") if f"{kind}.{value}" in STRINGS else value
