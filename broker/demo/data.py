"""The bundled demo consortium: its members' plan, its config, and their catalogues.

Everything here is made up but shaped like the real thing, from a fixed seed with the
standard library's ``random``, so the same seed gives the same bytes:

* about 1,500 works: Chinese books (CLC classes and call numbers like ``TP312/45``, real
  publishers with their ISBN registrant codes, ISBN-13 ``978-7-…`` with valid check
  digits, none before 1987, editions), Western books (LCC, English publishers) and serials
  (ISSNs with valid check digits, the members' own 学报);
* each work held by 1 to 8 members, favouring the members whose subjects it fits, so the
  same book comes back from several libraries and de-duplication shows;
* one catalogue of 50-150 records per member, each record catalogued the member's way:
  MARC21 with 852 holdings, or CNMARC (200/210/215/606/690/701, pinyin ``$A`` at some
  members, 905/906 holdings), with the member's own call numbers, locations and barcodes,
  written as ISO 2709 in UTF-8 or (a few CNMARC members) GB18030.

``PLAN`` says how each member is served (SRU or Z39.50, MARC21 or UNIMARC, the slow one,
the one that is down); ``render_config`` writes it as a libraries file
(``config/demo.yaml``, ports ``PORT_BASE`` + the member's position); ``ensure`` writes the
catalogues into a cache directory once. ``broker.demo.servers`` serves them.
"""

from __future__ import annotations

import hashlib
import json
import random
import textwrap
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pymarc import Field, Indicators, Record, Subfield
from pypinyin import lazy_pinyin

from broker.kernel.config import Consortium

SEED = 20240517
GENERATOR_VERSION = 1
HOST = "127.0.0.1"
PORT_BASE = 21100  # member i (in config order) listens on PORT_BASE + i
WORKS = 1500
REPO = Path(__file__).resolve().parents[2]
LIBRARIES_FILE = REPO / "config" / "libraries.yaml"
DEMO_CONFIG = REPO / "config" / "demo.yaml"

# --- the members' plan ------------------------------------------------------------------

# Half the members speak SRU, half Z39.50. The real NLC target is Z39.50 with CNMARC in
# GBK and BNU's is Alma SRU with CNMARC: the demo keeps that much of the real directory.
SRU_MEMBERS = frozenset({
    "clcn", "buaa", "ustb", "buct", "ncepu", "cugb", "bucea", "uibe", "cueb", "blcu", "bisu",
    "bnu", "ccom", "cafa", "cupl", "cfau", "culr", "thu", "muc", "ucas", "bsu", "cau", "bua",
})
UNIMARC_MEMBERS = frozenset({"nlc", "bnu", "ruc", "cupl", "bfsu", "bjfu", "ccom", "cueb"})
# Z39.50 targets that speak GB18030 without negotiating (records and terms), as NLC's real
# one does: the Z39.50 server takes a catalogue's ``encoding`` for that. Their catalogues
# are stored in GB18030 on disk too, as Chinese CNMARC exports are, and so is BNU's.
WIRE_GB18030 = frozenset({"nlc", "ruc", "bjfu"})
GB18030_FILES = WIRE_GB18030 | {"bnu"}
SLOW = {"cafa": (3.0, 2.0)}  # member: (seconds each search takes, its timeout)
DOWN = frozenset({"buu"})  # configured, but nothing listens on its port
# Members whose catalogue cannot be searched by call number (the others say how).
NO_CALLNUMBER = frozenset({"clcn", "cup", "bisu", "ccmusic", "bua"})
CALLNUMBER_INDEX = {"sru": "bath.callnumber", "z3950": "1=20"}


@dataclass(frozen=True, slots=True)
class MemberPlan:
    id: str
    position: int  # in the libraries file; the port is PORT_BASE + position
    protocol: str  # sru | z3950
    format: str  # marc21 | unimarc
    encoding: str  # what the server sends records and takes terms in
    file_encoding: str  # what the catalogue file is written in
    delay: float = 0.0
    timeout: float | None = None
    down: bool = False
    callnumber: bool = True  # the catalogue can be searched by call number

    @property
    def database(self) -> str:
        return self.id

    @property
    def file_name(self) -> str:
        return f"{self.id}.{'iso' if self.format == 'unimarc' else 'mrc'}"

    def port(self, port_base: int = PORT_BASE) -> int:
        return port_base + self.position

    def url(self, port_base: int = PORT_BASE, host: str = HOST) -> str:
        if self.protocol == "sru":
            return f"http://{host}:{self.port(port_base)}/{self.database}"
        return f"z3950://{host}:{self.port(port_base)}/{self.database}"


def plan(member_ids: Iterable[str]) -> list[MemberPlan]:
    """How each member is served, in the libraries file's order."""
    out = []
    for position, lid in enumerate(member_ids):
        unimarc = lid in UNIMARC_MEMBERS
        delay, timeout = SLOW.get(lid, (0.0, None))
        out.append(MemberPlan(
            id=lid, position=position, protocol="sru" if lid in SRU_MEMBERS else "z3950",
            format="unimarc" if unimarc else "marc21",
            encoding="gb18030" if lid in WIRE_GB18030 else "utf-8",
            file_encoding="gb18030" if lid in GB18030_FILES else "utf-8",
            delay=delay, timeout=timeout, down=lid in DOWN,
            callnumber=lid not in NO_CALLNUMBER))
    return out


def load_members(path: Path = LIBRARIES_FILE) -> Consortium:
    """The real directory the demo mirrors (ids, names, categories, contacts)."""
    from broker.kernel import config as config_module

    return config_module.load(path)


# --- the demo's libraries file -----------------------------------------------------------

