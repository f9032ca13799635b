"""TSD's API environments: which host serves which flavour of TSD.

Every API URL is ``https://HOST/v1/...`` and the S3 API is served from the
same host. ``TSD_API_URL`` replaces ``https://HOST`` for every environment,
which is how the tests and the demo reach the local emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiEnvironment:
    name: str
    host: str
    description: str
    educloud: bool = False

    @property
    def auth_method(self) -> str:
        """TSD projects log in with method ``tsd``, Educloud projects with ``iam``."""
        return "iam" if self.educloud else "tsd"

    def api_url(self, environ: Mapping[str, str]) -> str:
        override = environ.get("TSD_API_URL", "").rstrip("/")
        return override or f"https://{self.host}"

    def s3_endpoint(self, environ: Mapping[str, str]) -> tuple[str, bool]:
        """The S3 API's host (``host:port`` under ``TSD_API_URL``) and whether it is https."""
        scheme, _, host = self.api_url(environ).partition("://")
        return host, scheme == "https"


ENVIRONMENTS: dict[str, ApiEnvironment] = {
    env.name: env
    for env in (
        ApiEnvironment("prod", "api.tsd.usit.no", "TSD production"),
        ApiEnvironment("alt", "alt.api.tsd.usit.no", "TSD over the hospitals' fx03 network"),
        ApiEnvironment("test", "test.api.tsd.usit.no", "TSD test API"),
        ApiEnvironment("ec-prod", "api.fp.educloud.no", "Educloud Research production", True),
        ApiEnvironment("ec-test", "test.api.fp.educloud.no", "Educloud Research test", True),
    )
}
DEFAULT = "prod"
