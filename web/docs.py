"""The API's human documentation page: Swagger UI over /api/openapi.json.

Served from the npm package swagger-ui-dist copied into static/vendor (no CDN: the
shop floor has no internet). Without those files the page says how to install them
instead of failing.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template, url_for

bp = Blueprint("docs", __name__)

SWAGGER_UI = "vendor/swagger-ui"
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
INSTALL = "cd web && npm ci"


def swagger_ui_installed() -> bool:
    folder = Path(current_app.static_folder) / SWAGGER_UI
    return all((folder / name).is_file() for name in SWAGGER_FILES)


@bp.route("/api/docs")
def api_docs():
    spec_url = url_for("api-docs.openapi_json")
    if not swagger_ui_installed():
        return render_template(
            "api_docs_missing.html", spec_url=spec_url, install=INSTALL, folder=f"web/static/{SWAGGER_UI}"
        )
    return render_template("api_docs.html", spec_url=spec_url, assets=SWAGGER_UI)
