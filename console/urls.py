from django.contrib import admin
from django.urls import include, path

from console import views

urlpatterns = [
    path("admin/find/", views.find, name="console_find"),
    path("admin/customer/<str:msisdn>/", views.customer, name="console_customer"),
    path("admin/", admin.site.urls),
    path("api/", include("ledger.urls")),
    path("api/", include("reconciliation.urls")),
    path("", include("catalog.urls")),
]
