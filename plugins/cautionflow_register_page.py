"""The "Caution register" page in the Airflow UI: configuration only.

The page is a FastAPI app (`cautionflow.web.register_page`) mounted in the api-server at
`/cautionflow`; the navigation entry shows it inside the Airflow UI at `/plugin/caution-register`.
Every route of the app requires an Airflow login (see `cautionflow.web.register_page`).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from cautionflow.web.register_page import NAV_ROUTE, RESOURCE_NAME, URL_PREFIX, create_app


class CautionflowRegisterPage(AirflowPlugin):
    name = "cautionflow_register_page"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": RESOURCE_NAME}]
    external_views = [
        {
            "name": RESOURCE_NAME,
            "href": URL_PREFIX.lstrip("/") + "/",  # relative: works under a base_url sub-path too
            "url_route": NAV_ROUTE,
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
