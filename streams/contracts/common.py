"""Types shared by the contracts: ids, money, currencies, channels."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
"""A source-system identifier: non-empty, no surrounding whitespace."""


def _fixed_point(value: Decimal) -> Decimal:
    """``1E+3`` -> ``1000``, ``-0.00`` -> ``0.00``: the form the published schemas describe."""
    return value.copy_abs() if value.is_zero() else Decimal(format(value, "f"))


Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=2, allow_inf_nan=False),
    AfterValidator(_fixed_point),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]{1,16}(\.[0-9]{1,2})?$",
         "description": "decimal amount, at most 2 decimal places"},
        mode="serialization",
    ),
]  # fmt: skip
"""An amount to the cent, never negative (a refund is its own event)."""

UnitPrice = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=4, allow_inf_nan=False),
    AfterValidator(_fixed_point),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,4})?$",
         "description": "decimal unit price, at most 4 decimal places"},
        mode="serialization",
    ),
]  # fmt: skip

# ISO 4217 active codes (2024), so that a typo is rejected rather than counted apart.
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD
    IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
    MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED
    VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL""".split()  # noqa: SIM905
)


def _iso_currency(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


Currency = Annotated[
    str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$"), AfterValidator(_iso_currency)
]


class Channel(StrEnum):
    """Where a lead, an order or a marketing spend comes from."""

    WEB = "web"
    REFERRAL = "referral"
    EVENT = "event"
    OUTBOUND = "outbound"
    INBOUND = "inbound"
    PARTNER = "partner"
    PAID_SEARCH = "paid_search"
    SOCIAL = "social"
    EMAIL = "email"
    OTHER = "other"
