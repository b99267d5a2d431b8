"""The incident refund dialog: refund every failed charge of an outage in one run.

Finance, managers and admins choose a feature (optionally one AI model) and a time
window in local time, preview what a run would refund (counts and a sample; nothing
is written), give the incident a reference, confirm the numbers, and run it with a
progress bar and a Cancel button. It ends with a summary and a "Save CSV…" button.

Everything touching the database or a file runs in the worker; the dialog only
reacts to the jobs' signals. The run is the service's
(:func:`credits_desktop.services.incidents.run_incident`): repeated or cancelled and
run again, each charge is refunded once, so the dialog lets staff simply run again.
A support agent is told plainly that incident refunds are not theirs to run, and
nothing is loaded. The sample of the preview lists its rows compactly, the account
taking the spare width. Coloured sentences use the theme's semantic colours and follow
the palette.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

from PySide6.QtCore import (
    QT_TRANSLATE_NOOP,
    QCoreApplication,
    QDateTime,
    QEvent,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Action, decide
from credits_desktop.services import validation as v
from credits_desktop.services.catalog import FeatureChoice, list_features
from credits_desktop.services.errors import InvalidInput
from credits_desktop.services.incidents import (
    IncidentPreview,
    IncidentScope,
    IncidentSummary,
    preview_incident,
    run_incident,
    write_incident_csv,
)
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database

from . import theme
from .formatting import credits_text, datetime_format, local_datetime, utc_datetime
from .i18n import plural
from .workers import Job, ProgressFn, Worker

__all__ = ["SAMPLE_SIZE", "IncidentDialog"]

SAMPLE_SIZE = 20
# The headers' English source texts, translated when the table is made.
SAMPLE_COLUMNS = (
    str(QT_TRANSLATE_NOOP("IncidentDialog", "Account")),
    str(QT_TRANSLATE_NOOP("IncidentDialog", "Charge")),
    str(QT_TRANSLATE_NOOP("IncidentDialog", "Time")),
    str(QT_TRANSLATE_NOOP("IncidentDialog", "Model")),
    str(QT_TRANSLATE_NOOP("IncidentDialog", "Credits")),
)

# Rows of the sample in view without scrolling (of SAMPLE_SIZE).
SAMPLE_ROWS_SHOWN = 10


def _to_qt(moment: datetime) -> QDateTime:
    """A UTC time as the local QDateTime a date-time field shows."""
    return QDateTime.fromSecsSinceEpoch(int(moment.timestamp()))


def _from_qt(value: QDateTime) -> datetime:
    """What a date-time field shows (local time), as an aware UTC time."""
    return datetime.fromtimestamp(value.toSecsSinceEpoch(), UTC)


class IncidentDialog(QDialog):
    """Preview and run an incident refund (see the module docstring)."""

    features_loaded = Signal()
    # The IncidentPreview, or a message when the preview was refused.
    previewed = Signal(object)
    preview_failed = Signal(str)
    # The IncidentSummary once a run has ended (completed, cancelled or stopped).
    run_finished = Signal(object)
    # done, total: charges dealt with so far, while a run is under way.
    progressed = Signal(int, int)
    run_failed = Signal(str)
    # The path of a saved CSV, or the message why it could not be saved.
    csv_saved = Signal(str)
    csv_failed = Signal(str)

    def __init__(
        self,
        db: Database,
        actor: Actor,
        *,
        worker: Worker | None = None,
        batch_size: int = 200,
        at: Callable[[], datetime | None] = lambda: None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._db = db
        self._actor = actor
        self._at = at
        self._batch_size = batch_size
        self.worker = worker if worker is not None else Worker(self)
        self.preview: IncidentPreview | None = None
        self.summary: IncidentSummary | None = None
        self.file_dialog: QFileDialog | None = None
        self._previewing: Job | None = None
        self._running: Job | None = None
        self._saving: Job | None = None
        self._cancel = threading.Event()
        self._confirming = False
        # The semantic colour of each coloured sentence (None: the palette's text).
        self._tones: dict[QLabel, str | None] = {}
        decision = decide(actor.role, Action.INCIDENT_REFUND)
        self.refused = not decision.allowed

        self.setWindowTitle(self.tr("Incident refund"))
        self.setObjectName("incidentDialog")
        self.setMinimumWidth(720)

        intro = QLabel(self.tr(
            "Refund every failed charge of one feature in a time window that still cost "
            "credits, for an outage. Preview first: nothing is written until you run it, "
            "and a charge is never refunded twice, so a run can be repeated safely."
        ))
        intro.setWordWrap(True)

        # -- the scope --
        self.feature = QComboBox()
        self.feature.setObjectName("incidentFeature")
        self.feature.setAccessibleName(self.tr("Feature"))
        self.feature.addItem(self.tr("Loading features…"), None)

        self.model = QLineEdit()
        self.model.setObjectName("incidentModel")
        self.model.setAccessibleName(self.tr("AI model (optional)"))
        self.model.setPlaceholderText(self.tr("All models"))
        self.model.setMaxLength(60)

        end = now().replace(minute=0, second=0, microsecond=0)
        self.start_edit = self._datetime_edit(
            "incidentStart", self.tr("Window start (local time)"), end - timedelta(hours=1))
        self.end_edit = self._datetime_edit("incidentEnd", self.tr("Window end (local time)"),
                                            end)

        self.preview_button = QPushButton(self.tr("&Preview"))
        self.preview_button.setObjectName("incidentPreview")
        self.preview_button.setAccessibleName(self.tr("Preview the incident refund"))
        self.preview_button.setToolTip(
            self.tr("Count what a run would refund; nothing is written."))
        self.preview_button.clicked.connect(self.run_preview)

        scope_form = QFormLayout()
        scope_form.addRow(self.tr("&Feature:"), self.feature)
        scope_form.addRow(self.tr("&Model:"), self.model)
        scope_form.addRow(self.tr("Fr&om:"), self.start_edit)
        scope_form.addRow(self.tr("&To (not included):"), self.end_edit)

        # -- the preview --
        self.preview_label = QLabel(self.tr("Choose the scope, then press Preview."))
        self.preview_label.setObjectName("incidentCounts")
        self.preview_label.setWordWrap(True)
        self.preview_label.setAccessibleName(self.tr("What a run would refund"))
        self.preview_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)

        self.sample_table = QTableWidget(0, len(SAMPLE_COLUMNS))
        self.sample_table.setObjectName("incidentSample")
        self.sample_table.setAccessibleName(self.tr("Sample of the charges a run would refund"))
        self.sample_table.setHorizontalHeaderLabels(
            [QCoreApplication.translate("IncidentDialog", column) for column in SAMPLE_COLUMNS])
        self.sample_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.sample_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Tab goes on to the reference (the arrows move within the table).
        self.sample_table.setTabKeyNavigation(False)
        # Compact rows, as in the main window's lists, and the account (the only long
        # text) takes the spare width: the figures stay beside their names.
        rows = self.sample_table.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.sample_table.fontMetrics().height() + 8)
        header = self.sample_table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # Titles over their cells: words to the left, numbers (charge, credits) right.
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for column in (1, 4):
            title = self.sample_table.horizontalHeaderItem(column)
            if title is not None:
                title.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                       | Qt.AlignmentFlag.AlignVCenter)
        self.sample_table.setMinimumHeight(
            header.sizeHint().height() + rows.defaultSectionSize() * SAMPLE_ROWS_SHOWN
            + 2 * self.sample_table.frameWidth())

        # -- the run --
        self.reference = QLineEdit()
        self.reference.setObjectName("incidentReference")
        self.reference.setAccessibleName(self.tr("Incident reference"))
        self.reference.setPlaceholderText(self.tr("e.g. INC-2026-031 (status page or ticket)"))
        self.reference.setMaxLength(v.TICKET_MAX)
        self.reference.textChanged.connect(self._update_state)

        self.run_button = QPushButton(self.tr("&Run incident refund…"))
        self.run_button.setObjectName("incidentRun")
        self.run_button.setAccessibleName(self.tr("Run the incident refund"))
        self.run_button.clicked.connect(self.ask_confirmation)

        self.confirm_box = QFrame()
        self.confirm_box.setObjectName("incidentConfirmBox")
        self.confirm_box.setFrameShape(QFrame.Shape.StyledPanel)
        self.confirm_label = QLabel()
        self.confirm_label.setObjectName("incidentConfirmText")
        self.confirm_label.setWordWrap(True)
        self.confirm_label.setAccessibleName(self.tr("What the run will do"))
        self.confirm_button = QPushButton()
        self.confirm_button.setObjectName("incidentConfirm")
        self.confirm_button.setAccessibleName(self.tr("Confirm and run the incident refund"))
        self.confirm_button.clicked.connect(self.start_run)
        self.back_button = QPushButton(self.tr("&Back"))
        self.back_button.setObjectName("incidentBack")
        self.back_button.setAccessibleName(self.tr("Back without running"))
        self.back_button.clicked.connect(self._back)
        confirm_layout = QVBoxLayout(self.confirm_box)
        confirm_layout.addWidget(self.confirm_label)
        confirm_buttons = QHBoxLayout()
        confirm_buttons.addStretch(1)
        confirm_buttons.addWidget(self.back_button)
        confirm_buttons.addWidget(self.confirm_button)
        confirm_layout.addLayout(confirm_buttons)
        self.confirm_box.hide()

        self.progress = QProgressBar()
        self.progress.setObjectName("incidentProgress")
        self.progress.setAccessibleName(self.tr("Incident refund progress"))
        # %v and %m are the progress bar's: charges done and charges in all.
        self.progress.setFormat(self.tr("%v of %m charges"))
        self.progress.hide()
        self.cancel_run_button = QPushButton(self.tr("C&ancel run"))
        self.cancel_run_button.setObjectName("incidentCancel")
        self.cancel_run_button.setAccessibleName(self.tr("Cancel the run after the current batch"))
        self.cancel_run_button.clicked.connect(self.cancel_run)
        self.cancel_run_button.hide()
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_run_button)

        self.summary_label = QLabel()
        self.summary_label.setObjectName("incidentSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setAccessibleName(self.tr("What the run did"))
        self.summary_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_label.hide()
        self.save_button = QPushButton(self.tr("&Save CSV…"))
        self.save_button.setObjectName("incidentSaveCsv")
        self.save_button.setAccessibleName(self.tr("Save what the run did as CSV"))
        self.save_button.clicked.connect(self.ask_csv_path)
        self.save_button.hide()

        self.problem_label = QLabel()
        self.problem_label.setObjectName("incidentProblem")
        self.problem_label.setWordWrap(True)
        self._tone(self.problem_label, "danger")
        self.problem_label.setAccessibleName(self.tr("What still needs attention"))
        self.problem_label.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close = self.buttons.button(QDialogButtonBox.StandardButton.Close)
        assert close is not None
        self.close_button = close
        self.close_button.setObjectName("incidentClose")
        self.close_button.setAccessibleName(self.tr("Close the incident refund"))
        self.buttons.rejected.connect(self.reject)

        run_form = QFormLayout()
        run_form.addRow(self.tr("Incident r&eference:"), self.reference)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(scope_form)
        preview_row = QHBoxLayout()
        preview_row.addStretch(1)
        preview_row.addWidget(self.preview_button)
        layout.addLayout(preview_row)
        layout.addWidget(self.preview_label)
        layout.addWidget(self.sample_table, 1)
        layout.addLayout(run_form)
        run_row = QHBoxLayout()
        run_row.addStretch(1)
        run_row.addWidget(self.run_button)
        layout.addLayout(run_row)
        layout.addWidget(self.confirm_box)
        layout.addLayout(progress_row)
        layout.addWidget(self.summary_label)
        save_row = QHBoxLayout()
        save_row.addStretch(1)
        save_row.addWidget(self.save_button)
        layout.addLayout(save_row)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.buttons)

        # Any change of the scope makes the preview stale: a run only ever does what
        # was previewed and confirmed.
        self.feature.currentIndexChanged.connect(self._scope_changed)
        self.model.textChanged.connect(self._scope_changed)
        self.start_edit.dateTimeChanged.connect(self._scope_changed)
        self.end_edit.dateTimeChanged.connect(self._scope_changed)

        if self.refused:
            self.preview_label.setText(
                self.tr("{reason} Ask a finance, manager or admin colleague to run it.").format(
                    reason=decision.reason)
            )
            self._tone(self.preview_label, "danger")
            self.feature.setItemText(0, "—")
        else:
            self._load_features()
        self._update_state()

    def _tone(self, label: QLabel, tone: str | None) -> None:
        """Colour ``label`` with the semantic colour ``tone`` (None: the text colour)."""
        self._tones[label] = tone
        theme.set_style_sheet(label, f"color: {theme.css(tone)};" if tone else "")

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if theme.is_palette_change(event):
            for label, tone in list(self._tones.items()):
                self._tone(label, tone)

    def _datetime_edit(self, name: str, label: str, value: datetime) -> QDateTimeEdit:
        edit = QDateTimeEdit(_to_qt(value))
        edit.setObjectName(name)
        edit.setAccessibleName(label)
        # The user's date and time format, with a four-digit year (as the tables show).
        edit.setDisplayFormat(datetime_format())
        edit.setCalendarPopup(True)
        edit.setToolTip(utc_datetime(value))
        edit.dateTimeChanged.connect(
            lambda qt: edit.setToolTip(utc_datetime(_from_qt(qt))))
        return edit

    # -- state ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running is not None

    def set_window(self, start: datetime, end: datetime) -> None:
        """Show the window ``[start, end)`` (aware times) in the date-time fields."""
        self.start_edit.setDateTime(_to_qt(start))
        self.end_edit.setDateTime(_to_qt(end))

    def current_scope(self) -> IncidentScope:
        """The scope the fields describe; InvalidInput when they do not make one."""
        code = self.feature.currentData()
        if not code:
            raise InvalidInput(self.tr("Choose a feature."), "feature_code")
        return IncidentScope(
            feature_code=str(code),
            model=self.model.text() or None,
            start=_from_qt(self.start_edit.dateTime()),
            end=_from_qt(self.end_edit.dateTime()),
        )

    def _reference_problem(self) -> str | None:
        try:
            v.required_text(self.reference.text(), "incident_ref", "An incident reference",
                            max_length=v.TICKET_MAX)
        except InvalidInput as exc:
            return exc.message
        return None

    def _scope_problem(self) -> str | None:
        if self.feature.currentData() is None:
            return None  # still loading, or none to choose: the label says so
        try:
            self.current_scope()
        except InvalidInput as exc:
            return exc.message
        return None

    def run_blocker(self) -> str | None:
        """Why Run cannot be pressed now, in a sentence; None when it can."""
        if self.refused:
            return self.tr("Incident refunds need the finance, manager or admin role.")
        if self.preview is None:
            return self.tr("Preview the incident first.")
        if self.preview.charges == 0:
            return self.tr("There is nothing to refund in this scope.")
        return self._reference_problem()

    @Slot()
    def _update_state(self) -> None:
        busy = self._previewing is not None or self._running is not None
        editable = not self.refused and not busy and not self._confirming
        has_features = self.feature.currentData() is not None
        for widget in (self.feature, self.model, self.start_edit, self.end_edit):
            widget.setEnabled(editable and has_features)
        self.reference.setEnabled(not self.refused and self._running is None
                                  and not self._confirming)
        scope_problem = self._scope_problem()
        self.preview_button.setEnabled(editable and has_features and scope_problem is None)
        blocker = self.run_blocker()
        self.run_button.setEnabled(editable and blocker is None)
        self.run_button.setToolTip(blocker or "")
        self.close_button.setEnabled(self._running is None)
        self.save_button.setEnabled(
            self.summary is not None and bool(self.summary.rows) and self._saving is None
            and self._running is None)
        # The problem line: what stands in the way of the next step.
        problem = ""
        if not self.refused and not busy:
            if scope_problem:
                problem = scope_problem
            elif self.preview is not None and self.preview.charges and not self._confirming:
                problem = self._reference_problem() or ""
        if problem:
            self._show_problem(problem)
        elif self.problem_label.property("sticky") is not True:
            # Cleared too: a hidden sentence about a scope that is gone helps nobody.
            self.problem_label.clear()
            self.problem_label.hide()

    def _show_problem(self, message: str, *, sticky: bool = False) -> None:
        """Show a message under the dialog; a sticky one (an error from the database)
        stays until the next action."""
        self.problem_label.setText(message)
        self.problem_label.setProperty("sticky", sticky)
        self.problem_label.show()

    def _clear_sticky(self) -> None:
        self.problem_label.setProperty("sticky", False)
        self.problem_label.clear()
        self.problem_label.hide()

    @Slot()
    def _scope_changed(self) -> None:
        if self.preview is not None:
            self.preview = None
            self.preview_label.setText(
                self.tr("The scope changed: preview again before running."))
            self._tone(self.preview_label, "warning")
            self.sample_table.setRowCount(0)
        self._update_state()

    # -- features ------------------------------------------------------------------------

    def _load_features(self) -> None:
        db = self._db
        job = self.worker.submit(lambda: list_features(db))
        job.succeeded.connect(self._features_arrived)
        job.failed.connect(self._features_failed)

    @Slot(object)
    def _features_arrived(self, features: list[FeatureChoice]) -> None:
        self.feature.blockSignals(True)
        try:
            self.feature.clear()
            for f in features:
                label = f.name if f.enabled else self.tr("{feature} (switched off)").format(
                    feature=f.name)
                self.feature.addItem(label, f.code)
            if not features:
                self.feature.addItem(self.tr("No feature in this database"), None)
        finally:
            self.feature.blockSignals(False)
        self._update_state()
        self.features_loaded.emit()

    @Slot(str)
    def _features_failed(self, message: str) -> None:
        self.feature.setItemText(0, self.tr("Features could not be loaded"))
        self._show_problem(message, sticky=True)
        self._update_state()

    def choose_feature(self, code: str) -> None:
        """Select the feature with ``code`` (for the main window and tests)."""
        index = self.feature.findData(code)
        if index < 0:
            raise ValueError(f"no feature {code!r} in the list")
        self.feature.setCurrentIndex(index)

    # -- preview -------------------------------------------------------------------------

    @Slot()
    def run_preview(self) -> None:
        """Count what a run would refund, in the worker; nothing is written."""
        if not self.preview_button.isEnabled() or self._previewing is not None:
            return
        try:
            scope = self.current_scope()
        except InvalidInput as exc:
            self._show_problem(exc.message)
            return
        self._clear_sticky()
        self.preview = None
        self.summary = None
        self.summary_label.hide()
        self.save_button.hide()
        self.progress.hide()
        self.preview_label.setText(self.tr("Counting the failed charges in this window…"))
        self._tone(self.preview_label, None)
        db, actor = self._db, self._actor
        job = self.worker.submit(lambda: preview_incident(db, actor, scope, sample=SAMPLE_SIZE))
        job.succeeded.connect(self._preview_arrived)
        job.failed.connect(self._preview_refused)
        self._previewing = job
        self._update_state()

    @Slot(object)
    def _preview_arrived(self, preview: IncidentPreview) -> None:
        self._previewing = None
        self.preview = preview
        self._tone(self.preview_label, None)
        if preview.charges == 0:
            # The scope in words ("failed ad_image charges from … UTC") is the services'.
            self.preview_label.setText(
                self.tr("Nothing to refund: no {scope} that still cost credits.").format(
                    scope=preview.scope.describe())
            )
        else:
            shown = len(preview.sample)
            text = self.tr("A run would refund {charges} ({credits}) on {accounts}.").format(
                charges=self.tr("%Ln failed charge(s)", "", preview.charges),
                credits=self.tr("{credits} credit(s)", "", plural(preview.credits)).format(
                    credits=credits_text(preview.credits)),
                accounts=self.tr("%Ln account(s)", "", preview.accounts))
            if shown < preview.charges:
                text += " " + self.tr("The %Ln oldest are listed below.", "", shown)
            self.preview_label.setText(text)
        self._fill_sample(preview)
        self._update_state()
        self.previewed.emit(preview)

    @Slot(str)
    def _preview_refused(self, message: str) -> None:
        self._previewing = None
        self.preview_label.setText(self.tr("The preview could not be made."))
        self._show_problem(message, sticky=True)
        self._update_state()
        self.preview_failed.emit(message)

    def _fill_sample(self, preview: IncidentPreview) -> None:
        table = self.sample_table
        table.setRowCount(len(preview.sample))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, row in enumerate(preview.sample):
            cells = (row.account_name, str(row.charge_id), local_datetime(row.occurred_at),
                     row.model or "—", credits_text(row.credits))
            for c, value in enumerate(cells):
                item = QTableWidgetItem(value)
                if c in (1, 4):
                    item.setTextAlignment(right)
                if c == 0:
                    item.setToolTip(self.tr("Account #{id}").format(id=row.account_id))
                if c == 2:
                    item.setToolTip(utc_datetime(row.occurred_at))
                table.setItem(r, c, item)

    # -- run -----------------------------------------------------------------------------

    @Slot()
    def ask_confirmation(self) -> None:
        """Show the numbers the run is about to act on, with Confirm and Back."""
        if not self.run_button.isEnabled() or self.preview is None:
            return
        p = self.preview
        ref = self.reference.text().strip()
        self.confirm_label.setText(self.tr(
            "Refund {charges} ({credits}) on {accounts} under incident <b>{reference}</b>? "
            "Each goes back to the customer as for a refund with reason \"Failed generation\"; "
            "charges refunded meanwhile by someone else are skipped.").format(
            charges=self.tr("%Ln failed charge(s)", "", p.charges),
            credits=self.tr("{credits} credit(s)", "", plural(p.credits)).format(
                credits=credits_text(p.credits)),
            accounts=self.tr("%Ln account(s)", "", p.accounts),
            reference=escape(ref)))
        self.confirm_label.setTextFormat(Qt.TextFormat.RichText)
        self.confirm_button.setText(self.tr("Refund %Ln charge(s) now", "", p.charges))
        self._confirming = True
        self.confirm_box.show()
        self.confirm_button.setFocus()
        self._update_state()

    @Slot()
    def _back(self) -> None:
        self._confirming = False
        self.confirm_box.hide()
        self._update_state()

    @Slot()
    def start_run(self) -> None:
        """Run the confirmed incident refund in the worker, reporting progress."""
        if not self._confirming or self.preview is None or self._running is not None:
            return
        self._confirming = False
        self.confirm_box.hide()
        self._clear_sticky()
        scope, ref = self.preview.scope, self.reference.text()
        db, actor, at, size = self._db, self._actor, self._at(), self._batch_size
        cancel = threading.Event()
        self._cancel = cancel

        def work(report: ProgressFn) -> IncidentSummary:
            return run_incident(
                db, actor, scope, incident_ref=ref, batch_size=size,
                progress=lambda done, total: report("Refunding", done, total),
                cancelled=cancel.is_set, at=at,
            )

        self.summary = None
        self.summary_label.hide()
        self.save_button.hide()
        self.progress.setRange(0, max(self.preview.charges, 1))
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_run_button.setText(self.tr("C&ancel run"))
        self.cancel_run_button.setEnabled(True)
        self.cancel_run_button.show()
        job = self.worker.submit_reporting(work)
        job.progressed.connect(self._run_progressed)
        job.succeeded.connect(self._run_done)
        job.failed.connect(self._run_broke)
        self._running = job
        self._update_state()

    @Slot(str, int, int)
    def _run_progressed(self, _stage: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progressed.emit(done, total)

    @Slot()
    def cancel_run(self) -> None:
        """Stop the run after the batch under way (each batch lands whole or not at all)."""
        if self._running is None:
            return
        self._cancel.set()
        self.cancel_run_button.setEnabled(False)
        self.cancel_run_button.setText(self.tr("Cancelling…"))

    @Slot(object)
    def _run_done(self, summary: IncidentSummary) -> None:
        self._running = None
        self.summary = summary
        # What was previewed has been acted on: a new run needs a new preview.
        self.preview = None
        self.cancel_run_button.hide()
        self.progress.setRange(0, max(summary.total, 1))
        self.progress.setValue(summary.charges_refunded + summary.skipped + summary.failed)
        self.summary_label.setText(summary.text())
        self._tone(self.summary_label, "success" if summary.complete else "warning")
        self.summary_label.show()
        self.save_button.show()
        self.preview_label.setText(self.tr("Preview again to see what is left in this scope."))
        self._tone(self.preview_label, None)
        self.sample_table.setRowCount(0)
        self._update_state()
        self.run_finished.emit(summary)

    @Slot(str)
    def _run_broke(self, message: str) -> None:
        self._running = None
        self.preview = None
        self.cancel_run_button.hide()
        self.progress.hide()
        self._show_problem(
            self.tr("{message} Batches finished before the problem stay done; preview again "
                    "and run again to finish.").format(message=message),
            sticky=True,
        )
        self._update_state()
        self.run_failed.emit(message)

    # -- CSV -----------------------------------------------------------------------------

    @Slot()
    def ask_csv_path(self) -> None:
        """Ask where to save the CSV (the dialog does not block the event loop)."""
        if self.summary is None or not self.save_button.isEnabled():
            return
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-"
                       for ch in self.summary.incident_ref)[:60]
        suggested = str(Path.home() / f"incident-{safe}.csv")
        dialog = QFileDialog(self, self.tr("Save the incident refund as CSV"), suggested,
                             self.tr("CSV files (*.csv);;All files (*)"))
        dialog.setObjectName("incidentCsvFileDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.fileSelected.connect(self.save_csv_to)
        self.file_dialog = dialog
        dialog.open()

    @Slot(str)
    def save_csv_to(self, path: str) -> None:
        """Write the run's CSV to ``path``, in the worker."""
        summary = self.summary
        if summary is None or self._saving is not None or not path:
            return
        def work() -> str:
            write_incident_csv(summary, path)
            return path

        job = self.worker.submit(work)
        job.succeeded.connect(self._csv_done)
        job.failed.connect(self._csv_broke)
        self._saving = job
        self._update_state()

    @Slot(object)
    def _csv_done(self, path: str) -> None:
        self._saving = None
        rows = len(self.summary.rows) if self.summary is not None else 0
        summary = self.summary.text() if self.summary is not None else ""
        saved = self.tr("Saved %Ln row(s) to {path}.", "", rows).format(path=path)
        self.summary_label.setText(f"{summary} {saved}".strip())
        self._update_state()
        self.csv_saved.emit(path)

    @Slot(str)
    def _csv_broke(self, message: str) -> None:
        self._saving = None
        self._show_problem(message, sticky=True)
        self._update_state()
        self.csv_failed.emit(message)

    # -- closing -------------------------------------------------------------------------

    def reject(self) -> None:
        if self._running is not None:
            # The run must end cleanly: a batch is never cut in half, and its summary
            # must be seen.
            self._show_problem(self.tr("The run is under way: press Cancel run and wait for "
                                       "it to stop before closing."), sticky=True)
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._running is not None:
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._running is not None and event.key() == Qt.Key.Key_Escape:
            return
        super().keyPressEvent(event)
