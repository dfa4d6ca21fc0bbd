"""The order-ID service's settings (docs/configuration.md): the shared runtime's
(shared/config.py), its ports, and the issuance simulator's delay (in simulator mode)."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ConsumerSettings, Fulfilment, Port


class OrderIdSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="ORDER_ID_")

    port: Port = Field(8083, description="the order-ID service's probes")
    metrics_port: Port = Field(9083, description="the order-ID service's operator port: /metrics, /healthz, /readyz")
    fulfilment: Fulfilment = "simulator"
    sim_new_delay_s: float = Field(0.0, ge=0, validation_alias="ARCSERVE_SIM_NEW_DELAY_S",
                                   description="the issuance simulator's delay before it issues an order ID")
