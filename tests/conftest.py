from __future__ import annotations

import pytest
from hypothesis import settings

# The machines that run the tests are shared: a per-example deadline measures
# their load, not the code.  Property tests check results, never timing.
settings.register_profile("synctree", deadline=None)
settings.load_profile("synctree")


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return str(request.param)
