"""Who may see which part of the console pages that span several models.

"Find anything" and the customer timeline gather rows from several admins on one page. Each
section of them is shown only to a user who may view that model in its own admin, so these
pages never reveal more than the admin would: a catalogue manager finds nothing here, a support
agent sees no callbacks. The callback inbox is for superusers only (raw gateway bodies carry
customers' numbers and names), whatever permissions a group holds.
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

SUPERUSER = "superuser"

# section -> the permission that opens it (SUPERUSER: superusers only)
FIND_SECTIONS: dict[str, str] = {
    "orders": "ledger.view_order",
    "claims": "reconciliation.view_claim",
    "receipts": "reconciliation.view_tillreceipt",
    "callbacks": SUPERUSER,
}

TIMELINE_SECTIONS: dict[str, str] = {
    "order": "ledger.view_order",
    "claim": "reconciliation.view_claim",
    "receipt": "reconciliation.view_tillreceipt",
    "message": "reconciliation.view_whatsappmessage",
}


def allowed(user, perm: str) -> bool:
    if not (user.is_active and user.is_staff):
        return False
    if perm == SUPERUSER:
        return user.is_superuser
    return user.has_perm(perm)


def visible_sections(user, sections: dict[str, str]) -> frozenset[str]:
    """The sections of `sections` that `user` may see."""
    return frozenset(name for name, perm in sections.items() if allowed(user, perm))


def can_find(user) -> bool:
    """Whether "Find anything" and the customer timeline have anything to show this user."""
    return bool(visible_sections(user, FIND_SECTIONS) or visible_sections(user, TIMELINE_SECTIONS))


# ---------------------------------------------------------------------------------------------
# A refused page says who may use it: the permission it needs, and the roles that hold it
# ---------------------------------------------------------------------------------------------
_PERM_RE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def permissions_needed(request, exception=None) -> list[str]:
    """The permissions the refused request needed, as far as the URL tells ([] if unknown).

    A view may name it (``raise PermissionDenied("ledger.view_account")``); otherwise an admin
    page needs its model's view permission, and a button (an unfold action) the permissions
    its ``@action`` lists.
    """
    named = str(exception or "")
    if _PERM_RE.match(named):
        return [named]
    model_admin = _model_admin_for(request.path_info)
    if model_admin is None:
        return []
    opts = model_admin.opts

    def perm(action: str) -> str:
        return f"{opts.app_label}.{action}_{opts.model_name}"

    if not (request.user.has_perm(perm("view")) or request.user.has_perm(perm("change"))):
        return [perm("view")]
    try:
        name = resolve(request.path_info).url_name or ""
    except Resolver404:
        return []
    prefix = f"{opts.app_label}_{opts.model_name}_"
    if not name.startswith(prefix):
        return []
    what = name[len(prefix) :]
    if what in ("add", "change", "delete"):
        return [perm(what)]
    wanted = getattr(getattr(model_admin, what, None), "allowed_permissions", None) or []
    return [p if "." in p else perm(p) for p in wanted]


def _model_admin_for(path: str):
    """The ModelAdmin whose pages ``path`` is under (its own and its custom URLs), or None."""
    try:
        root = reverse("admin:index")
    except NoReverseMatch:
        return None
    if not path.startswith(root):
        return None
    rest = path[len(root) :]
    for model, model_admin in admin.site._registry.items():
        if rest.startswith(f"{model._meta.app_label}/{model._meta.model_name}/"):
            return model_admin
    return None


def roles_with(perms: list[str]) -> list[str]:
    """The roles (groups) that hold every one of ``perms``, by name; [] for none or unknown."""
    if not perms:
        return []
    groups = Group.objects.all()
    for p in perms:
        app_label, codename = p.split(".", 1)
        groups = groups.filter(permissions__content_type__app_label=app_label, permissions__codename=codename)
    return sorted(set(groups.values_list("name", flat=True)))
