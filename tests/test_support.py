"""`require`: a missing dependency skips a test on a developer's machine and fails it in CI."""

from __future__ import annotations

import pytest

from tests.support import require, require_tool


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_require_fails_in_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"^no frobnicator \(required in CI\)$"):
        require(False, "no frobnicator")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_require_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match=r"^no frobnicator$"):
        require(False, "no frobnicator")


def test_require_lets_a_test_go_on_when_the_condition_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    require(True, "never shown")


def test_require_tool_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_tool("no-such-tool-anywhere", "some-package")
    assert str(skipped.value.msg) == (
        "no-such-tool-anywhere not found: install it with `apt-get install some-package` "
        "(.ci/run does)"
    )
    assert require_tool("sh", "dash").endswith("/sh")