def render_config(consortium: Consortium, plans: list[MemberPlan],
                  port_base: int = PORT_BASE) -> str:
    """The demo's libraries file: the real members, each with a connector to its demo
    server on 127.0.0.1."""
    last = port_base + len(plans) - 1
    slow = "; ".join(f"{lid} is slow (each search takes {delay:g} s, its timeout is "
                     f"{timeout:g} s)" for lid, (delay, timeout) in SLOW.items())
    about = (
        "The bundled demo consortium: BALIS's 46 members (the same ids, names and categories "
        "as config/libraries.yaml), each searchable through a server that `balis demo` runs "
        "on this machine over made-up catalogues (broker/demo/data.py).\n"
        f"Ports {port_base}-{last} on {HOST}: member number i in this file listens on "
        f"{port_base} + i (`balis demo --port-base N` moves the range and writes a copy of "
        "this file with the new ports). Half the members speak SRU, half Z39.50; some send "
        "CNMARC (format unimarc)"
        + (", a few in GB18030 (encoding gb18030)" if WIRE_GB18030 else "")
        + f". On purpose, {slow}, and {', '.join(sorted(DOWN))} is down (nothing listens "
        "on its port); a few members cannot be searched by call number.\n"
        "Generated by broker/demo/data.py (render_config; python -m broker.demo.data "
        "rewrites it); tests/broker/test_demo.py checks that this file and the generator "
        "agree.")
    lines = []
    for paragraph in about.split("\n"):
        lines += textwrap.wrap(paragraph, 88, initial_indent="# ", subsequent_indent="# ")
        lines.append("#")
    lines[-1] = ""
    lines += [
        "consortium:",
        f"  name: {consortium.name}",
        f"  max_selected: {consortium.max_selected}",
        "",
        "defaults:",
        "  timeout: 10",
        "  max_records: 20",
        "",
        "categories:",
    ]
    lines += [f"  - {{id: {c.id}, name: {c.name}}}" for c in consortium.categories]
    lines += ["", "libraries:"]
    by_id = {p.id: p for p in plans}
    for lib in consortium.libraries:
        p = by_id[lib.id]
        lines.append(f"  - id: {lib.id}")
        lines.append(f"    name: {lib.name}")
        lines.append(f"    category: {lib.category}")
        if lib.initials:
            lines.append(f"    initials: {lib.initials}")
        contact = {k: v for k, v in (("name", lib.contact.name), ("phone", lib.contact.phone),
                                     ("email", lib.contact.email)) if v}
        if contact:
            lines.append("    contact: {" + ", ".join(f"{k}: {v}" for k, v in contact.items())
                         + "}")
        lines.append(f"    ill: {{cancel_window_minutes: {lib.ill.cancel_window_minutes}, "
                     f"loan_days: {lib.ill.loan_days}}}")
        note = ("  # slow on purpose" if p.delay else "  # down on purpose" if p.down else "")
        lines.append(f"    connector:{note}")
        lines.append(f"      protocol: {p.protocol}")
        lines.append(f"      url: {p.url(port_base)}")
        lines.append(f"      format: {p.format}")
        if p.encoding != "utf-8":
            lines.append(f"      encoding: {p.encoding}")
        if p.timeout is not None:
            lines.append(f"      timeout: {p.timeout:g}")
        if p.callnumber:
            lines.append(f"      indexes: {{callnumber: \"{CALLNUMBER_INDEX[p.protocol]}\"}}")
    return "\n".join(lines) + "\n"


def _words(text: str) -> list[str]:
    return text.split()


# --- vocabulary -------------------------------------------------------------------------

# Subject areas: CLC main class letters (TP computing, F economics...). Topics are
# (title stem, CLC class, subject heading with its subdivisions separated by —).
ZH_AREAS: dict[str, tuple[int, list[tuple[str, str, str]], list[str]]] = {
    "TP": (14, [
        ("计算机网络", "TP393", "计算机网络"), ("数据结构", "TP311.12", "数据结构"),
        ("操作系统", "TP316", "操作系统"), ("数据库系统", "TP311.13", "数据库系统"),
        ("人工智能", "TP18", "人工智能"), ("机器学习", "TP181", "机器学习"),
        ("软件工程", "TP311.5", "软件工程"), ("编译原理", "TP314", "编译程序—程序设计"),
        ("计算机组成原理", "TP301", "电子计算机—结构"), ("算法设计与分析", "TP301.6", "算法设计"),
        ("Python程序设计", "TP312.8", "软件工具—程序设计"),
        ("C语言程序设计", "TP312.8", "C语言—程序设计"),
        ("Java程序设计", "TP312.8", "JAVA语言—程序设计"), ("深度学习", "TP181", "机器学习"),
        ("大数据技术", "TP274", "数据处理"), ("云计算", "TP393.027", "计算机网络"),
        ("计算机图形学", "TP391.41", "计算机图形学"), ("信息安全", "TP309", "信息安全"),
        ("计算机应用基础", "TP39", "电子计算机"),
    ], ["概论", "教程", "基础", "原理与应用", "实践教程", "导论", "", "原理", "实用教程",
        "习题解答与实验指导"]),
    "TN": (5, [
        ("通信原理", "TN911", "通信原理"), ("信号与系统", "TN911.6", "信号系统"),
        ("数字电子技术", "TN79", "数字电路—电子技术"), ("电路分析", "TM133", "电路分析"),
        ("电力系统分析", "TM711", "电力系统—系统分析"), ("移动通信", "TN929.5", "移动通信"),
    ], ["教程", "基础", "", "概论", "学习指导"]),
    "O": (6, [
        ("高等数学", "O13", "高等数学"), ("线性代数", "O151.2", "线性代数"),
        ("概率论与数理统计", "O21", "概率论"), ("大学物理", "O4", "物理学"),
        ("有机化学", "O62", "有机化学"), ("数学分析", "O17", "数学分析"),
        ("复变函数", "O174.5", "复变函数"),
    ], ["", "教程", "学习辅导", "习题集", "简明教程"]),
    "F": (10, [
        ("中国经济", "F12", "经济发展—研究—中国"), ("宏观经济学", "F015", "宏观经济学"),
        ("微观经济学", "F016", "微观经济学"), ("国际贸易", "F74", "国际贸易"),
        ("金融市场", "F830.9", "金融市场"), ("区域经济", "F127", "区域经济发展—研究—中国"),
        ("农村经济", "F32", "农村经济—研究—中国"), ("产业经济", "F26", "产业经济学"),
        ("会计学", "F230", "会计学"), ("市场营销", "F713.50", "市场营销学"),
        ("中国经济史", "F129", "经济史—中国"),
    ], ["研究", "发展报告", "概论", "理论与实务", "问题研究", "原理", "教程", "发展研究",
        "改革与发展"]),
    "K": (8, [
        ("中国近代史", "K25", "中国历史—近代史"), ("中国古代史", "K22", "中国历史—古代史"),
        ("中国通史", "K20", "中国历史"), ("世界史", "K10", "世界史"),
        ("北京史", "K291", "北京—地方史"), ("明清史", "K248", "中国历史—明清时代"),
        ("中华民国史", "K258", "中国历史—民国"), ("中国文化史", "K203", "文化史—中国"),
    ], ["纲要", "研究", "论稿", "讲义", "史料选编", "十讲", ""]),
    "I": (9, [
        ("中国现代文学", "I206.6", "中国文学—现代文学—文学研究"),
        ("中国古代文学", "I206.2", "中国文学—古典文学—文学研究"),
        ("唐诗", "I207.22", "唐诗—诗歌研究"), ("宋词", "I207.23", "宋词—诗词研究"),
        ("鲁迅", "I210", "鲁迅著作研究"), ("红楼梦", "I207.411", "《红楼梦》研究"),
        ("外国文学", "I106", "外国文学—文学研究"),
        ("中国当代文学", "I206.7", "中国文学—当代文学—文学研究"),
        ("比较文学", "I0-03", "比较文学"),
    ], ["史", "研究", "选读", "鉴赏辞典", "作品选", "论集", "史稿", "十五讲", "导读"]),
    "D": (7, [
        ("宪法学", "D921.01", "宪法—法的理论—中国"), ("民法学", "D923.01", "民法—法的理论—中国"),
        ("刑法学", "D924.01", "刑法—法的理论—中国"), ("国际法", "D99", "国际法"),
        ("行政法", "D922.101", "行政法—中国"), ("中国政治制度", "D62", "政治制度—中国"),
        ("国际关系", "D81", "国际关系"), ("知识产权法", "D923.4", "知识产权法—中国"),
    ], ["教程", "原理", "概论", "案例研究", "总论", "新论"]),
    "G": (6, [
        ("高等教育", "G64", "高等教育—研究—中国"), ("教育学", "G40", "教育学"),
        ("图书馆学", "G250", "图书馆学"), ("信息检索", "G252.7", "情报检索"),
        ("教育心理学", "G44", "教育心理学"), ("体育", "G80", "体育运动"),
        ("新闻传播学", "G210", "新闻学—传播学"),
    ], ["概论", "研究", "基础", "导论", "教程", "原理"]),
    "H": (5, [
        ("现代汉语", "H109.4", "现代汉语"), ("古代汉语", "H109.2", "古汉语"),
        ("英语语法", "H314", "英语—语法"), ("语言学", "H0", "语言学"),
        ("对外汉语教学", "H195", "对外汉语教学"), ("日语", "H36", "日语"),
    ], ["", "教程", "概论", "纲要", "通论"]),
    "J": (4, [
        ("中国美术史", "J120.9", "美术史—中国"), ("西方音乐史", "J609.5", "音乐史—西方国家"),
        ("和声学", "J613.1", "和声学"), ("素描", "J214", "素描技法"),
        ("电影艺术", "J90", "电影艺术"), ("中国书法", "J292", "汉字—书法"),
    ], ["", "教程", "简史", "基础", "概论"]),
    "R": (4, [
        ("中医基础理论", "R22", "中医医学基础"), ("内科学", "R5", "内科学"),
        ("药理学", "R96", "药理学"), ("针灸学", "R245", "针灸学"), ("方剂学", "R289", "方剂学"),
    ], ["", "教程", "学习指导"]),
    "S": (4, [
        ("植物学", "Q94", "植物学"), ("森林生态学", "S718.5", "森林生态学"),
        ("土壤学", "S15", "土壤学"), ("作物栽培学", "S31", "作物—栽培技术"),
        ("园林设计", "TU986.2", "园林设计"),
    ], ["", "教程", "概论", "实验指导"]),
    "P": (4, [
        ("地质学基础", "P5", "地质学"), ("矿物学", "P57", "矿物学"),
        ("构造地质学", "P54", "构造地质学"), ("建筑设计原理", "TU2", "建筑设计"),
        ("城市规划原理", "TU984", "城市规划"), ("采矿学", "TD8", "矿山开采"),
        ("石油地质学", "P618.130", "石油天然气地质"),
    ], ["", "教程", "概论"]),
}
ZH_SUBTITLES = ["基于面板数据的实证分析", "理论、方法与实践", "以北京为例", "1949-2019",
                "历史与现状", "问题与对策", "国际比较的视角", "案例与分析"]
