from django import template

from console.kernel.money import ksh

register = template.Library()

# {{ bundle.price|ksh }} -> "Ksh 1,500" (empty for no price)
register.filter("ksh", ksh)
