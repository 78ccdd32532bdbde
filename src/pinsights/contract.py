"""Pydantic models of the wire contract (``shared/contract/audience-insights.openapi.json`` and
``shared/contract/ad-accounts.openapi.json``).

The server and the client share these, so a field can only drift in one place; the engine and the
store take the insight types' names from here too, so there is one vocabulary of them. They mirror the
official v5 definitions: every property is optional where the contract leaves it optional, and
unknown extra fields from a newer upstream version are tolerated (``extra="allow"``) so an old client
keeps working against a newer server.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class AudienceInsightType(StrEnum):
    YOUR_TOTAL_AUDIENCE = "YOUR_TOTAL_AUDIENCE"
    YOUR_ENGAGED_AUDIENCE = "YOUR_ENGAGED_AUDIENCE"
    PINTEREST_TOTAL_AUDIENCE = "PINTEREST_TOTAL_AUDIENCE"


class AudienceDefinitionScope(StrEnum):
    PARTNER = "PARTNER"
    PINTEREST = "PINTEREST"


class AudienceDefinitionType(StrEnum):
    IMPRESSION_PLUS_ENGAGEMENT = "IMPRESSION_PLUS_ENGAGEMENT"
    ENGAGEMENT = "ENGAGEMENT"


class AudienceCategorySort(StrEnum):
    RATIO = "RATIO"


#: SPEC §3 "Audience definitions": which (scope, type) pair is which insight type, in serving order.
DEFINITION_OF_INSIGHT_TYPE: dict[
    AudienceInsightType, tuple[AudienceDefinitionScope, AudienceDefinitionType]
] = {
    AudienceInsightType.YOUR_TOTAL_AUDIENCE: (
        AudienceDefinitionScope.PARTNER,
        AudienceDefinitionType.IMPRESSION_PLUS_ENGAGEMENT,
    ),
    AudienceInsightType.YOUR_ENGAGED_AUDIENCE: (
        AudienceDefinitionScope.PARTNER,
        AudienceDefinitionType.ENGAGEMENT,
    ),
    AudienceInsightType.PINTEREST_TOTAL_AUDIENCE: (
        AudienceDefinitionScope.PINTEREST,
        AudienceDefinitionType.IMPRESSION_PLUS_ENGAGEMENT,
    ),
}
INSIGHT_TYPE_OF_DEFINITION = {pair: kind for kind, pair in DEFINITION_OF_INSIGHT_TYPE.items()}


def insight_type_of_definition(scope: str | None, type: str | None) -> AudienceInsightType | None:
    """The insight type an audience definition stands for (SPEC §3), or ``None`` if it has none."""
    scopes = {member.value: member for member in AudienceDefinitionScope}
    types = {member.value: member for member in AudienceDefinitionType}
    if scope not in scopes or type not in types:
        return None
    return INSIGHT_TYPE_OF_DEFINITION.get((scopes[scope], types[type]))


AD_ACCOUNT_ID_PATTERN = r"^\d+$"
AD_ACCOUNT_ID_MAX_LENGTH = 18
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class AudienceDemographicValue(_Model):
    key: str | None = None
    name: str | None = None
    ratio: float | None = None


class AudienceSubcategory(_Model):
    id: str | None = None
    key: str | None = None
    name: str | None = None
    ratio: float | None = None
    index: float | None = None


class AudienceCategory(_Model):
    id: str | None = None
    key: str | None = None
    name: str | None = None
    ratio: float | None = None
    index: float | None = None
    subcategories: list[AudienceSubcategory] | None = None


class AudienceDemographics(_Model):
    ages: list[AudienceDemographicValue] | None = None
    genders: list[AudienceDemographicValue] | None = None
    countries: list[AudienceDemographicValue] | None = None
    metros: list[AudienceDemographicValue] | None = None
    devices: list[AudienceDemographicValue] | None = None


class AudienceInsightsResponse(_Model):
    type: AudienceInsightType | None = None
    date: str | None = Field(default=None, pattern=DATE_PATTERN)
    size: int | None = None
    size_is_upper_bound: bool | None = None
    categories: list[AudienceCategory] | None = None
    demographics: AudienceDemographics | None = None


class AudienceDefinition(_Model):
    date: str | None = None
    scope: str | None = None
    type: str | None = None


class AudienceDefinitionResponse(_Model):
    items: list[AudienceDefinition] | None = None


class AudienceInsightCategoryCommon(_Model):
    id: str | None = None
    key: str | None = None
    name: str | None = None
    ratio: float | None = None
    index: float | None = None


class AudienceInsightCategoryArrayResponse(_Model):
    items: list[AudienceInsightCategoryCommon] | None = None


class AdAccount(_Model):
    """An ad account (``AdAccount``): ``id`` always; ``name``, ``country`` and ``currency`` where
    the server knows them (a pinsights server: from the snapshot its insights come from)."""

    id: str
    name: str | None = None
    country: str | None = None
    currency: str | None = None


#: The v5 ``Country`` enum (what ``AdAccount.country`` may be): ISO 3166-1 alpha-2 codes in upper
#: case, in the contract's order (``KP`` is not one). An ad account's input country must be one.
AD_ACCOUNT_COUNTRIES: tuple[str, ...] = (
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI",
    "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML",
    "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC",
    "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH",
    "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA",
    "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR",
    "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN",
    "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
)  # fmt: skip
#: The v5 ``Currency`` enum (what ``AdAccount.currency`` may be), in the contract's order (``UNK``:
#: unknown).
AD_ACCOUNT_CURRENCIES: tuple[str, ...] = (
    "UNK", "USD", "GBP", "CAD", "EUR", "AUD", "NZD", "SEK", "ILS", "CHF", "HKD", "JPY", "SGD", "KRW",
    "NOK", "DKK", "PLN", "RON", "HUF", "CZK", "BRL", "MXN", "ARS", "CLP", "COP", "INR", "TRY",
)  # fmt: skip


class AdAccountsPage(_Model):
    """One page of ``ad_accounts/list``; ``bookmark`` asks for the next one (None: the last)."""

    items: list[AdAccount]
    bookmark: str | None = None


class Error(_Model):
    code: int
    message: str


class OauthAccessTokenRequest(_Model):
    grant_type: str
    scope: str | None = None


class OauthAccessTokenResponse(_Model):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str
    response_type: str | None = None
