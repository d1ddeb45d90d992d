"""How a form's answer behaves in the browser's history (post/redirect/get).

Why: a batch record is filled in on a tablet where the back button is pressed. A POST
answered with a page leaves a history entry that the browser can only show again by
sending the form again ("Confirm Form Resubmission", or worse, a second submission).

- A successful submission always answers ``303 See Other`` to a GET page (the message
  travels in the session's flash): every 302 a page's POST answers (any blueprint but the
  API) becomes a 303 here, so a new route cannot forget it.
- A refused submission is shown again with what was typed and the reason (a 4xx page:
  the values are not lost), and that page carries the address of its GET page
  (``page_url``); ``static/ui/session.js`` puts that address into the history entry, so
  a later back button opens the page with a GET and never re-posts.
"""

from __future__ import annotations

from flask import request

from . import session as login
from .pages import bp


@bp.after_app_request
def _see_other(response):
    """A page's POST that succeeded redirects with 303: the browser then GETs the target.
    Every page of the app (the trend pages' model review too); the API is left as it is."""
    if request.method == "POST" and response.status_code == 302 and not request.path.startswith("/api/"):
        response.status_code = 303
    return response


@bp.app_context_processor
def _page_url() -> dict[str, str | None]:
    """For a page drawn as the answer to a POST: the address to GET it again."""
    if request.method != "POST":
        return {"page_url": None}
    return {"page_url": login.page_address()}
