"""Make the screenshots in docs/screenshots/ from the real application.

    .venv/bin/python docs/make_screenshots.py [--db URL]

Without --db it fills a fresh demo database in a temporary folder (300 accounts,
four months, seed 1), signs in as the demo manager, and saves the main window with
an account's usage charts and the dashboard. Runs offscreen; no display needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from credits_desktop.bootstrap import prepare_database
from credits_desktop.services.accounts import list_staff
from credits_desktop.services.catalog import ensure_catalog
from credits_desktop.services.demo import generate_demo
from credits_desktop.store.database import Database
from credits_desktop.store.schema import upgrade
from credits_desktop.ui.main_window import MainWindow

OUT = Path(__file__).resolve().parent / "screenshots"


def wait(condition: Callable[[], object], ms: int = 20_000) -> None:
    """Run the event loop until ``condition`` holds (or ``ms`` pass)."""
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: bool(condition()) and loop.quit())
    timer.start(20)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    timer.stop()


def settle(ms: int) -> None:
    wait(lambda: False, ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database address (default: a fresh demo database)")
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db
        if url is None:
            url = f"sqlite:///{Path(tmp) / 'demo.sqlite3'}"
            fresh = Database.open(url)
            upgrade(fresh.engine)
            fresh.write(ensure_catalog)
            generate_demo(fresh, accounts=300, months=4, seed=1)
            fresh.close()
        db = prepare_database(url, is_default_demo=False)
        manager = next(a for a in list_staff(db) if a.role.value == "manager")
        window = MainWindow(db, manager)
        window.resize(1400, 900)
        window.show()
        wait(lambda: window.model.rowCount() > 0 and not window.model.is_loading)
        window.search.setText("bl")
        settle(500)
        wait(lambda: window.model.rowCount() > 0 and not window.model.is_loading)
        detail = window.open_account(window.model.account(0))
        wait(lambda: detail.summary is not None and not detail.is_loading)
        detail.lists.setCurrentIndex(3)
        wait(lambda: detail.usage is not None and detail.usage.data is not None)
        settle(800)
        OUT.mkdir(exist_ok=True)
        window.grab().save(str(OUT / "account-usage.png"))
        window.open_worklist("dashboard")
        settle(4_000)
        window.grab().save(str(OUT / "dashboard.png"))
        window.close()
        window.worker.wait_for_done()
        db.close()
    app.quit()
    print(f"Screenshots written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
