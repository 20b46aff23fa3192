import os

# Qt tests render offscreen: CI has no display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
