"""Check digits and structure of Chinese personal identifiers (JR/T 0171-2020 class C2).

Shared by the sample core bank's data generator (`gateway.corebank.synthetic`) and
the response-masking detector, so that what one produces the other recognises:

* Resident identity numbers, GB 11643-1999: 6-digit administrative division code
  (GB/T 2260), birth date ``YYYYMMDD``, 3-digit sequence (odd for men, even for
  women) and a check character computed with ISO 7064 MOD 11-2 (``X`` for 10).
  MOD 11-2 detects every single-character error and every transposition of two
  adjacent characters.
* Payment card numbers, ISO/IEC 7812: the last digit is a Luhn (mod 10) check
  digit. Luhn detects every single-digit error and every adjacent transposition
  except ``09`` ↔ ``90``.
* Mobile numbers: 11 digits starting with a carrier's 3-digit network prefix
  (MIIT numbering plan).

The validators are deliberately liberal where a detector must not miss a real
number (a lower-case ``x`` check character is accepted) and strict everywhere the
algorithm is defined. The 15-digit resident numbers issued before 1999 carry no
check digit and are not recognised here.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

RESIDENT_ID_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
"""ISO 7064 MOD 11-2 weights 2^(17-i) mod 11 for the 17 payload digits
(7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2); the check character has weight 1."""

PROVINCE_CODES: Final = frozenset(
    {
        "11", "12", "13", "14", "15",  # 北京 天津 河北 山西 内蒙古
        "21", "22", "23",  # 辽宁 吉林 黑龙江
        "31", "32", "33", "34", "35", "36", "37",  # 上海 江苏 浙江 安徽 福建 江西 山东
        "41", "42", "43", "44", "45", "46",  # 河南 湖北 湖南 广东 广西 海南
        "50", "51", "52", "53", "54",  # 重庆 四川 贵州 云南 西藏
        "61", "62", "63", "64", "65",  # 陕西 甘肃 青海 宁夏 新疆
        "71", "81", "82", "83",  # 台湾 香港 澳门; 83: residence permits of Taiwan residents
    }
)  # fmt: skip
"""First two digits of GB/T 2260 codes (provincial level) that resident numbers carry."""

MOBILE_PREFIXES: Final[dict[str, str]] = {
    **dict.fromkeys(
        ("134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158",
         "159", "172", "178", "182", "183", "184", "187", "188", "195", "197", "198"),
        "China Mobile",
    ),
    **dict.fromkeys(
        ("130", "131", "132", "145", "155", "156", "166", "175", "176", "185", "186", "196"),
        "China Unicom",
    ),
    **dict.fromkeys(
        ("133", "149", "153", "173", "177", "180", "181", "189", "190", "191", "193", "199"),
        "China Telecom",
    ),
    "192": "China Broadnet",
    **dict.fromkeys(("162", "165", "167", "170", "171"), "MVNO"),
}  # fmt: skip
"""Network prefixes of mainland mobile numbers and the carrier that holds each."""

_DIGITS: Final = re.compile(r"[0-9]+")
_RESIDENT_ID: Final = re.compile(r"[0-9]{17}[0-9Xx]")


def _ascii_digits(s: str) -> bool:
    # str.isdigit() also accepts non-ASCII digits; these identifiers are ASCII only.
    return _DIGITS.fullmatch(s) is not None


def resident_id_check_char(payload: str) -> str:
    """The GB 11643 check character for 17 payload digits."""
    if len(payload) != 17 or not _ascii_digits(payload):
        raise ValueError("a resident ID payload is exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(payload, RESIDENT_ID_WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def resident_id(region_code: str, birth: date, sequence: int) -> str:
    """Compose a resident ID number: region, birth date, sequence (1..999), check char."""
    if len(region_code) != 6 or not _ascii_digits(region_code):
        raise ValueError("the region code is 6 ASCII digits (GB/T 2260)")
    if region_code[:2] not in PROVINCE_CODES:
        raise ValueError(f"no province has code {region_code[:2]}")
    if not 1 <= sequence <= 999:
        raise ValueError("the sequence number is 1..999")
    payload = f"{region_code}{birth:%Y%m%d}{sequence:03d}"
    return payload + resident_id_check_char(payload)


def resident_id_birth_date(s: str) -> date | None:
    """The birth date a resident ID number encodes, or None if it is not a date."""
    if len(s) < 14 or not _ascii_digits(s[6:14]):
        return None
    try:
        return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return None


def resident_id_gender(s: str) -> str:
    """``"M"`` or ``"F"`` from the parity of the sequence number (GB 11643 §4.3)."""
    return "M" if int(s[16]) % 2 == 1 else "F"


def resident_id_valid(s: str, *, today: date | None = None) -> bool:
    """True for an 18-character resident ID number with a known province, a real
    birth date from 1900 up to `today`, and a correct check character."""
    if _RESIDENT_ID.fullmatch(s) is None or s[:2] not in PROVINCE_CODES:
        return False
    born = resident_id_birth_date(s)
    if born is None or born.year < 1900 or born > (today or date.today()):
        return False
    return resident_id_check_char(s[:17]) == s[17].upper()


def luhn_check_digit(payload: str) -> str:
    """The Luhn digit to append to `payload` (ISO/IEC 7812-1 Annex B)."""
    if not payload or not _ascii_digits(payload):
        raise ValueError("a Luhn payload is one or more ASCII digits")
    total = 0
    # Rightmost payload digit is doubled: it sits next to the check digit.
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


def luhn_valid(s: str) -> bool:
    """True for two or more ASCII digits whose last digit is their Luhn check digit."""
    if len(s) < 2 or not _ascii_digits(s):
        return False
    return luhn_check_digit(s[:-1]) == s[-1]


def card_number(prefix: str, body: str, length: int) -> str:
    """A card number of `length` digits: issuer prefix, `body` (padded or cut to fit),
    and the Luhn check digit."""
    room = length - 1 - len(prefix)
    if room < 0 or not _ascii_digits(prefix) or not _ascii_digits(body):
        raise ValueError("prefix and body are ASCII digits that fit the length")
    payload = prefix + body.rjust(room, "0")[-room:] if room else prefix
    return payload + luhn_check_digit(payload)


def card_number_valid(s: str) -> bool:
    """A 12-19 digit Luhn-valid number: the range ISO/IEC 7812 allows for a PAN."""
    return 12 <= len(s) <= 19 and luhn_valid(s)


def mobile_carrier(s: str) -> str | None:
    """The carrier holding a mainland mobile number's prefix, or None."""
    if len(s) != 11 or not _ascii_digits(s):
        return None
    return MOBILE_PREFIXES.get(s[:3])


def mobile_valid(s: str) -> bool:
    """True for an 11-digit mainland mobile number with a carrier's prefix."""
    return mobile_carrier(s) is not None
