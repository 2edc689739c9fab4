import os
import sys

from . import footprint

if sys.argv[1:2] == ["train"] and (env := footprint.with_huge_pages()) != dict(os.environ):
    # glibc reads its tunables only when a process starts: start this one again, with huge pages allowed
    # (footprint.HUGE_PAGES; training's kernel time drops from about a third of its CPU time). Not when
    # GLIBC_TUNABLES already chooses either way, which leaves the environment as it is.
    os.execve(sys.executable, sys.orig_argv, env)

from .cli import main  # noqa: E402

sys.exit(main())
