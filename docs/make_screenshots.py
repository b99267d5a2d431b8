"""Make the screenshots of docs/user-guide.md (and README.md) from the real application.

    .venv/bin/python docs/make_screenshots.py [--out DIR]

It fills a fresh demo database in a temporary folder (300 accounts, four months, seed 1,
history ending at the start of the current hour), then drives real main windows through
their public methods, as three staff members in turn:

* Dana (support) finds an account, refunds two failed charges and asks for a partial
  refund of a charge that did not fail (above her rights: it becomes a request);
* Fay (finance) adjusts the account's purchased credits, opens "Reverse…" on that
  adjustment, previews an incident refund, reads the audit log and builds the finance
  report;
* Morgan (manager) opens the approvals queue on Dana's request, and the dashboard.

Every shot waits for its data with real conditions (the worker's jobs, the models'
loading state, the dialogs' previews), never with a fixed pause, and the script stops
with a message if one does not arrive (or if a dialog does not say what the guide says
it does). Windows are 1280x800; the application is started as ``credits-desktop`` starts it, in
English (United States), in the light palette, with times in UTC so the pictures do not
depend on the machine. The demo data, the accounts picked and the steps are the same on
every run within the same hour; the demo's history ends at the start of that hour, so
the figures shift from one hour to the next, and the changes the script makes carry the
time they are made.

The run never touches the user's own settings, keyring or demo database: the settings
folders and the keyring backend point into the temporary folder, which is deleted at the
end. Runs offscreen (no display needed) in well under two minutes. Each file written is
printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import (
    QDeadlineTimer,
    QEventLoop,
    QItemSelectionModel,
    QLocale,
    QMessageLogContext,
    QSettings,
    Qt,
    QTimer,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import QApplication, QComboBox, QTableView, QWidget
from sqlalchemy import case, func, select

from credits_desktop.bootstrap import prepare_database
from credits_desktop.domain.permissions import Verdict
from credits_desktop.services.account_charts import RangePreset
from credits_desktop.services.accounts import list_staff
from credits_desktop.services.catalog import ensure_catalog
from credits_desktop.services.demo import generate_demo
from credits_desktop.services.operations import Actor
from credits_desktop.services.previews import ChangePreview
from credits_desktop.store.database import Database
from credits_desktop.store.models import Account, Refund, UsageCharge
from credits_desktop.store.schema import upgrade
from credits_desktop.ui.account_detail import AccountDetail
from credits_desktop.ui.adjust_dialog import AdjustDialog
from credits_desktop.ui.app import configure_application
from credits_desktop.ui.approvals_view import ApprovalsView
from credits_desktop.ui.audit_view import AuditView
from credits_desktop.ui.dashboard_view import DashboardView
from credits_desktop.ui.failures_view import FailuresView
from credits_desktop.ui.finance_report_view import FinanceReportView
from credits_desktop.ui.i18n import install_translations
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.refund_dialog import RefundDialog
from credits_desktop.ui.reverse_dialog import ReverseDialog
from credits_desktop.ui.theme import apply_theme

# Every settings, data and cache folder of the run, and the demo database (removed at the end).
WORK = Path(tempfile.gettempdir()) / "credits-desk-screenshots"
DEFAULT_OUT = Path(__file__).resolve().parent / "screenshots"
WINDOW_SIZE = (1280, 800)
DIALOG_WIDTH = 760
TIMEOUT_MS = 60_000
DEMO_ACCOUNTS, DEMO_MONTHS, DEMO_SEED = 300, 4, 1

# The account tabs' lists, by position (Grants, Charges, Ledger, Usage).
GRANTS, CHARGES, LEDGER, USAGE = range(4)
# The demo's outage hours (UTC) of image generation; see services.demo_world.
INCIDENT_HOURS = (13, 18)


class ScreenshotError(RuntimeError):
    """Something the screenshots wait for did not happen."""


def isolate() -> None:
    """Keep the run off the user's settings and keyring, and off the machine's clock zone.

    Called before the QApplication exists: Qt reads the platform then, QSettings and
    platformdirs read the XDG folders when used, and keyring picks its backend on first
    use."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        os.environ[name] = str(WORK / name.lower())
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    # Local times in the pictures are UTC, whatever the machine's zone.
    os.environ["TZ"] = "UTC"
    if hasattr(time, "tzset"):
        time.tzset()


