"""Forms of the desk's money pages and admin actions; the services check everything again."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from opd.core.models import Clinic, User

from .models import PaymentMethod


class PaymentForm(forms.Form):
    method = forms.ChoiceField(
        choices=PaymentMethod.choices, widget=forms.RadioSelect, initial=PaymentMethod.CASH
    )
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    terminal_reference = forms.CharField(
        max_length=64, required=False, label="Card terminal reference", help_text="For a card payment."
    )
    insurer = forms.CharField(max_length=120, required=False, help_text="For an insurance payment.")
    claim_reference = forms.CharField(max_length=64, required=False, help_text="For an insurance payment.")


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Leave empty for the most the clinic's cancellation policy allows.",
    )
    method = forms.ChoiceField(
        choices=[("", "As the last payment"), *PaymentMethod.choices], required=False, label="Paid back by"
    )
    reason = forms.CharField(max_length=500)


class VoidForm(forms.Form):
    reason = forms.CharField(max_length=500)


class DeskUserField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        name = obj.get_full_name()
        return f"{name} ({obj.username})" if name else obj.username


class CashUpForm(forms.Form):
    # Querysets per user, set in __init__.
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none(), empty_label=None)
    desk = DeskUserField(queryset=User.objects.none(), empty_label=None, label="Desk user")
    day = forms.DateField(
        label="Day (clinic time)", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args, clinics, desks, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics
        self.fields["desk"].queryset = desks
