from django.shortcuts import render


def storefront(request):
    return render(request, "catalog/storefront.html", {})


def pay(request, slug):
    return render(request, "catalog/pay.html", {})