ZH_SERIES = ["普通高等教育“十一五”国家级规划教材", "普通高等教育“十二五”规划教材",
             "21世纪高等学校规划教材", "高等学校教材", "北京大学名家讲坛丛书", "中华学术丛书"]

# Publishers: (name, place, ISBN registrant after 978-7-, areas they publish).
ZH_PUBLISHERS = [
    ("人民文学出版社", "北京", "02", "I"), ("清华大学出版社", "北京", "302", "TP TN O G"),
    ("高等教育出版社", "北京", "04", "TP TN O F D G H R S"), ("中华书局", "北京", "101", "K I H"),
    ("商务印书馆", "北京", "100", "H K I F G"), ("北京大学出版社", "北京", "301", "F K I D G H O"),
    ("机械工业出版社", "北京", "111", "TP TN F"), ("电子工业出版社", "北京", "121", "TP TN"),
    ("人民邮电出版社", "北京", "115", "TP TN"), ("科学出版社", "北京", "03", "O P S R TP"),
    ("中国人民大学出版社", "北京", "300", "F D K G"), ("法律出版社", "北京", "5197", "D"),
    ("上海古籍出版社", "上海", "5325", "K I"), ("上海人民出版社", "上海", "208", "K F D"),
    ("社会科学文献出版社", "北京", "5201", "F K D G"),
    ("生活·读书·新知三联书店", "北京", "108", "K I"), ("人民出版社", "北京", "01", "D K F"),
    ("经济科学出版社", "北京", "5141", "F"), ("中国社会科学出版社", "北京", "5203", "F K D I"),
    ("外语教学与研究出版社", "北京", "5135", "H I"), ("人民卫生出版社", "北京", "117", "R"),
    ("中国林业出版社", "北京", "5219", "S"), ("中国农业出版社", "北京", "109", "S"),
    ("北京师范大学出版社", "北京", "303", "G H O"), ("化学工业出版社", "北京", "122", "O TN"),
    ("人民音乐出版社", "北京", "103", "J"), ("人民美术出版社", "北京", "102", "J"),
    ("中国建筑工业出版社", "北京", "112", "P"), ("地质出版社", "北京", "116", "P"),
    ("华东师范大学出版社", "上海", "5760", "G H"), ("复旦大学出版社", "上海", "309", "F K I"),
    ("浙江大学出版社", "杭州", "308", "TP O"), ("南京大学出版社", "南京", "305", "I K"),
    ("武汉大学出版社", "武汉", "307", "D G"), ("中国电力出版社", "北京", "5198", "TN"),
]
SURNAMES = ("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏"
            "卢蒋蔡贾丁魏薛叶余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾"
            "侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文")
GIVEN = _words(
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 霞 "
    "平 刚 建国 建华 志强 国华 晓明 海 波 宁 红 玉兰 华 新 春 "
    "林 文 斌 辉 鹏 宇 浩 凯 立 东 晨 阳 振华 卫东 小平 淑珍 "
    "秀兰 德明 永红 丽华 学军 海燕 庆 毅 峰 岩 琳 颖 婷 瑞 鑫 "
    "思远 子涵 一鸣 天佑 嘉怡")

EN_TOPICS = [  # (topic as written mid-sentence, LCC class, CLC class, LCSH, area)
    ("data structures", "QA76.9.D35", "TP311.12", "Data structures (Computer science)", "TP"),
    ("machine learning", "Q325.5", "TP181", "Machine learning", "TP"),
    ("computer networks", "TK5105.5", "TP393", "Computer networks", "TP"),
    ("operating systems", "QA76.77", "TP316", "Operating systems (Computers)", "TP"),
    ("artificial intelligence", "Q335", "TP18", "Artificial intelligence", "TP"),
    ("Python programming", "QA76.73.P98", "TP312.8", "Python (Computer program language)",
     "TP"),
    ("database systems", "QA76.9.D3", "TP311.13", "Database management", "TP"),
    ("signal processing", "TK5102.9", "TN911.7", "Signal processing", "TN"),
    ("linear algebra", "QA184.2", "O151.2", "Algebras, Linear", "O"),
    ("probability and statistics", "QA273", "O21", "Probabilities", "O"),
    ("economic development", "HD75", "F061.3", "Economic development", "F"),
    ("the Chinese economy", "HC427.95", "F12", "China -- Economic conditions", "F"),
    ("international trade", "HF1379", "F74", "International trade", "F"),
    ("modern China", "DS774", "K25", "China -- History -- 20th century", "K"),
    ("imperial China", "DS735", "K22", "China -- History", "K"),
    ("world history", "D21", "K10", "World history", "K"),
    ("Chinese literature", "PL2265", "I206", "Chinese literature -- History and criticism",
     "I"),
    ("classical Chinese poetry", "PL2307", "I207.2",
     "Chinese poetry -- History and criticism", "I"),
    ("comparative law", "K559", "D908", "Comparative law", "D"),
    ("international relations", "JZ1242", "D81", "International relations", "D"),
    ("higher education", "LB2322.2", "G64", "Education, Higher", "G"),
    ("library science", "Z665", "G250", "Library science", "G"),
    ("linguistics", "P121", "H0", "Linguistics", "H"),
    ("English grammar", "PE1106", "H314", "English language -- Grammar", "H"),
    ("Western music", "ML160", "J609.5", "Music -- History and criticism", "J"),
    ("Chinese art", "N7340", "J120.9", "Art, Chinese -- History", "J"),
    ("pharmacology", "RM300", "R96", "Pharmacology", "R"),
    ("forest ecology", "QK938.F6", "S718.5", "Forest ecology", "S"),
    ("structural geology", "QE601", "P54", "Geology, Structural", "P"),
]
EN_PATTERNS = ["Introduction to {t}", "{T}: principles and practice", "Foundations of {t}",
               "{T}: a modern approach", "Understanding {t}", "Essentials of {t}",
               "{T} in practice", "Advanced {t}", "{T}: theory and applications",
               "Readings in {t}", "Handbook of {t}", "Perspectives on {t}"]
