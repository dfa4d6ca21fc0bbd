"""The product catalog: data in `products.json`, read once per process."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

_CATALOG_FILE = Path(__file__).with_name("products.json")


class SupportDesk(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    phone: str
    url: str
    hours: str


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name: str
    version: str
    support_desk: SupportDesk


@cache
def products() -> dict[str, Product]:
    raw = json.loads(_CATALOG_FILE.read_text(encoding="utf-8"))
    return {p.code: p for p in (Product.model_validate(item) for item in raw["products"])}


def product(code: str) -> Product:
    """The product with this code; KeyError for a code not in the catalog."""
    return products()[code]
