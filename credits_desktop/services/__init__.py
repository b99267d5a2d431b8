"""The operations staff perform and the questions screens ask, usable without Qt.

Every write is one transaction that validates its input, checks the acting staff
member's permission, writes ledger and audit rows, and is idempotent under its
idempotency key. Results are small frozen dataclasses, never ORM objects.
"""
