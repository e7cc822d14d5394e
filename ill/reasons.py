"""ISO 18626 ReasonUnfilled codes, with the words staff and readers see."""

from __future__ import annotations

# ISO 18626 (2021) code list "ReasonUnfilled".
REASONS_UNFILLED: dict[str, tuple[str, str]] = {
    "NotHeld": ("本馆无此馆藏", "not held"),
    "NotOnShelf": ("架上无书（在借或错架）", "not on shelf"),
    "NotAvailableForILL": ("该文献不提供馆际互借", "not available for ILL"),
    "NonCirculating": ("该文献不外借（如工具书、阅览本）", "non-circulating"),
    "PoorCondition": ("文献破损，不宜寄送", "poor condition"),
    "PolicyProblem": ("不符合本馆借阅政策", "policy problem"),
}


def parse_reason(reason: str | None) -> tuple[str | None, str | None]:
    """(ISO code or None, text): a code, its Chinese label, or ``CODE: free text``."""
    if not reason or not reason.strip():
        return None, None
    reason = reason.strip()
    head, _, rest = reason.partition(":")
    if head.strip() in REASONS_UNFILLED:
        code = head.strip()
        return code, rest.strip() or REASONS_UNFILLED[code][0]
    for code, (label, english) in REASONS_UNFILLED.items():
        if reason in (label, english):
            return code, label
    return None, reason[:500]


def reason_label(code: str | None) -> str:
    return REASONS_UNFILLED[code][0] if code in REASONS_UNFILLED else "其他原因"
