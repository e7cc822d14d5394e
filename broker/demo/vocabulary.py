"""The demo's vocabulary: what its made-up works are made of.

Subject areas with CLC classes and headings, real publishers with their ISBN registrant
codes, personal names, Western topics with their LCC and LCSH, journal title forms, and
which areas each kind of member favours. Data only; ``broker.demo.works`` draws from it.
"""

from __future__ import annotations


def _words(text: str) -> list[str]:
    return text.split()


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
EN_JOURNAL_PLACES = {"Elsevier": "Amsterdam", "Springer": "New York", "Wiley": "Hoboken, N.J.",
                     "Taylor & Francis": "Abingdon", "Oxford University Press": "Oxford",
                     "Cambridge University Press": "Cambridge"}
# A Chinese serial's CLC class by its subject area.
SERIAL_CLASSES = {"G": "G64", "F": "F", "K": "K", "I": "I", "D": "D", "TP": "TP", "H": "H",
                  "J": "J", "R": "R", "S": "S", "P": "P", "TN": "TN", "O": "O"}
