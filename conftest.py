"""Collection rules for the whole tree (doctests of src/srflow included)."""

from __future__ import annotations

import importlib.util

#: The app's page modules import gradio (the ``app`` extra): without it their doctests are
#: not collected (the app's own tests skip with a reason instead).
collect_ignore_glob = (
    ["src/srflow/app/ui.py", "src/srflow/app/handlers.py"]
    if importlib.util.find_spec("gradio") is None
    else []
)
