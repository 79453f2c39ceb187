"""System admin: users, groups, the audit trail, and django-q2's tasks in the unfold theme."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success
from unfold.decorators import display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.paginator import InfinitePaginator

from console.admin_base import ModelAdmin, ReadOnlyAdminMixin
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
    pass


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

    list_display = ("at", "actor_label", "action", "object_type", "object_repr", "reason")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "object_repr", "actor_label", "reason")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    paginator = InfinitePaginator
    show_full_result_count = False
    list_filter_submit = True
    list_select_related = ("actor",)
