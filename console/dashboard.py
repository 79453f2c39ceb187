"""The admin index: what each role needs to see first."""


def dashboard_callback(request, context):
    return context
