"""Runtime JWT keys: the `kid` a token is minted with, the key verification picks by it, tokens
minted before kids, unknown kids, and the settings that list the keys that only verify."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api_shim import tokens
from dispatchyard.settings import Settings

OLD, NEW, OTHER = ("old-secret-" * 4, "new-secret-" * 4, "unrelated-secret-" * 3)
WORKER = {"id": "wrk_1", "orgId": "org_1", "projects_list": "all", "regKeyId": "key_1"}


def hs(current: str, *verify: str) -> Settings:
    return Settings(jwt_secret=current, jwt_verify_secrets=list(verify))


def kid(token: str) -> str | None:
    kid: str | None = jwt.get_unverified_header(token).get("kid")
    return kid


def without_kid(settings: Settings, key: str, alg: str = "HS256") -> str:
    """A token as minted before kids: the same claims, no `kid` header."""
    _, claims = tokens.mint(settings, WORKER)
    return jwt.encode(claims, key, algorithm=alg)


def test_a_token_carries_the_kid_of_the_current_key():
    token, _ = tokens.mint(hs(NEW, OLD), WORKER)
    assert kid(token) == tokens.kid_of("HS256", NEW) != tokens.kid_of("HS256", OLD)
    assert len(kid(token) or "") == 16 and NEW not in token


def test_tokens_of_the_previous_key_verify_until_it_is_dropped():
    old_token, _ = tokens.mint(hs(OLD), WORKER)
    assert tokens.verify(hs(NEW, OLD), old_token)["sub"] == "wrk_1"  # rotated
    assert tokens.verify(hs(OLD, NEW), old_token)["sub"] == "wrk_1"  # next key announced
    with pytest.raises(tokens.UnknownKid):
        tokens.verify(hs(NEW), old_token)  # dropped
    with pytest.raises(jwt.InvalidTokenError):
        tokens.verify(hs(NEW), old_token)  # as auth.py catches it: 401


def test_a_kid_no_key_has_is_refused():
    _, claims = tokens.mint(hs(NEW), WORKER)
    forged = jwt.encode(claims, NEW, algorithm="HS256", headers={"kid": "0123456789abcdef"})
    with pytest.raises(tokens.UnknownKid):
        tokens.verify(hs(NEW, OLD), forged)
    # A kid that is no string: refused as it is read (PyJWT), a 401 as any bad token.
    rest = jwt.encode(claims, NEW, algorithm="HS256").partition(".")[2]
    header = {"alg": "HS256", "typ": "JWT", "kid": ["x"]}
    odd = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidTokenError):
        tokens.verify(hs(NEW, OLD), f"{odd}.{rest}")


def test_the_kid_picks_the_key_and_no_other():
    """A token naming the old key's kid but signed with the new key is refused: the kid is not
    a hint to try other keys."""
    _, claims = tokens.mint(hs(NEW), WORKER)
    mixed = jwt.encode(claims, NEW, algorithm="HS256", headers={"kid": tokens.kid_of("HS256", OLD)})
    with pytest.raises(jwt.InvalidSignatureError):
        tokens.verify(hs(NEW, OLD), mixed)


def test_a_token_without_kid_is_tried_against_every_key():
    settings = hs(NEW, OLD)
    assert tokens.verify(settings, without_kid(settings, OLD))["org"] == "org_1"
    assert tokens.verify(settings, without_kid(settings, NEW))["org"] == "org_1"
    with pytest.raises(jwt.InvalidSignatureError):
        tokens.verify(settings, without_kid(settings, OTHER))
    with pytest.raises(jwt.InvalidSignatureError):
        tokens.verify(hs(NEW), without_kid(settings, OLD))  # dropped


def test_alg_stays_pinned_with_a_known_kid():
    settings = hs(NEW, OLD)
    _, claims = tokens.mint(settings, WORKER)
    for alg in ("HS512", "none"):
        key = None if alg == "none" else NEW
        token = jwt.encode(claims, key, algorithm=alg, headers={"kid": tokens.kid_of("HS256", NEW)})
        with pytest.raises(jwt.InvalidAlgorithmError):
            tokens.verify(settings, token)


def pem_pair(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_public_key_rotation(alg):
    def new_key() -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        if alg == "RS256":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    (old_private, old_public), (new_private, new_public) = pem_pair(new_key()), pem_pair(new_key())

    def keys(private: str, public: str, *verify: str) -> Settings:
        return Settings(
            jwt_algorithm=alg,
            jwt_private_key=private,
            jwt_public_key=public,
            jwt_verify_public_keys=list(verify),
        )

    old_token, _ = tokens.mint(keys(old_private, old_public), WORKER)
    rotated = keys(new_private, new_public, old_public)
    new_token, _ = tokens.mint(rotated, WORKER)
    assert kid(new_token) == tokens.kid_of(alg, new_public) != kid(old_token)
    assert tokens.verify(rotated, old_token)["sub"] == tokens.verify(rotated, new_token)["sub"]
    with pytest.raises(tokens.UnknownKid):
        tokens.verify(keys(new_private, new_public), old_token)


def test_a_public_key_has_one_kid_whatever_its_pem_form():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1 = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert tokens.kid_of("RS256", spki.decode()) == tokens.kid_of("RS256", pkcs1.decode())


@pytest.mark.parametrize(
    "value",
    [f'["{OLD}", "{OTHER}"]', f"{OLD},{OTHER}", f" {OLD} , {OTHER} ,"],
)
def test_verify_secrets_from_the_environment(monkeypatch, value):
    monkeypatch.setenv("DISPATCHYARD_JWT_SECRET", NEW)
    monkeypatch.setenv("DISPATCHYARD_JWT_VERIFY_SECRETS", value)
    settings = Settings()
    assert [s.get_secret_value() for s in settings.jwt_verify_secrets] == [OLD, OTHER]
    assert [k for k, _ in tokens.keyring(settings)] == [
        tokens.kid_of("HS256", key) for key in (NEW, OLD, OTHER)
    ]


def test_the_current_key_listed_again_is_one_key():
    assert len(tokens.keyring(hs(NEW, NEW, OLD))) == 2
