from django.conf import settings


def shop(request):
    """Shop facts the storefront templates show (till, support WhatsApp)."""
    return {
        "SHOP_NAME": settings.SHOP_NAME,
        "TILL_NUMBER": settings.TILL_NUMBER,
        "TILL_NAME": settings.TILL_NAME,
        "SUPPORT_WHATSAPP": settings.SUPPORT_WHATSAPP,
    }
