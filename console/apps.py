from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "console"
    verbose_name = "System"

    def ready(self):
        # Registers the settings checks (callback tokens) with Django's system check framework.
        # Connects the lockout audit to django-axes' user_locked_out signal.
        from console import (
            checks,  # noqa: F401
            logins,  # noqa: F401
        )
