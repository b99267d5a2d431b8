"""The Qt desktop interface of Credits Desk.

Everything that imports PySide6 lives here; ``domain``, ``store`` and ``services``
never do (``tests/ui/test_ui_layers.py`` keeps it that way). Screens ask the
services for small frozen dataclasses through :mod:`credits_desktop.ui.workers`,
which runs every database call off the GUI thread.
"""
