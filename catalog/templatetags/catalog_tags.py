from django import template

from console.kernel.money import ksh as _ksh

register = template.Library()


@register.filter
def ksh(amount):
    """{{ bundle.price|ksh }} -> 'Ksh 1,500'."""
    if amount in (None, ""):
        return ""
    return _ksh(amount)
