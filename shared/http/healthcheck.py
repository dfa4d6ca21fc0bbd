"""`python -m shared.http.healthcheck URL`: exit 0 when URL answers 200, 1 otherwise (with
what it answered). The container health check of every service, e.g. on its /readyz.

A module rather than `python -c "…"`, because some engines (Podman 4's Docker API) split
a health check's arguments at spaces."""
from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m shared.http.healthcheck URL", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(argv[1], timeout=3) as response:
            print(response.status, response.read(200).decode(errors="replace"))
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as error:
        print(error.code, error.read(200).decode(errors="replace"))
    except OSError as error:
        print(f"{argv[1]}: {error}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