EN_PUBLISHERS = [  # (name, place, ISBN prefix after 978-, MARC country code)
    ("Oxford University Press", "Oxford", "0-19", "enk"),
    ("Cambridge University Press", "Cambridge", "1-108", "enk"),
    ("MIT Press", "Cambridge, Mass.", "0-262", "mau"),
    ("Springer", "Cham", "3-030", "sz "), ("Routledge", "London", "1-138", "enk"),
    ("Wiley", "Hoboken, N.J.", "1-119", "nju"), ("Academic Press", "London", "0-12", "enk"),
    ("Princeton University Press", "Princeton", "0-691", "nju"),
    ("Yale University Press", "New Haven", "0-300", "ctu"),
    ("Harvard University Press", "Cambridge, Mass.", "0-674", "mau"),
    ("University of Chicago Press", "Chicago", "0-226", "ilu"),
    ("Columbia University Press", "New York", "0-231", "nyu"),
    ("Pearson", "Boston", "0-13", "mau"), ("O'Reilly", "Sebastopol, CA", "1-4920", "cau"),
    ("McGraw-Hill", "New York", "0-07", "nyu"),
]
EN_SURNAMES = _words(
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore "
    "Martin Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King "
    "Wright Scott Hill Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips "
    "Campbell Parker Evans Edwards Collins Stewart Morris Murphy Cook Rogers Morgan Cooper "
    "Peterson Reed Bailey Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks Bennett "
    "Gray Hughes Price Fischer Weber Schmidt Chen Wang Kim Tanaka Dubois Rossi")
EN_GIVEN = _words("James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David "
            "Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy "
            "Matthew Lisa Anthony Margaret Mark Sandra Paul Emily Andrew Donna Kenneth Michelle "
            "Peter Carol Alan Helen Hans Pierre Wei Yuki")
ZH_JOURNAL_TOPICS = [("经济", "F"), ("历史", "K"), ("文学", "I"), ("法学", "D"), ("教育", "G"),
                     ("图书馆", "G"), ("情报", "G"), ("计算机", "TP"), ("管理", "F"),
                     ("社会", "D"), ("哲学", "K"), ("语言", "H"), ("外语", "H"), ("音乐", "J"),
                     ("美术", "J"), ("中医", "R"), ("林业", "S"), ("农业", "S"), ("地质", "P"),
                     ("电力", "TN"), ("数学", "O"), ("物理", "O"), ("新闻", "G"), ("体育", "G")]
ZH_JOURNAL_FORMS = ["{t}研究", "中国{t}", "{t}评论", "{t}学刊", "现代{t}", "{t}科学", "{t}论坛"]
EN_JOURNAL_FORMS = ["Journal of {T}", "{T} review", "International journal of {t}",
                    "{T} quarterly", "Studies in {t}"]
EN_JOURNAL_PUBLISHERS = ["Elsevier", "Springer", "Wiley", "Taylor & Francis",
                         "Oxford University Press", "Cambridge University Press"]
# Which subject areas each category's libraries favour (beyond holding everything a bit).
CATEGORY_AREAS = {
    "public": "", "comprehensive": "",
    "engineering": "TP TN O P", "economics": "F D", "humanities": "H I K G EN",
    "normal": "G H I K O", "arts": "J I", "law": "D K", "agri_forestry_medical": "S R O",
}
MEMBER_AREAS = {"bsu": "G", "cuc": "G J", "ncepu": "TN", "cugb": "P", "cumtb": "P", "cup": "P",
                "bucea": "P", "bjfu": "S", "cau": "S", "bua": "S", "bucm": "R", "ccmu": "R",
                "ccom": "J", "ccmusic": "J", "cafa": "J", "bfsu": "EN H", "bisu": "EN H",
                "blcu": "H EN", "bupt": "TP TN", "buaa": "TP TN", "bit": "TP TN"}
ZH_LOCATIONS = {
    "sci": ["中文科技图书借阅区", "中文图书借阅室（三层）", "基藏书库", "自然科学图书阅览室"],
    "soc": ["中文社科图书借阅区", "中文图书借阅室（二层）", "基藏书库", "人文社科图书阅览室"],
}
SCIENCE_AREAS = frozenset({"TP", "TN", "O", "R", "S", "P"})


# --- the works --------------------------------------------------------------------------

@dataclass(slots=True)
class Work:
    number: int
    kind: str  # zh (Chinese book), en (Western book), zh_serial, en_serial
    area: str
    title: str
    subtitle: str | None
    authors: list[str]  # personal names as catalogued (Chinese: 王建国; Western: Smith, John)
    responsibility: str
    publisher: str
    place: str
    year: int
    clc: str
    subjects: list[str]  # headings, subdivisions separated by —
    edition: str | None = None
    isbn13: str | None = None  # digits
    isbn_hyphens: str | None = None  # as printed (978-7-302-12345-6)
    issn: str | None = None
    lcc: str | None = None
    country: str = "cc "  # MARC21 008 place code
    pages: int = 300
    height: int = 26
    price: str | None = None
    series: str | None = None
    frequency: str | None = None
    cn_number: str | None = None  # 统一刊号 of a Chinese serial
    translator: str | None = None
    owner: str | None = None  # a member's own journal
    weight: float = 1.0  # how widely held


def isbn13_check(first12: str) -> str:
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn10_check(first9: str) -> str:
    total = sum((10 - i) * int(c) for i, c in enumerate(first9))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def issn_check(first7: str) -> str:
    total = sum((8 - i) * int(c) for i, c in enumerate(first7))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _isbn(rng: random.Random, prefix: str, used: set[str]) -> tuple[str, str]:
    """(ISBN-13 digits, hyphenated) for group-registrant ``prefix`` like ``7-302``."""
    group_registrant = prefix.replace("-", "")
    width = 9 - len(group_registrant)
    while True:
        number = f"{rng.randrange(10 ** width):0{width}d}"
        digits12 = "978" + group_registrant + number
        if digits12 not in used:
            used.add(digits12)
            break
    digits = digits12 + isbn13_check(digits12)
    return digits, f"978-{prefix}-{number}-{digits[-1]}"


def isbn10_form(isbn13: str, hyphenated13: str | None = None) -> str:
    """The ISBN-10 printed on a book from before 2007 (hyphenated if the 13 is)."""
    body = isbn13[3:12]
    check = isbn10_check(body)
    if hyphenated13:
        parts = hyphenated13.split("-")[1:-1]
        return "-".join([*parts, check])
    return body + check


