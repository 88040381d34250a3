"""{{ amount|money:currency }}: '£45.30', '₹1,200.00', 'CHF 12.00'. Decimal in, never float."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()

SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$", "INR": "₹", "AUD": "A$", "KES": "KSh "}


@register.filter
def money(value: Decimal | None, currency: str = "") -> str:
    if value is None:
        return ""
    amount = f"{Decimal(value).quantize(Decimal('0.01')):,}"
    symbol = SYMBOLS.get(currency)
    if symbol is None:
        return f"{currency} {amount}".strip()
    return f"-{symbol}{amount[1:]}" if amount.startswith("-") else f"{symbol}{amount}"
