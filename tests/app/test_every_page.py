"""What every page shares: bad or unknown URL parameters are a visible message on the page, never an error
response (the server once answered /labs?embed=NaN with FastAPI's 422 JSON)."""

import pytest
from nicegui.testing import User

from loralens.app.site import PAGES


@pytest.mark.parametrize("path", [page.path for page in PAGES])
async def test_bad_embed_and_unknown_parameters_are_named_on_the_page(user: User, path: str) -> None:
    await user.open(f"{path}?embed=NaN&zzz=1")
    await user.should_see("URL parameter embed: expected true or false, got 'NaN'; using false")
    await user.should_see("URL parameter zzz: not used by this page")