def _issn(rng: random.Random, used: set[str]) -> str:
    while True:
        first = f"{rng.randrange(10 ** 7):07d}"
        if first not in used:
            used.add(first)
            break
    return f"{first[:4]}-{first[4:]}{issn_check(first)}"


def _year(rng: random.Random, low: int = 1980, high: int = 2025) -> int:
    # More recent books than old ones, as in a working collection.
    return low + int((high - low + 1) * rng.random() ** 0.7)


def _zh_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _en_name(rng: random.Random) -> str:
    given = rng.choice(EN_GIVEN)
    if rng.random() < 0.3:
        given += f" {rng.choice('ABCDEFGHJKLMNPRSTW')}."
    return f"{rng.choice(EN_SURNAMES)}, {given}"


def _en_display(name: str) -> str:
    surname, _, given = name.partition(", ")
    return f"{given} {surname}" if given else surname


def _ordinal(n: int) -> str:
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _pick_publisher(rng: random.Random, area: str):
    fitting = [p for p in ZH_PUBLISHERS if area in p[3].split()]
    return rng.choice(fitting or ZH_PUBLISHERS)


def make_works(rng: random.Random, members: list[tuple[str, str]], count: int = WORKS
               ) -> list[Work]:
    """``count`` works: about two thirds Chinese books, a quarter Western books, the rest
    serials (among them each university's own 学报)."""
    used_isbns: set[str] = set()
    used_issns: set[str] = set()
    works: list[Work] = []
    n_serials = count // 10
    n_en = count // 4
    n_zh = count - n_serials - n_en
    areas = list(ZH_AREAS)
    weights = [ZH_AREAS[a][0] for a in areas]
    while len(works) < n_zh:
        area = rng.choices(areas, weights)[0]
        _, topics, suffixes = ZH_AREAS[area]
        stem, clc, heading = rng.choice(topics)
        suffix = rng.choice(suffixes)
        title = stem + suffix
        if area in ("F", "D") and not stem.startswith("中国") and rng.random() < 0.25:
            title = "中国" + title
        elif rng.random() < 0.06:
            title = rng.choice(("新编", "实用", "现代")) + title
        subtitle = rng.choice(ZH_SUBTITLES) if suffix in ("研究", "问题研究", "发展研究") and \
            rng.random() < 0.4 else None
        people = [_zh_name(rng) for _ in range(rng.choices((1, 2, 3), (6, 3, 1))[0])]
        role = rng.choice(("著", "主编", "编著", "编"))
        resp = ("，".join(people) if len(people) < 3 else f"{people[0]}等") + role
        publisher, place, registrant, _ = _pick_publisher(rng, area)
        textbook = any(s and s in suffix for s in ("教程", "概论", "基础", "导论", "原理"))
        editions = rng.choices((1, 2, 3), (7, 2, 1))[0] if textbook else 1
        year = _year(rng, 1980, 2025 - 4 * (editions - 1))
        subjects = [heading + ("—高等学校—教材" if textbook and rng.random() < 0.6 else "")]
        series = rng.choice(ZH_SERIES) if textbook and rng.random() < 0.3 else None
        pages = rng.randrange(120, 720)
        for ed in range(1, editions + 1):
            if len(works) >= n_zh:
                break
            ed_year = min(2025, year + (ed - 1) * rng.randrange(3, 7))
            isbn13 = hyphens = None
            if ed_year >= 1987:  # Chinese books have ISBNs from 1987
                isbn13, hyphens = _isbn(rng, f"7-{registrant}", used_isbns)
            works.append(Work(
                number=len(works), kind="zh", area=area, title=title, subtitle=subtitle,
                authors=people, responsibility=resp, publisher=publisher, place=place,
                year=ed_year, clc=clc, subjects=subjects,
                edition=f"第{ed}版" if ed > 1 else None, isbn13=isbn13, isbn_hyphens=hyphens,
                pages=pages + 24 * (ed - 1), height=rng.choice((21, 23, 24, 26, 26, 26)),
                price=f"CNY{rng.randrange(18, 128)}.{rng.choice(('00', '00', '50', '80'))}",
                series=series, weight=1.6 if textbook else 1.0))
    while len(works) < n_zh + n_en:
        topic, lcc, clc, lcsh, area = rng.choice(EN_TOPICS)
        pattern = rng.choice(EN_PATTERNS)
        title = pattern.format(t=topic, T=topic[0].upper() + topic[1:])
        title = title[0].upper() + title[1:]
        title, _, subtitle = title.partition(": ")
        people = [_en_name(rng) for _ in range(rng.choices((1, 2, 3), (6, 3, 1))[0])]
        names = [_en_display(p) for p in people]
        resp = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        if pattern.startswith(("Handbook", "Readings", "Perspectives")):
            resp = f"edited by {resp}"
        publisher, place, prefix, country = rng.choice(EN_PUBLISHERS)
        ed = rng.choices((1, 2, 3), (8, 2, 1))[0]
        year = _year(rng, 1980, 2025)
        isbn13, hyphens = _isbn(rng, prefix, used_isbns)
        cutter = f"{people[0][0]}{rng.randrange(2, 99)}"
        works.append(Work(
            number=len(works), kind="en", area=area, title=title, subtitle=subtitle or None,
            authors=people, responsibility=resp, publisher=publisher, place=place, year=year,
            clc=clc, subjects=[lcsh], edition=f"{_ordinal(ed)} ed." if ed > 1 else None,
            isbn13=isbn13, isbn_hyphens=hyphens, lcc=f"{lcc} {cutter} {year}",
            country=country, pages=rng.randrange(180, 860), height=rng.choice((23, 24, 25)),
            weight=0.8))
    # Serials: every university's own journal, then topical ones, Chinese and Western.
    for lid, name in members:
        if len(works) >= count:
            break
        if "大学" not in name and "学院" not in name:
            continue
        school = name.removesuffix("图书馆")
        part = rng.choice(("社会科学版", "自然科学版", "哲学社会科学版"))
        works.append(_zh_serial(rng, len(works), f"{school}学报", part, school, "G",
                                used_issns, owner=lid))
    while len(works) < count:
        if rng.random() < 0.7:
            topic, area = rng.choice(ZH_JOURNAL_TOPICS)
            title = rng.choice(ZH_JOURNAL_FORMS).format(t=topic)
            if any(w.title == title for w in works):
                continue
            works.append(_zh_serial(rng, len(works), title, None, f"《{title}》编辑部", area,
                                    used_issns))
        else:
            topic, lcc, clc, lcsh, area = rng.choice(EN_TOPICS)
            form = rng.choice(EN_JOURNAL_FORMS)
            title = form.format(t=topic, T=topic[0].upper() + topic[1:])
            title = title[0].upper() + title[1:]
            if any(w.title == title for w in works):
                continue
            publisher = rng.choice(EN_JOURNAL_PUBLISHERS)
            place = {"Elsevier": "Amsterdam", "Springer": "New York", "Wiley": "Hoboken, N.J.",
                     "Taylor & Francis": "Abingdon", "Oxford University Press": "Oxford",
                     "Cambridge University Press": "Cambridge"}[publisher]
            works.append(Work(
                number=len(works), kind="en_serial", area=area, title=title, subtitle=None,
                authors=[], responsibility="", publisher=publisher, place=place,
                year=rng.randrange(1950, 2015), clc=clc, subjects=[f"{lcsh} -- Periodicals"],
                issn=_issn(rng, used_issns), lcc=lcc, country="ne ",
                frequency=rng.choice(("Quarterly", "Bimonthly", "Monthly")), weight=1.3))
    return works


