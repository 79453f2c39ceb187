"""Template filters for console pages: a phone as staff read it (0712 345 678)."""

from django import template

from console.kernel.phones import phone_display

register = template.Library()
register.filter("phone", phone_display)
