"""Service-account usernames and bearer headers, as the TokenReview authenticator reads them."""

from __future__ import annotations

import pytest

from shoal.kube.tokenreview import TokenRejected, bearer, parse_username


def test_the_identity_is_the_reviewed_username() -> None:
    assert parse_username("system:serviceaccount:shop:bookinfo-reviews") == (
        "shop",
        "bookinfo-reviews",
    )


@pytest.mark.parametrize(
    "username",
    [
        "alice",
        "system:serviceaccount:shop",
        "system:serviceaccount::x",
        "system:serviceaccount:a:b:c",
    ],
)
def test_anything_else_is_refused(username: str) -> None:
    with pytest.raises(TokenRejected):
        parse_username(username)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "token"])
def test_a_bearer_token_is_required(header: str | None) -> None:
    with pytest.raises(TokenRejected):
        bearer(header)


def test_bearer_takes_the_token() -> None:
    assert bearer("Bearer  eyJabc ") == "eyJabc"
