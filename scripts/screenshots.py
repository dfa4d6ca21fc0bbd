"""Redraw the pictures of README.md and docs/portal-and-cli.md from a running stack (`make run`): the
portal's main menu and detail view (Debian's chromium through Playwright), and a session of the `arcserve` command
(its real output, coloured, drawn as SVG by rich). It applies for a new contract as the
tenant whose key it is given, so use a demo tenant.

    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8084 --key KEY
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from playwright.async_api import async_playwright
from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.catalog import products  # noqa: E402

IMAGES = ROOT / "docs" / "images"
WIDTH = 110  # columns of the CLI picture


def free_product(url: str, key: str) -> str:
    """A product the tenant holds no live contract for (R2), to apply for."""
    live = {c["product"]["code"] for status in ("preparing", "active") for c in httpx.get(
        f"{url}/v1/contracts", params={"status": status, "limit": 100}, headers={"Authorization": f"Bearer {key}"},
    ).raise_for_status().json()["items"]}
    free = [code for code in products() if code not in live]
    if not free:
        raise SystemExit("the tenant holds a live contract for every product: cancel one, or use a new demo tenant")
    return free[0]


def cli_session(url: str, key: str) -> None:
    product = free_product(url, key)
    # Colours as on a terminal, but no live redraws: the picture shows where the watch ended.
    env = {**os.environ, "ARCSERVE_URL": url, "ARCSERVE_API_KEY": key, "FORCE_COLOR": "1", "TTY_INTERACTIVE": "0",
           "COLUMNS": str(WIDTH), "TERM": "xterm-256color"}
    picture = Console(record=True, width=WIDTH, force_terminal=True, file=open(os.devnull, "w"))
    commands = [
        ["apply", "new", "--product", product, "--email", "ops@example.co.jp", "--company", "Example K.K.",
         "--license", "virtual_server:per_server:2", "--license", "hypervisor:dedicated_hypervisor:1:10", "--watch"],
        ["contracts", "--status", "active"],
    ]
    for args in commands:
        shown = " ".join(f'"{a}"' if " " in a else a for a in args)
        picture.print(Text(f"$ arcserve {shown}", style="bold"))
        done = subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        picture.print(Text.from_ansi(done.stdout + done.stderr))
    picture.save_svg(str(IMAGES / "cli-session.svg"), title="arcserve")


async def portal(url: str, key: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                                   args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(url + "/")
        await page.get_by_label("APIキー").fill(key)
        await page.get_by_role("button", name="サインイン").click()
        await page.get_by_role("heading", name="メインメニュー").wait_for()
        await page.screenshot(path=IMAGES / "main-menu.png", full_page=True)
        await page.locator("tr[data-contract]").first.get_by_role("link", name="詳細").click()
        await page.get_by_role("heading", name="契約の詳細").wait_for()
        await page.screenshot(path=IMAGES / "detail-view.png", full_page=True)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8084")
    parser.add_argument("--key", default=os.environ.get("ARCSERVE_API_KEY"), required="ARCSERVE_API_KEY" not in os.environ)
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    cli_session(args.url, args.key)
    asyncio.run(portal(args.url.rstrip("/"), args.key))
    print(f"written: {', '.join(sorted(p.name for p in IMAGES.iterdir()))} in {IMAGES}")


if __name__ == "__main__":
    main()
