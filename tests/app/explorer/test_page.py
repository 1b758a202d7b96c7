"""The Explorer page in-process (NiceGUI's user fixture): what a person reads after each control change."""

from nicegui.testing import User


def _set(user: User, marker: str, value: object) -> None:
    element = next(iter(user.find(marker=marker).elements))
    element.value = value


async def test_default_view(user: User) -> None:
    await user.open("/")
    for text in ("16,777,216", "65,536", "0.39%", "2,048", "W′ = W + (16/8)·B·A = W + 2.00·B·A"):
        await user.should_see(text)


async def test_rank_slider_updates_everything(user: User) -> None:
    await user.open("/?d=4096&k=4096&r=8")
    _set(user, "rank", 16)
    await user.should_see("131,072")
    await user.should_see("0.78%")
    await user.should_see("W′ = W + (16/16)·B·A = W + 1.00·B·A")


async def test_past_break_even_warns(user: User) -> None:
    await user.open("/?d=16&k=16&r=12")
    await user.should_see("past the break-even rank dk/(d+k) = 8")
    await user.should_see("saves nothing")
    await user.should_not_see("-100%")


async def test_bad_url_values_are_reported_and_page_still_works(user: User) -> None:
    await user.open("/?d=abc&r=0")
    await user.should_see("URL parameter d: expected a number, got 'abc'; using 4096")
    await user.should_see("URL parameter r: must be at least 1; using 1")
    await user.should_see("8,192")  # r = 1 on 4096 x 4096: 1 x (4096 + 4096)


async def test_typed_rank_out_of_range_is_refused_beside_the_control(user: User) -> None:
    await user.open("/?d=64&r=4")
    _set(user, "rank-input", 65)
    await user.should_see("r: must be a whole number from 1 to 64; kept 4")
    await user.should_see("512")


async def test_square_lock_and_rectangular_layers(user: User) -> None:
    await user.open("/?d=11008&k=4096&r=16")
    await user.should_see("45,088,768")  # 11008 x 4096
    await user.should_see("241,664")  # 16 x (11008 + 4096)


async def test_real_matrices_at_init_and_after_training(user: User) -> None:
    await user.open("/?d=64&k=64&r=8")
    await user.should_see("0 of 64 are non-zero")
    _set(user, "trained", True)
    await user.should_see("8 of 64 are non-zero")


async def test_large_layer_offers_one_click_to_small_matrices(user: User) -> None:
    await user.open("/")
    await user.should_see("Heatmaps of the actual values are drawn for d, k ≤ 64")
    user.find("Show a 64 × 64 layer").click()
    await user.should_see("0 of 64 are non-zero")
    await user.should_see("4,096")


async def test_each_tab_has_its_own_state(create_user) -> None:  # type: ignore[no-untyped-def]
    first, second = create_user(), create_user()
    await first.open("/?d=64&r=4")
    await second.open("/?d=64&r=2")
    _set(first, "rank", 8)
    await first.should_see("1,024")
    await second.should_see("256")
    await second.should_not_see("1,024")


async def test_real_model_link_carries_rank_and_alpha(user: User) -> None:
    await user.open("/?d=1024&k=1024&r=16&alpha=32")
    link = next(iter(user.find(marker="to-models").elements))
    assert link.props["href"] == "/models?model=llama-2-7b&r=16&alpha=32"
    await user.open(link.props["href"])
    await user.should_see("Llama 2 7B")
