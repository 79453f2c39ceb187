"""System admin: users, groups, the audit trail, and django-q2's tasks in the unfold theme."""

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success
from unfold.decorators import action, display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin
from console.kernel.audit import AuditAction, audit_record
from console.models import AuditEvent

admin.site.index_title = "Dashboard"
admin.site.site_title = "Tillbook"

# Re-register the third-party admins on unfold's ModelAdmin so every page looks the same.
for model in (User, Group, Schedule, Success, Failure, OrmQ):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ("username", "first_name", "last_name", "display_roles", "is_active", "last_login")
    list_filter = ("is_active", "is_superuser", "groups")

    @display(description="Roles")
    def display_roles(self, obj):
        names = [g.name for g in obj.groups.all()]
        return ", ".join(names) or ("Superuser" if obj.is_superuser else "—")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass


@admin.register(Schedule)
class ScheduleAdmin(q_admin.ScheduleAdmin, ModelAdmin):
    @display(description="last run")
    def get_last_run(self, obj):  # django-q2 labels it "last_run"
        return super().get_last_run(obj)


@admin.register(Success)
class SuccessAdmin(q_admin.TaskAdmin, ModelAdmin):
    paginator = InfinitePaginator
    show_full_result_count = False


@admin.register(Failure)
class FailureAdmin(q_admin.FailAdmin, ModelAdmin):
    paginator = InfinitePaginator
    show_full_result_count = False


@admin.register(OrmQ)
class QueueAdmin(q_admin.QueueAdmin, ModelAdmin):
    pass


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Read-only for everyone: the trail is written by services, never by hand."""

    list_display = ("at", "actor_label", "action", "source", "object_type", "object_repr", "reason")
    list_filter = ("action", "source", "object_type")
    search_fields = ("object_id", "object_repr", "actor_label", "reason")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    paginator = InfinitePaginator
    show_full_result_count = False
    list_filter_submit = True
    list_select_related = ("actor",)


# ---------------------------------------------------------------------------------------------
# Logins: lockouts (django-axes) and second-factor devices (django-otp), superusers only.
# ---------------------------------------------------------------------------------------------
class SuperuserOnlyMixin:
    """Visible and usable by superusers only, whatever permissions a group was given."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AccessAttempt)
class AccessAttemptAdmin(SuperuserOnlyMixin, ModelAdmin):
    """Failed logins per username + address; "Unlock" lets a locked-out login try again now."""

    list_display = ("username", "ip_address", "failures_since_start", "display_locked", "attempt_time")
    list_filter = ("attempt_time",)
    search_fields = ("username", "ip_address")
    fields = ("username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time")
    readonly_fields = fields
    actions = ["unlock"]

    @display(description="Locked", boolean=True)
    def display_locked(self, obj):
        return obj.failures_since_start >= settings.AXES_FAILURE_LIMIT

    def has_unlock_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    @action(description="Unlock selected logins", permissions=["unlock"])
    def unlock(self, request, queryset):
        unlocked = 0
        with transaction.atomic():
            for attempt in queryset.select_for_update():
                audit_record(
                    actor=request.user,
                    action=AuditAction.LOGIN_UNLOCKED,
                    obj=attempt,
                    before={"failures": attempt.failures_since_start},
                    after={"username": attempt.username, "ip_address": attempt.ip_address},
                )
                attempt.delete()
                unlocked += 1
        plural = "s" if unlocked != 1 else ""
        self.message_user(request, f"Unlocked {unlocked} login{plural}.", messages.SUCCESS)


# django-otp's own device admins can show keys and recovery codes: replaced by lists that show
# neither. Removing a device is how a superuser helps someone who lost their phone.
for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(SuperuserOnlyMixin, ModelAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__username",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields
    list_select_related = ("user",)


@admin.register(StaticDevice)
class StaticDeviceAdmin(SuperuserOnlyMixin, ModelAdmin):
    list_display = ("user", "name", "display_codes_left", "last_used_at")
    search_fields = ("user__username",)
    fields = ("user", "name", "created_at", "last_used_at")
    readonly_fields = fields
    list_select_related = ("user",)

    @display(description="Recovery codes left")
    def display_codes_left(self, obj):
        return obj.token_set.count()
