from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from console import health, logins_views, views

static_lazy = lazy(static, str)  # resolved per request: the manifest may not exist at import

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Browsers ask for /favicon.ico whatever the page links: send them to the one icon.
    path("favicon.ico", RedirectView.as_view(url=static_lazy("console/favicon.svg"), permanent=True)),
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
# A refused page in the console's style, naming the roles that may use it.
handler403 = "console.views.permission_denied"
