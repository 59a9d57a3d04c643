"""Test files that need optional packages, for the conftest of each extra environment."""

from __future__ import annotations

import importlib.util
import os


def files_to_skip(
    needs: dict[str, tuple[str, ...]], env_var: str, environment: str, remake: str
) -> list[str]:
    """The test files whose modules are not installed, for ``collect_ignore``.

    Args:
        needs: test file name -> the modules it imports.
        env_var: set to ``1`` where the environment is meant to have them all (``make test``).
        environment: the environment's name, for the error.
        remake: the command that makes it again, for the error.

    Raises:
        RuntimeError: ``env_var`` is set and a module is missing: the environment is broken.
    """
    missing = {
        name: [m for m in modules if importlib.util.find_spec(m) is None]
        for name, modules in needs.items()
    }
    if os.environ.get(env_var) == "1":
        lacking = sorted({m for ms in missing.values() for m in ms})
        if lacking:
            raise RuntimeError(
                f"The {environment} lacks {', '.join(lacking)}: run `{remake}` again."
            )
    return [name for name, modules in missing.items() if modules]
