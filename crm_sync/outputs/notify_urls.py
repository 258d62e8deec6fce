"""Whether apprise can use a notification URL: asked by config validation and by the sender.

A leaf module, so that the config model can check URLs without importing the sender.
"""

from __future__ import annotations

import logging

__all__ = ["quiet_apprise", "url_problem"]


def url_problem(url: str) -> str | None:
    """Why apprise cannot use `url` (naming its scheme only, never the URL), or None."""
    import apprise

    quiet_apprise()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        return "is not an apprise URL (scheme://...)"
    if not apprise.Apprise.instantiate(url):
        return f"apprise cannot use this {scheme}:// URL (unknown scheme or missing parts)"
    return None


def quiet_apprise() -> None:
    """apprise logs through `logging`, sometimes with a URL in the text: keep it out of stderr."""
    logger = logging.getLogger("apprise")
    logger.propagate = False
    logger.setLevel(logging.CRITICAL + 1)
