"""Deterministic synthetic PatSnap data for the sandbox.

Everything here is a pure function of its arguments: tests import :func:`patent_object` to compute
exactly the per-patent objects the sandbox server puts into ``data``. Choices are drawn from sha256
digests (not :mod:`random`) so the data is the same on every Python version and platform.

Shapes follow the vendor's examples, including their quirks: codes that are sometimes JSON numbers and
sometimes strings, dates as integers, CJK/Japanese/Portuguese text, and fields that only CN patents
carry.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

IdKind = Literal["patent_id", "patent_number"]
EndpointCode = Literal["P022", "P032", "P031", "P026"]
Lang = Literal["cn", "en"]

ID_KINDS: tuple[IdKind, ...] = ("patent_id", "patent_number")
ENDPOINT_CODES: tuple[EndpointCode, ...] = ("P022", "P032", "P031", "P026")
LANGS: tuple[Lang, ...] = ("cn", "en")

# Values starting with this never have data, whatever the hash says (documented magic value).
NO_DATA_PREFIX = "NODATA"
# One patent in NO_DATA_ONE_IN has no data for a given endpoint.
NO_DATA_ONE_IN = 10

# Fixed, arbitrary namespace: patent ids are uuid5(namespace, patent number), stable forever.
PATENT_ID_NAMESPACE = uuid.UUID("5a2d6c1e-8f43-4b7e-9d0a-3c5e7f1b2a90")

T = TypeVar("T")
PatentObject = dict[str, Any]


# Every patent the sandbox answers takes a dozen or more draws, thousands of patents a second: the
# counter's bytes are made once, and a digest's first 8 bytes are read without slicing a copy.
_COUNTER_BYTES = tuple(counter.to_bytes(8, "big") for counter in range(64))
_FIRST_U64 = struct.Struct(">Q").unpack_from
_sha256 = hashlib.sha256


class _Draws:
    """A reproducible stream of choices derived from sha256(seed, counter)."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode("utf-8")
        self._counter = 0

    def _next(self) -> int:
        """The first 8 bytes of sha256(seed + counter as 8 big-endian bytes), as an int."""
        counter = self._counter
        self._counter = counter + 1
        suffix = _COUNTER_BYTES[counter] if counter < 64 else counter.to_bytes(8, "big")
        return int(_FIRST_U64(_sha256(self._seed + suffix).digest())[0])

    def below(self, bound: int) -> int:
        return self._next() % bound

    def between(self, low: int, high: int) -> int:
        """An int in [low, high], both ends included."""
        return low + self._next() % (high - low + 1)

    def coin(self) -> bool:
        return self._next() % 2 == 1

    def pick(self, options: Sequence[T]) -> T:
        return options[self._next() % len(options)]

    def sample(self, options: Sequence[T], count: int) -> list[T]:
        pool = list(options)
        return [pool.pop(self._next() % len(pool)) for _ in range(min(count, len(pool)))]

    def date(self, first_year: int = 2010, last_year: int = 2023) -> int:
        """A date as the vendor sends it: an int like 20211207."""
        year = first_year + self._next() % (last_year - first_year + 1)
        return year * 10000 + (1 + self._next() % 12) * 100 + 1 + self._next() % 28


# ----------------------------------------------------------------------------------------- identities

# (country, weight, number of digits, leading digits, kind codes); CN dominates as in real traffic.
_NUMBER_FORMATS: tuple[tuple[str, int, int, str, tuple[str, ...]], ...] = (
    ("CN", 4, 9, "1", ("A", "B")),
    ("US", 2, 8, "1", ("B1", "B2")),
    ("EP", 1, 7, "3", ("A1", "B1")),
    ("JP", 1, 7, "6", ("B2",)),
    ("BR", 1, 12, "1120", ("A2",)),
    ("KR", 1, 9, "10", ("B1",)),
)


_NAMESPACE_BYTES = PATENT_ID_NAMESPACE.bytes