def _zh_serial(rng, number, title, part, publisher, area, used_issns, owner=None) -> Work:
    clc = {"G": "G64", "F": "F", "K": "K", "I": "I", "D": "D", "TP": "TP", "H": "H",
           "J": "J", "R": "R", "S": "S", "P": "P", "TN": "TN", "O": "O"}[area]
    region = 11  # Beijing
    return Work(
        number=number, kind="zh_serial", area=area, title=title, subtitle=part, authors=[],
        responsibility=f"{publisher}编" if owner else "", publisher=publisher,
        place="北京", year=rng.randrange(1950, 2012), clc=clc,
        subjects=[f"{title.removesuffix('学报') if owner else title}—期刊"],
        issn=_issn(rng, used_issns),
        cn_number=f"{region}-{rng.randrange(1000, 5999)}/{clc[0]}",
        frequency=rng.choice(("月刊", "双月刊", "季刊")), owner=owner,
        weight=0.5 if owner else 1.4)


# --- who holds what -----------------------------------------------------------------------

HOLDERS = (1, 2, 3, 4, 5, 6, 7, 8)
HOLDER_WEIGHTS = (30, 24, 16, 11, 8, 5, 4, 2)


def assign(rng: random.Random, works: list[Work], members: list[tuple[str, str]],
           categories: dict[str, str], low: int = 50, high: int = 150
           ) -> dict[str, list[Work]]:
    """Each work to 1-8 members (the ones whose subjects it fits more likely), each member
    ending with ``low``..``high`` records."""
    ids = [lid for lid, _ in members]
    target = {}
    for lid in ids:
        big = categories[lid] in ("public", "comprehensive") or lid in ("pku", "thu", "nlc")
        target[lid] = rng.randrange(110, high + 1) if big else rng.randrange(low, 125)
    favours = {lid: set((CATEGORY_AREAS[categories[lid]] + " " + MEMBER_AREAS.get(lid, ""))
                        .split()) for lid in ids}
    held: dict[str, list[Work]] = {lid: [] for lid in ids}
    order = list(works)
    rng.shuffle(order)
    for work in order:
        k = rng.choices(HOLDERS, HOLDER_WEIGHTS)[0]
        if work.weight > 1.2:
            k = min(8, k + 1)
        chosen: list[str] = []
        if work.owner:
            chosen.append(work.owner)
        area = "EN" if work.kind == "en" else work.area
        while len(chosen) < k:
            weights = []
            for lid in ids:
                if lid in chosen:
                    weights.append(0.0)
                    continue
                room = target[lid] - len(held[lid])
                fit = 4.0 if area in favours[lid] or work.area in favours[lid] else 1.0
                weights.append(fit * (room if room > 0 else 0.02))
            if not any(weights):
                break
            chosen.append(rng.choices(ids, weights)[0])
        for lid in chosen:
            held[lid].append(work)
    for lid in ids:  # every member holds at least ``low`` records
        have = {w.number for w in held[lid]}
        spare = [w for w in works if w.number not in have]
        while len(held[lid]) < low and spare:
            held[lid].append(spare.pop(rng.randrange(len(spare))))
        del held[lid][high:]
        held[lid].sort(key=lambda w: w.number)
        rng.shuffle(held[lid])  # a catalogue is in accession order, not ours
    return held


# --- one member's records -----------------------------------------------------------------

FT, RT, SF = b"\x1e", b"\x1d", b"\x1f"


def iso2709(record: Record, encoding: str = "utf-8") -> bytes:
    """One record as ISO 2709 in ``encoding`` (pymarc writes only UTF-8 or Latin-1)."""
    directory: list[bytes] = []
    bodies: list[bytes] = []
    offset = 0
    for f in record.fields:
        if f.is_control_field():
            body = (f.data or "").encode(encoding) + FT
        else:
            body = (f.indicator1 + f.indicator2).encode("ascii") + b"".join(
                SF + sf.code.encode("ascii") + sf.value.encode(encoding)
                for sf in f.subfields) + FT
        directory.append(f"{f.tag}{len(body):04d}{offset:05d}".encode("ascii"))
        bodies.append(body)
        offset += len(body)
    base = 24 + 12 * len(directory) + 1
    total = base + offset + 1
    leader = str(record.leader)
    leader = f"{total:05d}{leader[5:12]}{base:05d}{leader[17:]}"
    return leader.encode("ascii") + b"".join(directory) + FT + b"".join(bodies) + RT


def _f(tag: str, ind: str, *pairs: str | None) -> Field:
    """A data field from alternating codes and values; empty values are left out."""
    subfields = [Subfield(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)
                 if pairs[i + 1]]
    return Field(tag, Indicators(ind[0], ind[1]), subfields)


def _c(tag: str, data: str) -> Field:
    return Field(tag, data=data)


def _pinyin(text: str) -> str:
    syllables = [s for s in lazy_pinyin(text, errors="ignore") if s.strip()]
    return " ".join(s[:1].upper() + s[1:] for s in syllables)


def _heading_parts(heading: str) -> list[tuple[str, str]]:
    """'经济发展—研究—中国' -> [('a', 经济发展), ('x', 研究), ('y', 中国)] (CNMARC codes;
    a place is $y, a form such as 教材 or 期刊 is $j)."""
    parts = [p for p in heading.replace(" -- ", "—").split("—") if p]
    out = [("a", parts[0])]
    for part in parts[1:]:
        if part in ("中国", "北京", "西方国家"):
            out.append(("y", part))
        elif part in ("教材", "期刊", "Periodicals"):
            out.append(("j", part))
        else:
            out.append(("x", part))
    return out


@dataclass(slots=True)
class MemberStyle:
    """How one member catalogues: its code, numbering, locations, habits."""

    id: str
    code: str
    flavour: str
    number_base: int
    barcode_prefix: str
    pinyin: bool
    isbn_hyphens: bool
    locations: dict[str, str] = field(default_factory=dict)
    next_number: int = 1
    next_barcode: int = 1
    shelf: dict[str, int] = field(default_factory=dict)  # CLC class -> last 种次号


def _style(rng: random.Random, p: MemberPlan) -> MemberStyle:
    return MemberStyle(
        id=p.id, code=p.id.upper(), flavour=p.format,
        number_base=(p.position + 1) * 10_000_000 + rng.randrange(100_000, 900_000),
        barcode_prefix=rng.choice(("", "0", "C", "1")) + f"{p.position + 11:02d}",
        pinyin=p.format == "unimarc" and rng.random() < 0.6,
        isbn_hyphens=rng.random() < 0.5,
        locations={"sci": rng.choice(ZH_LOCATIONS["sci"]), "soc": rng.choice(ZH_LOCATIONS["soc"]),
                   "en": rng.choice(("外文图书借阅区", "外文书库", "外文图书阅览室")),
                   "serial": rng.choice(("期刊阅览室", "中外文期刊阅览区", "过刊库"))})


