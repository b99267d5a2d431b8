"""Credits Desk: the staff desktop application for customers' AI credits."""

__version__ = "0.1.0"
