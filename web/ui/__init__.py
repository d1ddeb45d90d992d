"""The browser UI for the shop floor: operators complete the electronic batch record,
supervisors hold, resume, abort and reassign, QA reads the record and its exceptions.

``bp`` is a Flask blueprint at "/" (the REST API stays under /api). Register it in the
app factory: ``app.register_blueprint(web.ui.bp)``. It needs ``SECRET_KEY`` (from
``settings.secret_key``) for the session cookie, and the bpmn-js files copied into
``static/vendor/bpmn-js`` by ``cd web && npm ci``.
"""

from .views import bp

__all__ = ["bp"]
