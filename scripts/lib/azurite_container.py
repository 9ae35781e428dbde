#!/usr/bin/env python3
"""Create a blob container in Azurite with a SharedKey-signed request (stdlib only).

Usage: azurite_container.py BLOB_URL CONTAINER

BLOB_URL is Azurite's blob endpoint without the account, e.g. http://127.0.0.1:10000.
Exits 0 when the container was created (201) or already exists (409), 1 otherwise.

object_store cannot create containers and the Azure CLI is not installable here, so the test
script signs the one request it needs itself. The key is Azurite's documented, public
devstoreaccount1 key, not a secret.
"""

import base64
import hashlib
import hmac
import sys
import urllib.error
import urllib.request
from email.utils import formatdate

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
API_VERSION = "2023-11-03"


def string_to_sign(date: str, container: str) -> str:
    # Verb, then the eleven standard headers (all empty for this request: no body, so no
    # Content-Length either), then the canonicalized x-ms-* headers and the resource. With
    # path-style emulator URLs the account name appears twice in the canonical resource.
    standard_headers = [""] * 11
    canonical_headers = f"x-ms-date:{date}\nx-ms-version:{API_VERSION}\n"
    canonical_resource = f"/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    return "PUT\n" + "\n".join(standard_headers) + "\n" + canonical_headers + canonical_resource


def create_container(blob_url: str, container: str) -> int:
    date = formatdate(usegmt=True)
    key = base64.b64decode(ACCOUNT_KEY)
    sig = base64.b64encode(
        hmac.new(key, string_to_sign(date, container).encode("utf-8"), hashlib.sha256).digest()
    ).decode("ascii")
    url = f"{blob_url.rstrip('/')}/{ACCOUNT}/{container}?restype=container"
    # No body: urllib would otherwise add a form Content-Type, which would have to be signed.
    req = urllib.request.Request(url, method="PUT")
    req.add_header("Content-Length", "0")
    req.add_header("x-ms-date", date)
    req.add_header("x-ms-version", API_VERSION)
    req.add_header("Authorization", f"SharedKey {ACCOUNT}:{sig}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        if err.code != 409:
            sys.stderr.write(err.read().decode("utf-8", "replace") + "\n")
        return err.code


def main() -> int:
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    status = create_container(sys.argv[1], sys.argv[2])
    if status in (201, 409):
        return 0
    sys.stderr.write(f"creating container {sys.argv[2]} failed with http {status}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
