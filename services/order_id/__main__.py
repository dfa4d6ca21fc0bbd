"""`python -m services.order_id`: issues and cancels Arcserve order IDs."""
from shared.runtime import run
from services.order_id.bootstrap import build

run(build)