def _call_number(rng: random.Random, style: MemberStyle, work: Work) -> tuple[str, str]:
    """(class part, item part) of the member's call number: CLC with its own 种次号 for
    Chinese books, an author mark for Western ones; MARC21 members shelve Western books by
    LCC."""
    if work.kind == "en" and style.flavour == "marc21" and work.lcc:
        cls, _, item = work.lcc.partition(" ")
        return cls, item
    if work.kind.endswith("serial"):
        return work.clc, f"{rng.randrange(1, 400)}"
    if work.kind == "en":
        return work.clc, f"{work.authors[0][0]}{rng.randrange(100, 999)}"
    number = style.shelf.get(work.clc, rng.randrange(0, 60)) + rng.randrange(1, 4)
    style.shelf[work.clc] = number
    item = str(number)
    if work.edition:
        item += f"={work.edition.strip('第版')}"
    return work.clc, item


def _copies(rng: random.Random, style: MemberStyle, work: Work) -> list[str]:
    n = 1 if work.kind.endswith("serial") else rng.choices((1, 2, 3), (6, 3, 1))[0]
    out = []
    for _ in range(n):
        out.append(f"{style.barcode_prefix}{style.next_barcode:06d}")
        style.next_barcode += rng.randrange(1, 40)
    return out


def _location(style: MemberStyle, work: Work) -> str:
    if work.kind.endswith("serial"):
        return style.locations["serial"]
    if work.kind == "en":
        return style.locations["en"]
    return style.locations["sci" if work.area in SCIENCE_AREAS else "soc"]


def _catalogued(rng: random.Random, work: Work) -> tuple[str, str]:
    """(yyyymmdd, yyyymmddhhmmss.0) when the member catalogued the work."""
    year = min(2025, max(work.year, 1995) + rng.randrange(0, 3))
    day = f"{year}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    return day, f"{day}{rng.randrange(8, 18):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}.0"


def _printed_isbn(work: Work, style: MemberStyle) -> str | None:
    if not work.isbn13:
        return None
    hyphens = work.isbn_hyphens if style.isbn_hyphens else None
    if work.year < 2007:  # the book says ISBN-10
        return isbn10_form(work.isbn13, hyphens)
    return hyphens or work.isbn13


def marc21_record(rng: random.Random, style: MemberStyle, work: Work) -> Record:
    serial = work.kind.endswith("serial")
    chinese = work.kind.startswith("zh")
    entered, stamp = _catalogued(rng, work)
    record = Record(leader=f"00000na{'s' if serial else 'm'} a2200000 i 4500")
    record.add_field(_c("001", str(style.number_base + style.next_number)))
    style.next_number += 1
    record.add_field(_c("003", style.code))
    record.add_field(_c("005", stamp))
    lang = "chi" if chinese else "eng"
    country = "cc " if chinese else work.country
    if serial:
        freq = {"月刊": "m", "双月刊": "b", "季刊": "q", "Monthly": "m", "Bimonthly": "b",
                "Quarterly": "q"}[work.frequency or "月刊"]
        fixed = f"{freq}r p" + " " * 7 + "0" + " " * 4 + "0"
        assert len(fixed) == 17
        record.add_field(_c("008", f"{entered[2:]}c{work.year}9999{country}{fixed}{lang} d"))
    else:
        fixed = "a   " + " " * 6 + " 001 0 "
        assert len(fixed) == 17
        record.add_field(_c("008", f"{entered[2:]}s{work.year}    {country}{fixed}{lang} d"))
    isbn = _printed_isbn(work, style)
    if isbn:
        record.add_field(_f("020", "  ", "a", isbn, "c", work.price))
    if work.issn:
        record.add_field(_f("022", "0 ", "a", work.issn))
    record.add_field(_f("040", "  ", "a", style.code, "b", "chi" if chinese else "eng",
                        "c", style.code, "e", "rda" if work.year >= 2013 else None))
    if work.lcc:
        cls, _, item = work.lcc.partition(" ")
        record.add_field(_f("050", " 4", "a", cls, "b", item or None))
    record.add_field(_f("084", "  ", "a", work.clc, "2", "clc"))
    if work.authors:
        first = work.authors[0]
        record.add_field(_f("100", "1 " if "," in first else "0 ", "a", first,
                            "e", "author" if not chinese else None))
    ind1 = "1" if work.authors else "0"
    resp = work.responsibility + "." if work.responsibility else None
    if work.owner:  # a university's journal: the part (社会科学版) is $p
        record.add_field(_f("245", "00", "a", f"{work.title}.",
                            "p", work.subtitle + (" /" if resp else "."), "c", resp))
    else:
        end = " /" if resp else "."
        title = work.title + (" :" if work.subtitle else end)
        sub = work.subtitle + end if work.subtitle else None
        record.add_field(_f("245", f"{ind1}0", "a", title, "b", sub, "c", resp))
    if work.edition:
        record.add_field(_f("250", "  ", "a", work.edition))
    pub = ("264", " 1") if work.year >= 2012 else ("260", "  ")
    record.add_field(_f(pub[0], pub[1], "a", f"{work.place} :", "b", f"{work.publisher},",
                        "c", f"{work.year}{'-' if serial else '.'}"))
    if serial:
        record.add_field(_f("300", "  ", "a", "册" if chinese else "volumes",
                            "c", "26cm" if chinese else "26 cm"))
        record.add_field(_f("310", "  ", "a", work.frequency))
    elif chinese:
        record.add_field(_f("300", "  ", "a", f"{work.pages}页 :", "b", "图 ;",
                            "c", f"{work.height}cm"))
    else:
        pages = f"xii, {work.pages} pages" if work.year >= 2013 else f"xii, {work.pages} p."
        record.add_field(_f("300", "  ", "a", f"{pages} :", "b", "illustrations ;",
                            "c", f"{work.height} cm"))
    if work.year >= 2013:
        record.add_field(_f("336", "  ", "a", "text", "b", "txt", "2", "rdacontent"))
    if work.series:
        record.add_field(_f("490", "0 ", "a", work.series))
    if work.kind == "en":
        record.add_field(_f("504", "  ", "a", "Includes bibliographical references and index."))
    for heading in work.subjects:
        parts = _heading_parts(heading)
        codes = {"a": "a", "x": "x", "y": "z", "j": "v"}
        pairs = [x for code, value in parts for x in (codes[code], value)]
        record.add_field(_f("650", " 0" if not chinese else " 4", *pairs))
    for name in work.authors[1:]:
        record.add_field(_f("700", "1 " if "," in name else "0 ", "a", name))
    cls, item = _call_number(rng, style, work)
    whole = f"{cls}/{item}" if cls == work.clc else None  # CLC: one string; LCC: $h $i
    for barcode in _copies(rng, style, work):
        if whole:
            record.add_field(_f("852", "  ", "a", style.code, "b", _location(style, work),
                                "h", whole, "p", barcode))
        else:
            record.add_field(_f("852", "0 ", "a", style.code, "b", _location(style, work),
                                "h", cls, "i", item, "p", barcode))
    if serial:
        record.add_field(_f("866", " 0", "a", f"{max(work.year, 1995)}-"))
    return record


