"""Who is asking: `Authorization: Bearer <token>` with a JWT (people, signed with the configured key) or
an API key (the platform's system account). Roles are checked on every view with `requires`."""
from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import wraps

import jwt
from flask import current_app, g, request

from engine.access.scopes import InvalidPrincipal, Principal, principal_problems
from engine.access.api_keys import is_api_key

from api.http.context import current_engine
from api.http.errors import ApiError

ALGORITHM = "HS256"
ISSUER = "gridflow"
MIN_KEY_LENGTH = 32
DEFAULT_TTL = timedelta(hours=8)  # one working day
_CLAIMS = (("grid", "grid_code"), ("unit", "unit"), ("level", "level"), ("area", "area_code"))


def issue_token(principal: Principal, key: str, ttl: timedelta = DEFAULT_TTL, *, now: datetime | None = None) -> str:
    check_signing_key(key)
    problems = principal_problems(principal)
    if problems:
        raise InvalidPrincipal("; ".join(problems))
    now = now or datetime.now(timezone.utc)
    claims = {"iss": ISSUER, "sub": principal.user, "role": principal.role, "iat": now, "exp": now + ttl}
    for claim, attr in _CLAIMS:
        if getattr(principal, attr):
            claims[claim] = getattr(principal, attr)
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def check_signing_key(key: str | None) -> str:
    if not key or len(key) < MIN_KEY_LENGTH:
        raise ValueError(f"GRIDFLOW_JWT_KEY must be set to a secret of at least {MIN_KEY_LENGTH} characters "
                         "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return key


def _unauthorized(en: str, zh: str = "需要有效的身份令牌") -> ApiError:
    return ApiError(401, "unauthorized", zh, en)


def _from_jwt(token: str) -> Principal:
    key = current_app.config.get("GRIDFLOW_JWT_KEY")
    if not key:
        raise _unauthorized("this server accepts no JWTs: GRIDFLOW_JWT_KEY is not configured")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "role"]})
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the token has expired; ask for a new one", "身份令牌已过期") from None
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"the token is not valid: {exc}", "身份令牌无效") from None
    try:
        return Principal(str(claims["sub"]), str(claims["role"]),
                         **{attr: str(claims[c]) for c, attr in _CLAIMS if claims.get(c) is not None})
    except InvalidPrincipal as exc:
        raise _unauthorized(f"the token is incomplete: {exc}", "身份令牌内容不完整") from None


class _KeyCache:
    """API keys looked up within the last seconds. Every request reads the revocation mark (how many keys
    were revoked, and when last), a small aggregate on a small table, and a cached key is used only while the
    mark is the one it was cached under: a revoked key is refused on the next request, on every worker."""

    def __init__(self, ttl: float = 30.0):
        self.ttl = ttl
        self._found: dict[str, tuple[float, object, Principal | None]] = {}
        self._lock = threading.Lock()

    def principal(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        keys = current_engine().api_keys
        mark = keys.revocations()
        with self._lock:
            hit = self._found.get(digest)
        if hit is not None and hit[0] > now and hit[1] == mark:
            return hit[2]
        principal = keys.principal(key)
        with self._lock:
            if len(self._found) > 10_000:
                self._found.clear()
            self._found[digest] = (now + self.ttl, mark, principal)
        return principal


def key_cache() -> _KeyCache:
    return current_app.extensions["gridflow.api_keys"]


def authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized("send `Authorization: Bearer <token>`; `gridflow token` issues one in development")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be `Bearer <token>`")
    token = token.strip()
    if is_api_key(token):
        principal = key_cache().principal(token)
        if principal is None:
            raise _unauthorized("unknown or revoked API key", "API 密钥无效或已吊销")
        return principal
    return _from_jwt(token)


def current_principal() -> Principal:
    if "principal" not in g:
        g.principal = authenticate()
    return g.principal


def requires(*roles: str):
    """Only these roles (any authenticated principal when none are named) may call the view."""
    allowed = frozenset(roles)

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if allowed and principal.role not in allowed:
                raise ApiError(403, "forbidden", "您的角色无权执行此操作",
                               f"the {principal.role} role may not do this; allowed: {', '.join(sorted(allowed))}")
            return view(*args, **kwargs)
        wrapper.required_roles = allowed  # read by the role table test and the docs
        return wrapper
    return decorate
