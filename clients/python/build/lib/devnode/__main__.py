"""python3 -m devnode instance ...: see runner.py."""
import sys

if __name__ == "__main__":
    try:
        from .runner import main
    except ModuleNotFoundError as e:  # the interpreter trap, before anything else can fail
        from . import _deps
        if _deps.report(e):
            sys.exit(1)
        raise
    sys.exit(main())
