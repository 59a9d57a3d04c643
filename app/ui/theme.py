"""The dark look: Fusion style, a dark palette and a small style sheet for the custom pieces."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#3d8bfd"
WINDOW = "#1e2127"
PANEL = "#262a31"
BASE = "#171a1f"
TEXT = "#e6e8eb"
MUTED = "#9aa3ad"
ERROR = "#e5484d"
WARNING = "#f5a524"
INFO = ACCENT

STYLE_SHEET = f"""
QWidget {{ font-size: 10pt; }}
QToolTip {{ color: {TEXT}; background: {PANEL}; border: 1px solid #3a404a; padding: 4px; }}
QGroupBox {{
    border: 1px solid #343a44; border-radius: 6px; margin-top: 14px; padding: 8px 8px 6px 8px;
}}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {MUTED}; }}
QTabWidget::pane {{ border: 1px solid #343a44; border-radius: 6px; top: -1px; }}
QTabBar::tab {{
    background: {WINDOW}; color: {MUTED}; padding: 6px 14px; border: 1px solid #343a44;
    border-bottom: none; border-top-left-radius: 6px; border-top-right-radius: 6px;
}}
QTabBar::tab:selected {{ background: {PANEL}; color: {TEXT}; }}
QPushButton {{
    background: #303540; border: 1px solid #424956; border-radius: 5px; padding: 5px 12px;
}}
QPushButton:hover {{ background: #3a404c; }}
QPushButton:pressed, QPushButton:checked {{ background: {ACCENT}; border-color: {ACCENT}; }}
QPushButton:disabled {{ color: #6b737d; background: #2a2e35; }}
QPushButton#recordButton:checked {{ background: {ERROR}; border-color: {ERROR}; }}
QListWidget#backgroundGrid {{ background: {BASE}; border: 1px solid #343a44; border-radius: 6px; }}
QListWidget#backgroundGrid::item {{ border-radius: 6px; padding: 4px; color: {TEXT}; }}
QListWidget#backgroundGrid::item:selected {{ background: #2c4a7a; border: 2px solid {ACCENT}; }}
QListWidget#backgroundGrid::item:hover {{ background: #2a2f38; }}
QFrame#banner {{ border-radius: 6px; }}
QFrame#banner[level="error"] {{ background: #4a1f22; border: 1px solid {ERROR}; }}
QFrame#banner[level="warning"] {{ background: #4a3a16; border: 1px solid {WARNING}; }}
QFrame#banner[level="info"] {{ background: #1d3557; border: 1px solid {INFO}; }}
QLabel#muted {{ color: {MUTED}; }}
QLabel#notice {{ color: {WARNING}; }}
QLabel#recording {{ color: {ERROR}; font-weight: 600; }}
QLabel#statValue {{ color: {TEXT}; font-weight: 600; }}
QLabel#statName {{ color: {MUTED}; }}
QFrame#statsBar {{ background: {BASE}; border-top: 1px solid #30353e; }}
QFrame#previewBar {{ background: {WINDOW}; }}
QProgressBar {{
    border: 1px solid #424956; border-radius: 4px; background: {BASE}; text-align: center;
    min-height: 16px;
}}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
"""


def dark_palette() -> QPalette:
    """A dark palette that Fusion draws every standard widget with."""
    pal = QPalette()
    colors = {
        QPalette.ColorRole.Window: WINDOW,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: "#303540",
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: MUTED,
    }
    for role, value in colors.items():
        pal.setColor(role, QColor(value))
    disabled = QPalette.ColorGroup.Disabled
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        pal.setColor(disabled, role, QColor("#6b737d"))
    return pal


def apply_theme(app: QApplication) -> None:
    """Gives the whole application the dark look."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(STYLE_SHEET)
