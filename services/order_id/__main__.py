"""`python -m services.order_id`: issues and cancels Arcserve order IDs."""
from services.order_id.bootstrap import build
from services.order_id.boundary import BOUNDARY
from services.order_id.config import OrderIdSettings
from shared.runtime import run

run(build, BOUNDARY, OrderIdSettings)
