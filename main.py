"""mattecam entry point: ``python main.py`` opens the window, ``--headless`` runs without one."""

import signal
import sys

# Ctrl-C before the app has installed its own handler (while it imports) ends it quietly.
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

from app.cli import main  # noqa: E402 - after the handler, so an early Ctrl-C is quiet

if __name__ == "__main__":
    raise SystemExit(main())