def patent_id_for_number(pn: str) -> str:
    """The sandbox's PatSnap patent id for a patent number (uuid5, so stable across runs)."""
    # str(uuid.uuid5(PATENT_ID_NAMESPACE, pn)) without building a UUID object on the way: the same
    # text, for less, at thousands of patents a second.
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + pn.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def number_for_patent_id(patent_id: str) -> str:
    """A plausible patent number such as ``CN110650438A`` derived from a hash of the patent id."""
    draws = _Draws(f"pn:{patent_id}")
    weighted = [fmt for fmt in _NUMBER_FORMATS for _ in range(fmt[1])]
    country, _, digits, lead, kinds = draws.pick(weighted)
    tail_digits = digits - len(lead)
    tail = str(draws.below(10**tail_digits)).zfill(tail_digits)
    return f"{country}{lead}{tail}{draws.pick(kinds)}"


def resolve(kind: IdKind, value: str) -> tuple[str, str]:
    """``(pn, patent_id)`` for a requested value of the given kind."""
    if kind == "patent_number":
        return value, patent_id_for_number(value)
    if kind == "patent_id":
        return number_for_patent_id(value), value
    raise ValueError(f"kind must be 'patent_id' or 'patent_number', got {kind!r}")


def is_cn(pn: str) -> bool:
    """Fields the vendor marks 'only CN jurisdiction' exist only for these patents."""
    return pn.upper().startswith("CN")


# ----------------------------------------------------------------------------------------- P022 SEIC

# level-1 number -> (Chinese, English)
_SEIC_LV1: dict[str, tuple[str, str]] = {
    "1": ("新一代信息技术产业", "New generation information technology industry"),
    "2": ("高端装备制造产业", "High-end equipment manufacturing industry"),
    "3": ("新材料产业", "New materials industry"),
    "4": ("生物产业", "Biological industry"),
    "5": ("新能源汽车产业", "New energy vehicle industry"),
    "6": ("新能源产业", "New energy industry"),
    "7": ("节能环保产业", "Energy saving and environmental protection industry"),
    "8": ("数字创意产业", "Digital creative industry"),
}
# (level-2 number, Chinese, English); the level-1 number is the part before the dot.
_SEIC_LV2: tuple[tuple[str, str, str], ...] = (
    ("1.1", "下一代信息网络产业", "Next generation information network industry"),
    ("1.2", "电子核心产业", "Electronic core industry"),
    ("1.3", "新兴软件和新型信息技术服务", "Emerging software and new information technology services"),
    ("1.5", "人工智能", "Artificial intelligence"),
    ("2.1", "智能制造装备产业", "Intelligent manufacturing equipment industry"),
    ("2.2", "航空装备产业", "Aviation equipment industry"),
    ("3.2", "先进有色金属材料", "Advanced non-ferrous metal materials"),
    ("4.1", "生物医药产业", "Biomedical industry"),
    ("5.2", "新能源汽车装置、配件制造", "New energy vehicle devices and parts manufacturing"),
    ("6.3", "太阳能产业", "Solar energy industry"),
    ("7.2", "先进环保产业", "Advanced environmental protection industry"),
    ("8.1", "数字创意技术设备制造", "Digital creative technology equipment manufacturing"),
)


def _seic_no(draws: _Draws, text: str) -> str | int | float:
    # The vendor's example sends 1.1 as a number while its schema says string: send both.
    if draws.coin():
        return text
    return float(text) if "." in text else int(text)


def _seic_object(draws: _Draws, pn: str, patent_id: str, lang: Lang) -> PatentObject:
    def level(number: str, names: tuple[str, str]) -> dict[str, Any]:
        return {"seic_no": _seic_no(draws, number), "seic_desc": names[0] if lang == "cn" else names[1]}

    entries = []
    for lv2_no, lv2_cn, lv2_en in draws.sample(_SEIC_LV2, draws.between(1, 3)):
        lv1_no = lv2_no.split(".")[0]
        entries.append(
            {"seic_lv1": level(lv1_no, _SEIC_LV1[lv1_no]), "seic_lv2": level(lv2_no, (lv2_cn, lv2_en))}
        )
    return {"pn": pn, "lang": lang, "patent_id": patent_id, "seic_classification": entries}


# ----------------------------------------------------------------------------------------- P032 award

