"""Content-Security-Policy per path: the storefront strict, the admin as wide as unfold needs.

settings.CONTENT_SECURITY_POLICY is the policy of every page (the storefront, the API, errors):
scripts from our static files or with this response's nonce only, no eval, no inline styles.

Admin pages (``/admin/``) get two additions, and only there:

* ``script-src 'unsafe-eval'``: unfold's bundled Alpine.js evaluates its ``x-data``/``x-show``/
  ``@click`` attribute expressions with ``new Function()``, which a policy without 'unsafe-eval'
  blocks (the sidebar, dropdowns, filters and tabs stop working). Alpine's CSP build would avoid
  it, but unfold ships the standard build and its templates use expressions the CSP build cannot
  read. Inline scripts stay forbidden: our own code lives in static files (console/static/console/).
* ``style-src 'unsafe-inline'``: unfold's templates carry ``style=`` attributes and an inline
  ``<style>`` of theme colours. No nonce in style-src, or browsers would ignore 'unsafe-inline'.

A view can still set its own policy with django-csp's decorators (``csp_update`` …): those win.
"""

from __future__ import annotations

from csp.constants import NONCE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts

ADMIN_PREFIX = "/admin/"
ADMIN_REPLACE = {
    "script-src": [SELF, UNSAFE_EVAL, NONCE],
    "style-src": [SELF, UNSAFE_INLINE],
}


class PathCSPMiddleware(CSPMiddleware):
    """django-csp's middleware with the admin's additions on ``/admin/`` paths."""

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        if parts.config is None and request.path_info.startswith(ADMIN_PREFIX):
            parts.replace = {**ADMIN_REPLACE, **(parts.replace or {})}
        return parts