# What the offscreen platform says each time a window is shown; nothing to act on.
OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints()"


def qt_message(_kind: QtMsgType, _context: QMessageLogContext, message: str) -> None:
    """Qt's warnings to stderr, as usual, except the offscreen platform's noise."""
    if OFFSCREEN_NOISE not in message:
        print(message, file=sys.stderr)


# -- waiting and saving ----------------------------------------------------------------------


def wait_until(condition: Callable[[], object], what: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Run the event loop until ``condition`` holds; ScreenshotError after ``timeout_ms``."""
    if condition():
        return
    loop = QEventLoop()
    deadline = QDeadlineTimer(timeout_ms)
    poll = QTimer()
    poll.setInterval(10)

    def check() -> None:
        if condition() or deadline.hasExpired():
            loop.quit()

    poll.timeout.connect(check)
    poll.start()
    loop.exec()
    poll.stop()
    if not condition():
        raise ScreenshotError(f"Gave up waiting for {what} after {timeout_ms / 1000:.0f} s.")


def flush() -> None:
    """Let layouts and repaints queued by the data just shown happen before a grab."""
    for _ in range(3):
        QApplication.processEvents()


class Shots:
    """Saves grabs of widgets into the output folder, printing each file."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[Path] = []

    def save(self, widget: QWidget, name: str, ready: Callable[[], object] | None = None,
             what: str = "the data") -> None:
        """Grab ``widget`` into ``name`` once ``ready`` holds, and still holds after the
        repaints it set off (which may start another read)."""
        for _ in range(5):
            if ready is not None:
                wait_until(ready, what)
            flush()
            if ready is None or ready():
                break
        else:
            raise ScreenshotError(f"{what} kept changing; {name} was not taken.")
        path = self.out / name
        if not widget.grab().save(str(path), "PNG"):
            raise ScreenshotError(f"Could not write {path}.")
        self.written.append(path)
        print(path, flush=True)


# -- the demo database and what to show of it ------------------------------------------------


def make_demo(url: str) -> None:
    db = Database.open(url)
    try:
        upgrade(db.engine)
        db.write(ensure_catalog)
        # The start of the hour: runs within the same hour get the very same data.
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        generate_demo(db, accounts=DEMO_ACCOUNTS, months=DEMO_MONTHS, seed=DEMO_SEED, now=now)
    finally:
        db.close()


def pick_account(db: Database) -> tuple[int, str, str]:
    """(id, name, email) of an active account with plan and purchased credits left and
    unrefunded failed charges both in its current billing period and before it."""
    refunded = select(Refund.charge_id)
    recent = func.sum(case((UsageCharge.occurred_at >= Account.period_start, 1), else_=0))
    stmt = (
        select(Account.id, Account.name, Account.owner_email)
        .join(UsageCharge, UsageCharge.account_id == Account.id)
        .where(Account.status == "active", Account.plan_balance > 0,
               Account.purchased_balance > 0, UsageCharge.status == "failed",
               UsageCharge.credits > 0, UsageCharge.id.not_in(refunded))
        .group_by(Account.id, Account.name, Account.owner_email, Account.purchased_balance)
        .having(recent >= 2, func.count() > recent)
        .order_by(Account.purchased_balance.desc(), Account.id)
        .limit(1)
    )
    row = db.read(lambda s: s.execute(stmt).first())
    if row is None:
        raise ScreenshotError("The demo data has no account to show the refunds with.")
    return int(row[0]), str(row[1]), str(row[2])


def incident_window(db: Database) -> tuple[datetime, datetime]:
    """The demo's outage: the afternoon with the most failed image generations."""
    stmt = select(UsageCharge.occurred_at).where(
        UsageCharge.feature_code == "ad_image", UsageCharge.status == "failed",
        UsageCharge.credits > 0)
    times = db.read(lambda s: list(s.scalars(stmt)))
    first, last = INCIDENT_HOURS
    days = Counter(t.astimezone(UTC).date() for t in times
                   if first <= t.astimezone(UTC).hour < last)
    if not days:
        raise ScreenshotError("The demo data has no failed image generation.")
    day = min(days, key=lambda d: (-days[d], d))
    start = datetime(day.year, day.month, day.day, first, tzinfo=UTC)
    return start, start + timedelta(hours=last - first)


# -- windows ---------------------------------------------------------------------------------


@contextmanager
def main_window(db: Database, actor: Actor) -> Iterator[MainWindow]:
    """A shown main window signed in as ``actor``, its first page of accounts loaded;
    closed (its queries finished) afterwards."""
    window = MainWindow(db, actor)
    window.resize(*WINDOW_SIZE)
    window.show()
    # No reading again on a colleague's change (there is none, but the window's own
    # changes would be noticed a second later, at a moment that depends on the machine).
    window.watcher.stop()
    try:
        wait_until(lambda: window.model.rowCount() > 0 and not window.model.is_loading,
                   "the accounts list")
        yield window
    finally:
        window.close()
        window.worker.wait_for_done()
        window.deleteLater()
        flush()


def open_account(window: MainWindow, account_id: int) -> AccountDetail:
    detail = window.open_account_id(account_id)
    wait_until(lambda: detail.summary is not None and not detail.is_loading, "the account")
    # Room for the lists: the accounts table keeps a few rows.
    window.splitter.setSizes([150, 10_000])
    return detail


def show_list(detail: AccountDetail, index: int) -> None:
    detail.lists.setCurrentIndex(index)
    wait_until(lambda: not detail.is_loading, "the account's lists")


def set_combo(combo: QComboBox, data: object) -> None:
    """Choose the item of ``combo`` whose data is ``data``."""
    index = combo.findData(data)
    if index < 0:
        raise ScreenshotError(f"{combo.objectName()} offers no {data!r}.")
    combo.setCurrentIndex(index)


def select_rows(table: QTableView, rows: list[int]) -> None:
    """Select whole ``rows`` of ``table`` (as a click and Ctrl+clicks do)."""
    model = table.model()
    selection = table.selectionModel()
    selection.clearSelection()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for row in rows:
        selection.select(model.index(row, 0), flags)
    if rows:
        table.scrollTo(model.index(rows[0], 0))


def size_dialog(dialog: QWidget, width: int = DIALOG_WIDTH) -> None:
    """Give ``dialog`` at least ``width`` and the height its wrapped texts need there."""
    flush()
    width = max(width, dialog.width())
    layout = dialog.layout()
    height = dialog.sizeHint().height()
    if layout is not None and layout.hasHeightForWidth():
        height = layout.totalHeightForWidth(width)
    dialog.resize(width, max(height, dialog.minimumSizeHint().height()))
    flush()


def expect(preview: ChangePreview | None, verdict: Verdict, what: str) -> None:
    """Stop unless a dialog's preview says what the guide says it does."""
    if preview is None or preview.verdict is not verdict:
        found = "no preview" if preview is None else preview.verdict.name
        raise ScreenshotError(f"{what} should be {verdict.name} but is {found}.")


def quiet_status(window: MainWindow) -> None:
    """Take the last change's message off the status bar: it stays ten seconds, so
    whether a later picture still shows it would depend on the machine's speed."""
    window.statusBar().clearMessage()


def open_worklist(window: MainWindow, kind: str) -> QWidget:
    """Open a work list tab, the accounts table above it kept to its smallest."""
    view = window.open_worklist(kind)
    window.splitter.setSizes([1, 10_000])
    quiet_status(window)
    return view


# -- the three staff members' shots ------------------------------------------------------------


def support_shots(db: Database, actor: Actor, account: tuple[int, str, str],
                  shots: Shots) -> None:
    account_id, name, email = account
    with main_window(db, actor) as window:
        # The accounts list, narrowed to those with failed charges waiting.
        window.filter_bar.unrefunded.setChecked(True)
        wait_until(lambda: window.model.filters.active and not window.model.is_loading
                   and window.model.rowCount() > 0, "the filtered accounts")
        shots.save(window, "main-window.png", lambda: not window.model.is_loading)
        window.filter_bar.clear()

        # Found by the start of its email address, as from a ticket.
        typed = email.split("@")[0][:6]
        window.search.setText(typed)
        wait_until(lambda: window.model.query.text == typed and not window.model.is_loading
                   and window.model.rowCount() > 0, "the search results")
        found = [window.model.account(r) for r in range(window.model.rowCount())]
        row = next((r for r in found if r.id == account_id), None)
        if row is None:
            raise ScreenshotError(f"Searching {typed!r} did not find {name}.")
        window.open_account(row)
        detail = open_account(window, account_id)

        # The failed charges, two of them selected: the newest and the oldest waiting.
        show_list(detail, CHARGES)
        set_combo(detail.status_filter, "failed")
        wait_until(lambda: not detail.is_loading and detail.charges.rowCount() > 0,
                   "the failed charges")
        waiting = [r for r in range(detail.charges.rowCount())
                   if detail.charges.row_at(r).refund_id is None
                   and detail.charges.row_at(r).credits > 0]
        if len(waiting) < 2:
            raise ScreenshotError(f"{name} has fewer than two failed charges to refund.")
        select_rows(detail.charges_table, [waiting[0], waiting[-1]])
        shots.save(window, "account-charges.png", lambda: not detail.is_loading)

        # Refunding them: the preview says where the credits go back.
        detail.open_refund_dialog()
        refund = detail.dialog
        if not isinstance(refund, RefundDialog):
            raise ScreenshotError("The refund dialog did not open.")
        refund.ticket.setText("#48213")
        size_dialog(refund)
        wait_until(lambda: refund.preview is not None and refund.ok_button.isEnabled(),
                   "the refund preview")
        expect(refund.preview, Verdict.ALLOW, "The two failed charges")
        if not refund.where_text(0).startswith("Plan credits") \
                or not refund.where_text(1).startswith("New refund credits"):
            # The guide's caption describes these two placements.
            print(f"make_screenshots: warning: the refund goes back to "
                  f"{refund.where_text(0)!r} and {refund.where_text(1)!r}; check the "
                  "caption of refund-dialog.png in docs/user-guide.md.", file=sys.stderr)
        shots.save(refund, "refund-dialog.png")
        applied: list[object] = []
        refund.applied.connect(applied.append)
        refund.accept()
        wait_until(lambda: bool(applied), "the refund to be saved")
        wait_until(lambda: detail.dialog is None and not detail.is_loading,
                   "the account to be read again")

        # The account after the refund: balances and grants (refund credits included).
        show_list(detail, GRANTS)
        shots.save(window, "account.png", lambda: not detail.is_loading)

        # A partial refund of a charge that did not fail: support may only ask for it.
        show_list(detail, CHARGES)
        set_combo(detail.status_filter, "succeeded")
        wait_until(lambda: not detail.is_loading and detail.charges.rowCount() > 0,
                   "the succeeded charges")
        charge = next(r for r in range(detail.charges.rowCount())
                      if detail.charges.row_at(r).credits > 1)
        select_rows(detail.charges_table, [charge])
        detail.open_refund_dialog()
        request = detail.dialog
        if not isinstance(request, RefundDialog):
            raise ScreenshotError("The refund dialog did not open for a succeeded charge.")
        cost = detail.charges.row_at(charge).credits
        request.amount.setValue(cost // 2)
        set_combo(request.reason, "quality_problem")
        request.ticket.setText("#48240")
        request.note.setPlainText(
            "The image came out blurred; half the cost back as agreed with the customer.")
        size_dialog(request)
        wait_until(lambda: request.preview is not None and request.ok_button.isEnabled(),
                   "the refund request preview")
        expect(request.preview, Verdict.REQUEST, "Support's refund of a succeeded charge")
        shots.save(request, "refund-needs-approval.png")
        requested: list[object] = []
        request.applied.connect(requested.append)
        request.accept()
        wait_until(lambda: bool(requested), "the refund request to be saved")
        wait_until(lambda: detail.dialog is None and not detail.is_loading,
                   "the account to be read again")

        # Why the credits went down: the Usage tab over the last 90 days.
        set_combo(detail.status_filter, None)
        show_list(detail, USAGE)
        usage = detail.usage
        if usage is None:
            raise ScreenshotError("The Usage tab did not build its charts.")
        usage.set_range(RangePreset.LAST_90_DAYS)
        usage.apart_box.setChecked(True)
        quiet_status(window)
        shots.save(window, "account-usage.png",
                   lambda: usage.data is not None and not usage.is_loading, "the usage charts")

        # Every failed charge still waiting, across all accounts.
        window.close_account_tab(window.tabs.indexOf(detail))
        flush()
        window.resize(*WINDOW_SIZE)
        failures = open_worklist(window, "failures")
        assert isinstance(failures, FailuresView)
        wait_until(lambda: failures.model.started and not failures.is_loading
                   and failures.model.rowCount() > 0, "the failed charges list")
        failures.table.selectRow(0)
        shots.save(window, "failures.png", lambda: not failures.is_loading)


def finance_shots(db: Database, actor: Actor, account_id: int, shots: Shots) -> None:
    with main_window(db, actor) as window:
        detail = open_account(window, account_id)

        # Compensation in purchased credits, within finance's own limit.
        detail.open_adjust_dialog()
        adjust = detail.dialog
        if not isinstance(adjust, AdjustDialog):
            raise ScreenshotError("The adjustment dialog did not open.")
        adjust.amount.setValue(300)
        set_combo(adjust.reason, "compensation")
        adjust.reference.setText("#48213")
        adjust.note.setPlainText("Goodwill for the failed image generations of this month.")
        adjust.note.setFocus()
        size_dialog(adjust)
        wait_until(lambda: adjust.preview is not None and adjust.ok_button.isEnabled(),
                   "the adjustment preview")
        expect(adjust.preview, Verdict.ALLOW, "Finance's adjustment of 300 credits")
        shots.save(adjust, "adjust-dialog.png")
        applied: list[object] = []
        adjust.applied.connect(applied.append)
        adjust.accept()
        wait_until(lambda: bool(applied), "the adjustment to be saved")
        wait_until(lambda: detail.dialog is None and not detail.is_loading,
                   "the account to be read again")

        # The ledger with that adjustment selected, and "Reverse…" on it.
        show_list(detail, LEDGER)
        entry = next((r for r in range(detail.ledger.rowCount())
                      if detail.ledger.row_at(r).kind == "adjustment"), None)
        if entry is None:
            raise ScreenshotError("The ledger does not show the adjustment.")
        select_rows(detail.ledger_table, [entry])
        quiet_status(window)
        shots.save(window, "ledger.png", lambda: not detail.is_loading)
        detail.open_reverse_dialog()
        wait_until(lambda: detail.dialog is not None, "the reverse dialog")
        reverse = detail.dialog
        if not isinstance(reverse, ReverseDialog):
            raise ScreenshotError("The reverse dialog did not open.")
        reverse.reason.setText("Booked on the wrong account")
        reverse.reference.setText("#48213")
        size_dialog(reverse)
        wait_until(lambda: reverse.preview is not None and reverse.ok_button.isEnabled(),
                   "the reversal preview")
        shots.save(reverse, "reverse-dialog.png")
        reverse.reject()
        wait_until(lambda: detail.dialog is None, "the reverse dialog to close")

        # An incident refund for the demo's outage of image generation, previewed.
        window.open_incident_dialog()
        incident = window.incident_dialog
        if incident is None:
            raise ScreenshotError("The incident refund dialog did not open.")
        wait_until(lambda: incident.feature.currentData() is not None, "the features")
        incident.choose_feature("ad_image")
        incident.set_window(*incident_window(db))
        incident.reference.setText("INC-2026-031")
        incident.run_preview()
        wait_until(lambda: incident.preview is not None, "the incident preview")
        size_dialog(incident, DIALOG_WIDTH + 60)
        shots.save(incident, "incident-dialog.png")
        incident.reject()
        wait_until(lambda: window.incident_dialog is None, "the incident dialog to close")

        # The audit log, with this session's own actions on top.
        audit = open_worklist(window, "audit")
        assert isinstance(audit, AuditView)
        wait_until(lambda: audit.model.started and not audit.is_loading
                   and audit.model.rowCount() > 0, "the audit log")
        shots.save(window, "audit-log.png", lambda: not audit.is_loading)

        # The finance report over the demo's months.
        report = open_worklist(window, "finance")
        assert isinstance(report, FinanceReportView)
        this_month = datetime.now(UTC).date().replace(day=1)
        first = this_month
        for _ in range(DEMO_MONTHS):
            first = (first - timedelta(days=1)).replace(day=1)
        report.set_months(first, this_month)
        report.build()
        shots.save(window, "finance-report.png",
                   lambda: report.report is not None and not report.is_building,
                   "the finance report")


def manager_shots(db: Database, actor: Actor, requester: Actor, shots: Shots) -> None:
    with main_window(db, actor) as window:
        approvals = open_worklist(window, "approvals")
        assert isinstance(approvals, ApprovalsView)
        wait_until(lambda: approvals.model.started and not approvals.is_loading
                   and approvals.model.rowCount() > 0, "the approvals queue")
        mine = next((r for r in range(approvals.model.rowCount())
                     if approvals.model.row_at(r).requested_by == requester.staff_id
                     and approvals.model.row_at(r).status == "pending"), None)
        if mine is None:
            raise ScreenshotError("The approvals queue does not show the refund request.")
        approvals.table.selectRow(mine)
        shots.save(window, "approvals.png", lambda: not approvals.is_loading)
        approvals.approve_selected()
        decision = approvals.decision_dialog
        if decision is None:
            raise ScreenshotError("The approve dialog did not open.")
        decision.comment.setPlainText("Checked the output: agreed.")
        size_dialog(decision)
        shots.save(decision, "approve-dialog.png")
        decision.reject()

        dashboard = open_worklist(window, "dashboard")
        assert isinstance(dashboard, DashboardView)
        shots.save(window, "dashboard.png",
                   lambda: dashboard.top is not None and dashboard.usage is not None
                   and not dashboard.is_loading, "the dashboard")


def staff(db: Database, username: str) -> Actor:
    found = next((a for a in list_staff(db) if a.username == username), None)
    if found is None:
        raise ScreenshotError(f"The demo has no staff member {username!r}.")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for the PNG files (default: {DEFAULT_OUT})")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    isolate()
    qInstallMessageHandler(qt_message)
    app = QApplication(sys.argv[:1])
    # As the application starts (ui.app.run_gui), in English (United States) and in
    # the light palette whatever the machine's language and colour scheme.
    install_translations(app, QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
    configure_application(app)
    apply_theme(app, Qt.ColorScheme.Light)
    # A steady text cursor: a blinking one would be in some pictures and not others.
    app.styleHints().setCursorFlashTime(0)
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(WORK / "settings"))
    shots = Shots(out)
    try:
        url = f"sqlite:///{WORK / 'credits-demo.sqlite3'}"
        make_demo(url)
        db = prepare_database(url, is_default_demo=False)
        try:
            account = pick_account(db)
            support = staff(db, "dana")
            support_shots(db, support, account, shots)
            finance_shots(db, staff(db, "fay"), account[0], shots)
            manager_shots(db, staff(db, "mo"), support, shots)
        finally:
            db.close()
    except ScreenshotError as exc:
        print(f"make_screenshots: {exc}", file=sys.stderr)
        return 1
    finally:
        app.quit()
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"{len(shots.written)} screenshots in {out} "
          f"({time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
