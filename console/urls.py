from django.contrib import admin
from django.urls import include, path

from console import logins_views, views

urlpatterns = [
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
