from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("ledger.urls")),
    path("api/", include("reconciliation.urls")),
    path("", include("catalog.urls")),
]
