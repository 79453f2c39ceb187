from django.conf import settings
from django.db import models

from console.kernel.audit_actions import AuditAction, AuditSource


class AuditEvent(models.Model):
    """One decision a person or a task made, written in the same transaction as the change.

    `before`/`after` hold the fields that changed, so an auditor can replay who did what.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(
        "actor name", max_length=150, blank=True, help_text="'system' for background tasks"
    )
    action = models.CharField(max_length=64, db_index=True, choices=AuditAction.choices)
    source = models.CharField(
        max_length=16, blank=True, db_index=True, choices=AuditSource.choices, help_text="Blank for a person"
    )
    object_type = models.CharField(max_length=64)
    object_id = models.CharField("object ID", max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"
