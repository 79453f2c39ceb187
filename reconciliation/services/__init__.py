"""Reconciliation services: every write that matters (receipts, claims, matching, day close).

receipts.py  till receipts from C2B, statements and pasted till SMS
claims.py    WhatsApp messages and the claims found in them; agent decisions
matcher.py   claims against receipts, set-based
close.py     the daily close figures and sign-off
exports.py   the claims export contract
"""
