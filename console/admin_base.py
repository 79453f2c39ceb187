"""The ModelAdmin every Tillbook admin builds on.

unfold checks that each dotted permission named in an `@action` exists by querying the
Permission table. On a database that is not migrated yet (the first `manage.py migrate` on a new
machine) that query fails and stops every management command. Our checks class skips that
check until the table exists; on a migrated database it runs unchanged.
"""

from django.db import DatabaseError
from django.utils import timezone
from unfold.admin import ModelAdmin as UnfoldModelAdmin
from unfold.checks import UnfoldModelAdminChecks


class TillbookModelAdminChecks(UnfoldModelAdminChecks):
    def _check_unfold_action_permission_methods(self, obj):
        try:
            return super()._check_unfold_action_permission_methods(obj)
        except DatabaseError:
            return []  # no permission table yet: migrate creates it, the next check runs


class ModelAdmin(UnfoldModelAdmin):
    checks_class = TillbookModelAdminChecks


class ReadOnlyAdminMixin:
    """For records only services write (entries, callbacks, imports, the audit trail)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def nairobi(value) -> str:
    """A datetime as staff read it: Nairobi time, ``22 Nov 2026 05:46``; "—" when empty."""
    return timezone.localtime(value).strftime("%d %b %Y %H:%M") if value else "—"


def money(value, empty: str = "—") -> str:
    """KES with thousands separators and cents: ``1,500.00``."""
    return empty if value is None else f"{value:,.2f}"
