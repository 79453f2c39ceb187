from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.storefront, name="storefront"),
    path("pay/<slug:slug>/", views.pay, name="pay"),
]
