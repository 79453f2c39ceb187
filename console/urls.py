from django.contrib import admin
from django.urls import include, path

from console import health, logins_views, views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/find/", views.find, name="console_find"),
    path("admin/customer/<str:msisdn>/", views.customer, name="console_customer"),
    path("admin/security/", logins_views.security, name="console_security"),
    path("admin/security/verify/", logins_views.verify, name="console_otp_verify"),
    path("admin/security/enrol/", logins_views.enrol, name="console_otp_enrol"),
    path("admin/", admin.site.urls),
    path("api/", include("ledger.urls")),
    path("api/", include("reconciliation.urls")),
    path("", include("catalog.urls")),
]

# An unreachable database anywhere (a middleware included) answers 503 with Retry-After, not 500.
handler500 = "console.views.server_error"
