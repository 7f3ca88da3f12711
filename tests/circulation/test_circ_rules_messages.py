"""Rules as data (lookup, defaults, validation) and the bilingual message catalogue."""

from __future__ import annotations

import string
import unicodedata
from datetime import date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from backend.circulation.messages import (
    _CATALOGUE,
    ReasonCode,
    format_date,
    format_datetime,
    format_money,
    message,
)
from backend.circulation.model import DEFAULT_RULES, FALLBACK_RULE, CirculationRule, RuleSet
from circ_testkit import TZ

ALLOWED_PARAMETERS = {"due", "date", "amount", "limit", "branch", "detail"}


def test_rule_lookup_prefers_category_then_item_type() -> None:
    rules = RuleSet(rules=(
        CirculationRule(loan_period=1),
        CirculationRule(item_type="dvd", loan_period=2),
        CirculationRule(patron_category="student", loan_period=3),
        CirculationRule(patron_category="student", item_type="map", loan_period=4),
    ))
    assert rules.rule_for("student", "map").loan_period == 4
    assert rules.rule_for("student", "dvd").loan_period == 3
    assert rules.rule_for("adult", "dvd").loan_period == 2
    assert rules.rule_for("adult", "book").loan_period == 1
    assert rules.category_rule("student").loan_period == 3


def test_without_a_catch_all_the_fallback_rule_applies() -> None:
    rules = RuleSet(rules=(CirculationRule(patron_category="staff", loan_period=30),))
    assert rules.rule_for("adult", "book") is FALLBACK_RULE


def test_one_rule_per_category_and_item_type() -> None:
    with pytest.raises(ValidationError, match="repeated"):
        RuleSet(rules=(CirculationRule(), CirculationRule(max_loans=3)))


@pytest.mark.parametrize("field, value", [
    ("loan_period", -1), ("max_loans", -1), ("fine_per_day", "-1"), ("period_unit", "weeks"), ("surprise", 1),
    ("patron_category", ""),
])
def test_bad_rule_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        CirculationRule.model_validate({field: value})


def test_rules_round_trip_as_admin_editable_json() -> None:
    rules = RuleSet(currency="VND", hold_pickup_days=5)
    again = RuleSet.model_validate_json(rules.model_dump_json())
    assert again == rules and again.rule_for("student", "dvd").loan_period == 7


def test_rules_accept_plain_admin_input() -> None:
    rules = RuleSet.model_validate({"rules": [{"patron_category": "adult", "fine_per_day": "1500.50"}]})
    assert rules.rule_for("adult", "book").fine_per_day == Decimal("1500.50")


def test_defaults_are_sensible() -> None:
    keys = {rule.key for rule in DEFAULT_RULES}
    assert ("*", "*") in keys and ("student", "dvd") in keys
    for rule in DEFAULT_RULES:
        assert rule.max_renewals <= 3 and rule.loan_period <= 30


@pytest.mark.parametrize("code", list(ReasonCode))
def test_every_reason_has_both_languages(code: ReasonCode) -> None:
    vi, en = _CATALOGUE[code]
    assert vi.strip() and en.strip() and vi != en
    assert unicodedata.is_normalized("NFC", vi), "Vietnamese text must be composed (NFC)"
    used = {name for _, name, _, _ in string.Formatter().parse(vi + en) if name}
    assert used <= ALLOWED_PARAMETERS


def test_vietnamese_texts_carry_diacritics() -> None:
    accented = [vi for vi, _ in _CATALOGUE.values() if any(unicodedata.decomposition(char) for char in vi)]
    assert len(accented) == len(_CATALOGUE)
    assert "Mượn thành công" in message(ReasonCode.CHECKED_OUT, due=datetime(2024, 1, 29, 23, 59, tzinfo=TZ)).vi


def test_parameters_are_formatted_per_language() -> None:
    text = message(ReasonCode.FINES_OVER_LIMIT, amount=Decimal(60000))
    assert text.vi == "Bạn đang nợ 60.000 VND, vượt mức cho phép. Vui lòng thanh toán tại quầy thủ thư."
    assert text.en == "You owe 60,000 VND, more than the limit allows. Please pay at the desk."
    expired = message(ReasonCode.PATRON_EXPIRED, date=date(2023, 12, 31))
    assert "31/12/2023" in expired.vi and "31 Dec 2023" in expired.en


def test_money_and_dates() -> None:
    assert format_money(Decimal("1234567"), "VND", "vi") == "1.234.567 VND"
    assert format_money(Decimal("5.5"), "USD", "en") == "5.50 USD"
    assert format_money(Decimal("1234.5"), "EUR", "vi") == "1.234,50 EUR"
    assert format_date(date(2024, 2, 9), "en") == "9 Feb 2024"
    hourly = datetime(2024, 1, 15, 14, 30, tzinfo=TZ)
    assert format_datetime(hourly, "vi") == "14:30 15/01/2024"
    assert format_datetime(hourly, "en") == "15 Jan 2024, 14:30"


def test_missing_parameters_show_a_placeholder() -> None:
    assert "?" in message(ReasonCode.MAX_LOANS_REACHED).en


def test_messages_join() -> None:
    joined = message(ReasonCode.RETURNED) + message(ReasonCode.FINE_CHARGED, amount=Decimal(2000))
    assert joined.en == "Returned. Thank you! Overdue fine: 2,000 VND."
    assert joined.in_language("vi").startswith("Trả tài liệu thành công.")