# (award name, categories)
_AWARDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("中国专利奖", ("发明专利", "实用新型专利")),
    ("大连市专利奖", ("发明专利",)),
    ("广东专利奖", ("发明专利", "外观设计专利")),
    ("European Inventor Award", ("Popular", "Industry", "Research", "SMEs", "Lifetime achievement")),
    ("Young Inventors Prize", ("Young Inventors",)),
    ("全国発明表彰", ("発明賞", "恩賜発明賞")),
)
_CN_LEVELS = ("金奖", "银奖", "优秀奖", "一等奖", "二等奖")
_CN_REFERRERS = (
    "国家知识产权局",
    "大连市知识产权局",
    "广东省知识产权局",
    "北京市知识产权局",
    "中华全国专利代理师协会",
)


def _award_object(draws: _Draws, pn: str, patent_id: str, lang: Lang) -> PatentObject:
    awards: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for _ in range(draws.between(1, 3)):
        # Draw every field whatever the jurisdiction, so the stream (and the records) depend on the
        # patent id only; CN-only fields are then dropped for other patents.
        name, categories = draws.pick(_AWARDS)
        category, year = draws.pick(categories), draws.between(2010, 2023)
        level, referrer = draws.pick(_CN_LEVELS), draws.pick(_CN_REFERRERS)
        # The vendor's example sends 2018 as a number while its schema says string: send both.
        session: int | str = year if draws.coin() else str(year)
        award: dict[str, Any] = {"category": category, "award_name": name}
        if is_cn(pn):
            award["award_level"] = level
        award["award_session"] = session
        if is_cn(pn):
            award["award_referrer"] = referrer
        if (name, year) not in seen:  # one award per name and session, as in the real data
            seen.add((name, year))
            awards.append(award)
    return {"pn": pn, "patent_id": patent_id, "patent_award_data": awards}


# ----------------------------------------------------------------------------------------- P031 customs

# (authority code, contact, products)
_CUSTOMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("JP", "原田雅章知財事務所", ("電荷制御剤", "半導体装置")),
    ("CN", "北京集佳知识产权代理有限公司", ("锂离子电池", "智能手机")),
    ("CN", "柳沈律师事务所", ("医疗器械", "LED照明灯具")),
    ("BR", "Dannemann Siemsen Advogados", ("Módulo fotovoltaico", "Válvula de controle")),
    ("US", "Baker McKenzie LLP", ("LED lighting fixture",)),
    ("DE", "Bardehle Pagenberg Partnerschaft mbB", ("Elektrowerkzeug",)),
)
_RECORD_STATUSES = ("生效", "失效", "生效")
_APPROVAL_OPINIONS = ("已审批、核准", "已审批、变更", "不予核准")


def _customs_object(draws: _Draws, pn: str, patent_id: str, lang: Lang) -> PatentObject:
    # Derived from the draws, not from pn, so a patent's records do not depend on how it was asked for.
    digits = str(draws.between(1_000_000, 9_999_999))
    records: list[dict[str, Any]] = []
    for country, contact, products in draws.sample(_CUSTOMS, draws.between(1, 3)):
        start = draws.date(2010, 2020)
        end = start + draws.between(1, 9) * 10000  # same day, 1-9 years later
        records.append(
            {
                "contact": contact,
                "country": country,
                "product": draws.pick(products),
                "end_date": end,
                "start_date": start,
                "record_number": f"P{digits}-{start}-{end}",
                "record_status": draws.pick(_RECORD_STATUSES),
                "approval_opinion": draws.pick(_APPROVAL_OPINIONS),
            }
        )
    return {"pn": pn, "patent_id": patent_id, "patent_customs_record_data": records}


# ----------------------------------------------------------------------------------------- P026 legal

# (PRS code, description, reference authority)
_INPADOC: tuple[tuple[str, str, str], ...] = (
    ("B350", "ATUALIZACAO DE INFORMACOES NO PORTAL [CODIGO 15.35 RPI]", "BR"),
    ("PB01", "Publication", "CN"),
    ("SE01", "Entry into force of request for substantive examination", "CN"),
    ("GR01", "Patent grant", "CN"),
    ("CF01", "Termination of patent right due to non-payment of annual fee", "CN"),
    ("AS", "ASSIGNMENT", "US"),
    ("17P", "Request for examination filed", "EP"),
    ("A621", "Written request for application examination", "JP"),
)
# (event code, description); codes that look like numbers are sometimes sent as JSON numbers.
_OFFICIAL: tuple[tuple[str, str], ...] = (
    ("1.3", "Notificação - Fase Nacional - PCT"),
    ("16.1", "Concessão de Patente ou Certificado de Adição de Invenção"),
    ("3.1", "Publicação do Pedido de Patente ou de Certificado de Adição de Invenção"),
    ("C06", "发明专利申请公布"),
    ("C10", "实质审查的生效"),
    ("C14", "授权"),
)
_CN_LEGAL_STATUSES = ("公开", "实质审查", "授权", "专利权的终止", "权利转移")
_CN_EVENT_OTHERS = ("法律状态其他信息", "IPC(主分类): H04L 29/06", "登记生效日: 20210315")


