"""The shared kernel: money, the Nairobi clock, phones, M-Pesa code shapes, the audit trail,
errors, plausible ranges, redaction, uploaded files and the admin base classes.

Every app may import it; it imports no app (an import-linter contract in pyproject.toml keeps it
so). It holds code, not models: `AuditEvent` is a `console` model and `console.models` imports no
app either.
"""
