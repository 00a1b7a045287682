"""The CLI adds the flag for the setting an error names; core messages carry none."""

from maskdesk.cli_messages import describe
from maskdesk.core.errors import ImageError, ModelError


def test_flag_is_added_for_the_setting_the_error_names() -> None:
    exc = ImageError(
        "a.png is 200 MP, over the limit; raise the limit.", setting="max_pixels", value="200000000"
    )
    assert describe(exc, {"max_pixels": "--max-pixels"}) == (
        "a.png is 200 MP, over the limit; raise the limit (--max-pixels 200000000)."
    )


def test_a_setting_the_command_lacks_adds_nothing() -> None:
    exc = ModelError("No weights; give a model file you have.", setting="model")
    assert describe(exc, {"base": "--base PATH"}) == "No weights; give a model file you have."
    assert describe(exc, {"model": "--model PATH"}) == (
        "No weights; give a model file you have (--model PATH)."
    )
