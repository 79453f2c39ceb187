from django.urls import path

from ledger import api

app_name = "ledger"

urlpatterns = [
    path("stk-push/", api.stk_push, name="stk_push"),
    path("orders/<str:reference>/", api.order_status, name="order_status"),
    path("orders/<str:reference>/retry/", api.order_retry, name="order_retry"),
    path("callbacks/payhero/<str:token>/", api.payhero_callback, name="payhero_callback"),
    path("callbacks/daraja/<str:token>/", api.daraja_callback, name="daraja_callback"),
]
