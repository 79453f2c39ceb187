"""The ModelAdmin every Tillbook admin builds on, and the helpers that show stored values.

unfold checks that each dotted permission named in an `@action` exists by querying the
Permission table. On a database that is not migrated yet (the first `manage.py migrate` on a new
machine) that query fails and stops every management command. Our checks class skips that
check until the table exists; on a migrated database it runs unchanged.

No stored value may break a page. A timestamp before year 1 or after 9999 (PostgreSQL holds
both) cannot be loaded into Python at all, and one within a day of those limits overflows when
shown in Nairobi time; either used to make every page that lists the row answer 500. Times are
therefore loaded tolerantly (see ``tolerate_out_of_range_times``): such a value arrives as the
nearest time two days inside Python's range, which every page can show, and ``nairobi`` and
``money`` fall back to the raw value instead of raising.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from unfold.admin import ModelAdmin as UnfoldModelAdmin
from unfold.checks import UnfoldModelAdminChecks

from console.kernel.money import money

__all__ = ["ModelAdmin", "ReadOnlyAdminMixin", "money", "nairobi"]


class TillbookModelAdminChecks(UnfoldModelAdminChecks):
    def _check_unfold_action_permission_methods(self, obj):
        try:
            return super()._check_unfold_action_permission_methods(obj)
        except DatabaseError:
            return []  # no permission table yet: migrate creates it, the next check runs


class ModelAdmin(UnfoldModelAdmin):
    checks_class = TillbookModelAdminChecks

    def history_view(self, request, object_id, extra_context=None):
        """The audit trail is the history: Django's admin log is never written by the services,
        so its page would always be empty. Send the reader to this record's audit events, if
        they may see both the record and the audit trail."""
        from console.models import AuditEvent  # the kernel holds no models; console.models imports no app

        obj = self.get_object(request, unquote(object_id))
        trail = self.admin_site._registry.get(AuditEvent)
        if obj is None or not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        if trail is None or not trail.has_view_permission(request):
            raise PermissionDenied
        url = reverse("admin:console_auditevent_changelist")
        query = urlencode({"object_type": self.opts.label_lower, "object_id": object_id})
        return HttpResponseRedirect(f"{url}?{query}")


class ReadOnlyAdminMixin:
    """For records only services write (entries, callbacks, imports, the audit trail)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def nairobi(value) -> str:
    """A datetime as staff read it: Nairobi time, ``22 Nov 2026 05:46``; "—" when empty.

    A value that cannot be shown in Nairobi time (out of range, naive, not a datetime) is shown
    as it is rather than breaking the page.
    """
    if not value:
        return "—"
    try:
        return timezone.localtime(value).strftime("%d %b %Y %H:%M")
    except (OverflowError, ValueError, TypeError, AttributeError):
        return str(value)


# ---------------------------------------------------------------------------------------------
# Loading times Python cannot hold
# ---------------------------------------------------------------------------------------------
# Two days inside Python's range: a time this close to it still converts to any time zone.
FIRST_SHOWABLE = dt.datetime(1, 1, 3)
LAST_SHOWABLE = dt.datetime(9999, 12, 29, 23, 59, 59, 999999)
_installed = False


def showable(value: dt.datetime) -> dt.datetime:
    """``value`` moved inside [FIRST_SHOWABLE, LAST_SHOWABLE] (in its own zone) when it is outside."""
    if value.year not in (1, 9999):  # the cheap test first: this runs for every loaded time
        return value
    first, last = FIRST_SHOWABLE.replace(tzinfo=value.tzinfo), LAST_SHOWABLE.replace(tzinfo=value.tzinfo)
    return first if value < first else last if value > last else value


def _psycopg2_caster(default, first, last):
    def cast(value, cursor):
        if value is None:
            return None
        try:
            loaded = default(value, cursor)
        except ValueError:  # "… BC" or a year past 9999: no Python datetime holds it
            return first if value.endswith("BC") else last
        return showable(loaded) if isinstance(loaded, dt.datetime) else loaded

    return cast


def _sqlite_datetime(raw: bytes):
    try:
        value = parse_datetime(raw.decode())
    except ValueError:  # year 0 or similar, written by hand
        return FIRST_SHOWABLE
    if value is None:  # not a time Django reads, such as year 10000
        return LAST_SHOWABLE if raw[:5].isdigit() else FIRST_SHOWABLE
    return showable(value)


def tolerate_out_of_range_times() -> None:
    """Load every timestamp the database holds without raising (idempotent, process-wide).

    PostgreSQL (psycopg2): timestamptz, timestamp and date values Python cannot hold load as the
    nearest showable one; SQLite: datetime columns likewise. Ordinary values load unchanged.
    """
    global _installed
    if _installed:
        return
    _installed = True
    if any(db["ENGINE"].endswith("sqlite3") for db in settings.DATABASES.values()):
        import django.db.backends.sqlite3.base  # noqa: F401 - registers Django's converter, replaced next

        sqlite3.register_converter("datetime", _sqlite_datetime)
        sqlite3.register_converter("timestamp", _sqlite_datetime)
    try:
        import psycopg2.extensions as pg
    except ImportError:  # an SQLite-only install
        return
    utc_first, utc_last = FIRST_SHOWABLE.replace(tzinfo=dt.UTC), LAST_SHOWABLE.replace(tzinfo=dt.UTC)
    for default, first, last in (
        (pg.PYDATETIMETZ, utc_first, utc_last),
        (pg.PYDATETIME, FIRST_SHOWABLE, LAST_SHOWABLE),
        (pg.PYDATE, dt.date.min, dt.date.max),
    ):
        caster = _psycopg2_caster(default, first, last)
        pg.register_type(pg.new_type(default.values, f"TILLBOOK_{default.name}", caster))


# Every process imports the admin at start-up (django.setup autodiscovers it): web, worker, commands.
tolerate_out_of_range_times()
