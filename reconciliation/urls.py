from django.urls import path

from reconciliation import api

app_name = "reconciliation"

urlpatterns: list = [
    path("callbacks/c2b/<str:token>/confirmation", api.c2b_confirmation, name="c2b_confirmation"),
    path("callbacks/c2b/<str:token>/validation", api.c2b_validation, name="c2b_validation"),
]
