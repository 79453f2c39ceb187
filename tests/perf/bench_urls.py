"""The console's URLs plus the serving benchmark's baseline: a view that inserts one row and
returns 200 (same server, same middleware, same persistent connection)."""

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from console.urls import handler403, handler500  # noqa: F401
from console.urls import urlpatterns as console_urls


@csrf_exempt
def insert_one_row(request):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_insert (body) VALUES (%s)", [request.body.decode()])
    return JsonResponse({"ResultCode": 0, "ResultDesc": "Accepted"})


urlpatterns = [path("bench/insert/", insert_one_row), *console_urls]
