"""mattecam entry point: ``python main.py`` opens the window, ``--headless`` runs without one."""

from app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
