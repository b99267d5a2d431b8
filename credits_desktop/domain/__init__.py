"""Domain rules of Credits Desk: billing periods, credit grants, charges, refunds, permissions.

Pure Python with no I/O: the store and the services feed plain values in and get plans
(which grant to draw from, where a refund goes, whether a role may act) back out, so every
business rule can be tested without a database or a screen.
"""
