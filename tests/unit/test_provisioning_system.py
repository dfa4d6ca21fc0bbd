"""`python -m services.provisioning system USER`: its usage errors, said before anything is made."""
from __future__ import annotations

import asyncio

import pytest

from services.provisioning.__main__ import main


@pytest.mark.parametrize(("argv", "says"), [
    (["system", "billing system", "--publisher"], "'billing system' is no user name for another system"),
    (["system", "billing-system"], "say what it may do: --publisher, --events-reader or --fulfiller"),
    # One user that may write the submissions and read the events could bind the one exchange into the other.
    (["system", "billing-system", "--publisher", "--events-reader"], "could bind one exchange into the other"),
    (["system", "--publisher"], "USER goes with `system`"),
    (["broker", "billing-system"], "USER goes with `system`"),
])
def test_a_system_user_without_a_good_name_or_a_role_is_a_usage_error(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        asyncio.run(main(argv))
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
