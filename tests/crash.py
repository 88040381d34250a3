"""A child process that makes one committed change and is SIGKILLed the moment its transaction commits,
before Django runs the on-commit hooks: what a crash between a commit and its handlers leaves behind."""

from __future__ import annotations

import signal
import subprocess
import sys

from django.conf import settings

_PREAMBLE = r"""
import os, signal, sys

import django

django.setup()

from django.db.backends.base.base import BaseDatabaseWrapper

run_hooks = BaseDatabaseWrapper.run_and_clear_commit_hooks


def killed_after_the_commit(self):
    if self.run_on_commit:
        os.kill(os.getpid(), signal.SIGKILL)
    run_hooks(self)


BaseDatabaseWrapper.run_and_clear_commit_hooks = killed_after_the_commit
"""


def run_killed_after_commit(change: str, args: list[int], env: dict) -> None:
    """Run `change` (Python, with the ids of `args` in sys.argv[1:]) in a child with the environment
    `env`, and check it died at its commit, killed, rather than finishing or failing before it."""
    script = _PREAMBLE + change + '\nsys.exit("still alive after the commit")\n'
    child = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", script, *map(str, args)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
