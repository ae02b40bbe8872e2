"""``srflow app``: explore the space of super-resolutions of a photo in the browser.

The app is a thin layer over the library (:mod:`srflow.inference`, :mod:`srflow.latent`,
:mod:`srflow.metrics`): :mod:`~srflow.app.session` holds one browser tab's results,
:mod:`~srflow.app.actions` does the work of each button through the library's API (no
gradio there, so it is tested without a browser), :mod:`~srflow.app.ui` lays out the page
and :mod:`~srflow.app.server` starts it, offline and on localhost by default. It needs the
``app`` extra (``pip install 'srflow[app]'``, which brings gradio); see docs/app.md.
"""

from srflow.app.session import AppError, Cancelled, Session

__all__ = ["AppError", "Cancelled", "Session"]