def unimarc_record(rng: random.Random, style: MemberStyle, work: Work,
                   charset: str = "50  ") -> Record:
    serial = work.kind.endswith("serial")
    chinese = work.kind.startswith("zh")
    entered, stamp = _catalogued(rng, work)
    record = Record(leader=f"00000na{'s' if serial else 'm'}0 2200000   450 ")
    record.add_field(_c("001", str(style.number_base + style.next_number)))
    style.next_number += 1
    record.add_field(_c("005", stamp))
    isbn = _printed_isbn(work, style)
    if isbn:
        record.add_field(_f("010", "  ", "a", isbn, "d", work.price))
    if work.issn:
        record.add_field(_f("011", "  ", "a", work.issn))
    if work.cn_number:
        record.add_field(_f("091", "  ", "a", work.cn_number))
    kind = f"a{work.year}9999" if serial else f"d{work.year}    "
    lang = "chi" if chinese else "eng"
    record.add_field(_f("100", "  ", "a", f"{entered}{kind}em y0{lang}y{charset}    "
                        + ("ea" if chinese else "ba")))
    record.add_field(_f("101", "0 ", "a", lang))
    record.add_field(_f("102", "  ", "a", "CN" if chinese else "US",
                        "b", "110000" if chinese else None))
    if not serial:
        record.add_field(_f("105", "  ", "a", "a   z   000yy"))
    record.add_field(_f("106", "  ", "a", "r"))
    pinyin = style.pinyin and chinese
    record.add_field(_f("200", "1 ", "a", work.title, "A", _pinyin(work.title) if pinyin else None,
                        "i" if work.owner else "e", work.subtitle,
                        "f", work.responsibility or None))
    if work.edition:
        record.add_field(_f("205", "  ", "a", work.edition))
    if serial and chinese:
        record.add_field(_f("207", " 0", "a", f"{work.year},no.1-"))
    record.add_field(_f("210", "  ", "a", work.place, "c", work.publisher, "d", str(work.year)))
    if serial:
        record.add_field(_f("215", "  ", "a", "册" if chinese else "v.", "d", "26cm"))
    else:
        record.add_field(_f("215", "  ", "a", f"{work.pages}页" if chinese else
                            f"xii, {work.pages} p.", "c", "图" if chinese else "ill.",
                            "d", f"{work.height}cm"))
    if work.series:
        record.add_field(_f("225", "2 ", "a", work.series))
    if serial:
        record.add_field(_f("326", "  ", "a", work.frequency))
    elif chinese and rng.random() < 0.35:
        topic = work.subjects[0].split("—")[0]
        summary = f"本书系统介绍了{topic}的基本概念、基本原理和主要方法。"
        record.add_field(_f("330", "  ", "a", summary))
    for heading in work.subjects:
        pairs = [x for code, value in _heading_parts(heading) for x in (code, value)]
        record.add_field(_f("606", "0 ", *pairs))
    record.add_field(_f("690", "  ", "a", work.clc, "v", "5"))
    if work.lcc:
        cls, _, item = work.lcc.partition(" ")
        record.add_field(_f("680", "  ", "a", cls, "b", item or None))
    for name in work.authors:
        if "," in name:
            surname, _, given = name.partition(", ")
            record.add_field(_f("701", " 1", "a", surname, "b", given, "4", "著"))
        else:
            role = work.responsibility[-2:] if work.responsibility.endswith(("主编", "编著")) \
                else work.responsibility[-1:]
            record.add_field(_f("701", " 0", "a", name, "A", _pinyin(name) if pinyin else None,
                                "4", role))
    record.add_field(_f("801", " 0", "a", "CN", "b", style.code, "c", entered))
    cls, item = _call_number(rng, style, work)
    location = _location(style, work)
    record.add_field(_f("905", "  ", "a", style.code, "c", location, "d", cls, "e", item))
    for barcode in _copies(rng, style, work):
        record.add_field(_f("906", "  ", "a", style.code, "b", barcode, "d", cls, "e", item))
    return record


def member_records(rng: random.Random, p: MemberPlan, works: list[Work]) -> list[Record]:
    style = _style(rng, p)
    if p.format == "unimarc":
        charset = "0120" if p.file_encoding == "gb18030" else "50  "
        return [unimarc_record(rng, style, w, charset) for w in works]
    return [marc21_record(rng, style, w) for w in works]


# --- the whole demo -----------------------------------------------------------------------

@dataclass(slots=True)
class DemoData:
    works: list[Work]
    records: dict[str, list[Record]]  # member id -> its catalogue

    @property
    def total_records(self) -> int:
        return sum(len(r) for r in self.records.values())


def generate(plans: list[MemberPlan], consortium: Consortium, seed: int = SEED,
             works: int = WORKS) -> DemoData:
    """Every member's catalogue, from ``seed`` alone."""
    rng = random.Random(seed)
    members = [(lib.id, lib.name) for lib in consortium.libraries]
    categories = {lib.id: lib.category for lib in consortium.libraries}
    all_works = make_works(rng, members, works)
    held = assign(rng, all_works, members, categories)
    records = {}
    for p in plans:
        member_rng = random.Random(f"{seed}:{p.id}")
        records[p.id] = member_records(member_rng, p, held[p.id])
    return DemoData(all_works, records)


def fingerprint(plans: list[MemberPlan], seed: int = SEED) -> str:
    """What decides the files' bytes: a cache made with another is stale."""
    text = json.dumps([GENERATOR_VERSION, seed, WORKS, [asdict(p) for p in plans]],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write(directory: Path, plans: list[MemberPlan], consortium: Consortium,
          seed: int = SEED) -> dict:
    """Generate and write every member's catalogue file and a manifest; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    data = generate(plans, consortium, seed)
    members = {}
    for p in plans:
        blob = b"".join(iso2709(r, p.file_encoding) for r in data.records[p.id])
        (directory / p.file_name).write_bytes(blob)
        members[p.id] = {"file": p.file_name, "format": p.format,
                         "file_encoding": p.file_encoding, "records": len(data.records[p.id])}
    manifest = {"fingerprint": fingerprint(plans, seed), "seed": seed,
                "works": len(data.works), "records": data.total_records, "members": members}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1), "utf-8")
    return manifest


def ensure(directory: Path, plans: list[MemberPlan], consortium: Consortium,
           seed: int = SEED, *, force: bool = False) -> tuple[dict, bool]:
    """The catalogue files in ``directory``, written unless an up-to-date copy is there.
    Returns the manifest and whether it was (re)generated."""
    path = directory / "manifest.json"
    if not force and path.is_file():
        try:
            manifest = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            manifest = {}
        if manifest.get("fingerprint") == fingerprint(plans, seed) and all(
                (directory / m["file"]).is_file() for m in manifest["members"].values()):
            return manifest, False
    return write(directory, plans, consortium, seed), True


def default_data_dir() -> Path:
    """instance/demo in a source checkout; else the user's cache directory."""
    if (REPO / "pyproject.toml").is_file():
        return REPO / "instance" / "demo"
    return Path.home() / ".cache" / "balis-broker" / "demo"


def main(argv: list[str] | None = None) -> int:
    """``python -m broker.demo.data``: rewrite config/demo.yaml from the plan."""
    import argparse

    parser = argparse.ArgumentParser(description="Rewrite config/demo.yaml from the plan.")
    parser.add_argument("--out", type=Path, default=DEMO_CONFIG)
    args = parser.parse_args(argv)
    consortium = load_members()
    text = render_config(consortium, plan(lib.id for lib in consortium.libraries))
    args.out.write_text(text, "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