def _event_code(draws: _Draws, code: str) -> str | float:
    looks_numeric = code.replace(".", "", 1).isdigit()
    return float(code) if looks_numeric and draws.coin() else code


def _legal_object(draws: _Draws, pn: str, patent_id: str, lang: Lang) -> PatentObject:
    inpadoc: list[dict[str, Any]] = [
        {"event_code": code, "event_date": draws.date(), "event_desc": desc, "ref_country_code": country}
        for code, desc, country in draws.sample(_INPADOC, draws.between(1, 3))
    ]
    official: list[dict[str, Any]] = []
    for code, desc in draws.sample(_OFFICIAL, draws.between(0, 2)):
        event: dict[str, Any] = {
            "event_vol": str(draws.between(2000, 2800)),
            "event_code": _event_code(draws, code),
            "event_date": draws.date(),
            "event_desc": desc,
        }
        others, legal_status = draws.pick(_CN_EVENT_OTHERS), draws.pick(_CN_LEGAL_STATUSES)
        if is_cn(pn):
            event["event_others"] = others
            event["event_legal_status"] = legal_status
        official.append(event)
    inpadoc.sort(key=lambda event: event["event_date"])
    official.sort(key=lambda event: event["event_date"])
    return {
        "pn": pn,
        "patent_id": patent_id,
        "patsnap_legal_data": {"inpadoc_legal_data": inpadoc, "official_legal_data": official},
    }


# ----------------------------------------------------------------------------------------- entry point

_BUILDERS: dict[str, Callable[[_Draws, str, str, Lang], PatentObject]] = {
    "P022": _seic_object,
    "P032": _award_object,
    "P031": _customs_object,
    "P026": _legal_object,
}


def has_no_data_marker(value: str) -> bool:
    return value.upper().startswith(NO_DATA_PREFIX)


def patent_object(code: EndpointCode, kind: IdKind, value: str, lang: Lang = "en") -> PatentObject | None:
    """The per-patent object the sandbox returns in ``data`` for one requested value; None = no data.

    Records are seeded by the canonical patent id, so asking by number or by the matching id gives the
    same records, except that the CN-only fields follow the ``pn`` in the response (for a patent id the
    ``pn`` is synthetic, see :func:`number_for_patent_id`).
    """
    builder = _BUILDERS.get(code)
    if builder is None:
        raise ValueError(f"code must be one of {', '.join(ENDPOINT_CODES)}, got {code!r}")
    if lang not in LANGS:
        raise ValueError(f"lang must be 'cn' or 'en', got {lang!r}")
    if has_no_data_marker(value):
        return None
    pn, patent_id = resolve(kind, value)
    draws = _Draws(f"{code}:{patent_id}")
    if draws.below(NO_DATA_ONE_IN) == 0:
        return None
    return builder(draws, pn, patent_id, lang)


# ----------------------------------------------------------------------------------------- cached

#: How many objects :func:`cached_patent_object` keeps (P026's, the largest, take about 1.3 KB each).
PATENT_CACHE_SIZE = 16384


@functools.lru_cache(maxsize=PATENT_CACHE_SIZE)
def cached_patent_object(
    code: EndpointCode, kind: IdKind, value: str, lang: Lang = "en"
) -> PatentObject | None:
    """:func:`patent_object` from a bounded LRU cache: the server's source of ``data``.

    A patent asked again (a retried batch, a rerun, one list through several tasks) is not drawn
    again: the data is a pure function of the arguments, so a cached object is the one a fresh draw
    gives. The object is shared by every answer that uses it: read it, never change it.
    """
    return patent_object(code, kind, value, lang)
