"""``{% load phones %}{{ msisdn|phone }}``: a number as staff read it (0712 345 678)."""

from django import template

from console.kernel.phones import phone_display

register = template.Library()


@register.filter
def phone(msisdn):
    return phone_display(msisdn or "")
