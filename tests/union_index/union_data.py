"""Small hand-made harvests for the union index tests, with their overlap worked out by hand.

Three libraries, five editions (clusters):

    b1 数据结构 (ISBN)          a
    b2 Computer networks (ISBN) a b
    b3 红楼梦 (ISBN)             a b c   (c catalogued it twice: two records, one ISBN)
    b4 中国经济发展研究 (no ISBN) a
    b5 中國經濟史 / 中国经济史     b c     (traditional at b, simplified at c: one work key)

so a has 4 clusters, b 3, c 2 (3 records); shared a-b 2, a-c 1, b-c 2; a's share of b is
2/4, b's of a 2/3, c's of b 2/2. Clusters held by one library: 2 (b1, b4), by two: 2 (b2,
b5), by three: 1 (b3). Only a holds something alone (b1, b4).
"""

from __future__ import annotations

import json
from pathlib import Path

from broker.kernel.config import Consortium, loads
from marc import Holding, Record


def book(library: str, number: str, title: str, author: str, year: int,
         isbn: str | None = None, *, call: str = "X/1", publisher: str = "出版社",
         subjects: tuple[str, ...] = ()) -> Record:
    return Record(
        id=f"{library}:{number}", format="unimarc", title=title, authors=(author,),
        responsibility=author, publisher=publisher, place="北京", year=year,
        language="chi", material_type="book", isbns=(isbn,) if isbn else (),
        subjects=subjects, call_numbers=(call,),
        holdings=(Holding(library, "中文书库", call, f"{library}-{number}", "available"),))


HARVESTS: dict[str, list[Record]] = {
    "a": [
        book("a", "1", "数据结构", "严蔚敏", 2007, "9787302147510", call="TP311.12/5",
             publisher="清华大学出版社", subjects=("数据结构",)),
        book("a", "2", "Computer networks", "Tanenbaum, Andrew S.", 2011, "9780132126953",
             call="TP393/T1", publisher="Prentice Hall"),
        book("a", "3", "红楼梦", "曹雪芹", 2008, "9787020065875", call="I242.4/3"),
        book("a", "4", "中国经济发展研究", "王建国", 2015, call="F124/45",
             subjects=("经济发展",)),
    ],
    "b": [
        book("b", "10", "Computer networks", "Tanenbaum, Andrew S.", 2011, "9780132126953",
             call="TP393/12"),
        book("b", "11", "红楼梦", "曹雪芹", 2008, "9787020065875", call="I242/9"),
        book("b", "12", "中國經濟史", "張偉", 1985, call="F129/7"),
    ],
    "c": [
        book("c", "20", "红楼梦", "曹雪芹", 2008, "9787020065875", call="I242.4/1"),
        book("c", "21", "红楼梦", "曹雪芹", 2008, "9787020065875", call="I242.4/1:2"),
        book("c", "22", "中国经济史", "张伟", 1985, call="F129/8"),
    ],
}
SHARED = {("a", "b"): 2, ("b", "a"): 2, ("a", "c"): 1, ("c", "a"): 1, ("b", "c"): 2,
          ("c", "b"): 2}
CLUSTERS = {"a": 4, "b": 3, "c": 2}
UNIQUE = {"a": 2, "b": 0, "c": 0}
HOLDERS = {1: 2, 2: 2, 3: 1}


def write_jsonl(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(json.dumps(r.as_dict(), ensure_ascii=False) + "\n"
                            for r in records), "utf-8")
    return path


def write_harvests(folder: Path) -> list[Path]:
    """One ``ID.jsonl`` per library, as ``balis harvest --format jsonl`` names them."""
    return [write_jsonl(folder / f"{library}.jsonl", records)
            for library, records in HARVESTS.items()]


def consortium_of(*libraries: dict, max_records: int = 50) -> Consortium:
    """A consortium of ``libraries`` (libraries-file entries), validated as a file is."""
    return loads(json.dumps({
        "consortium": {"name": "测试联盟", "max_selected": 10},
        "defaults": {"timeout": 10, "max_records": max_records},
        "categories": [{"id": "test", "name": "测试图书馆"}],
        "libraries": list(libraries),
    }, ensure_ascii=False))


def local_member(library_id: str, path: Path, **connector) -> dict:
    return {"id": library_id, "name": f"{library_id}联合目录", "category": "test",
            "connector": {"protocol": "local", "path": str(path), **connector}}


def member(library_id: str, protocol: str, url: str, **connector) -> dict:
    return {"id": library_id, "name": f"{library_id}图书馆", "category": "test",
            "connector": {"protocol": protocol, "url": url, **connector}}
