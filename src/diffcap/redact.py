"""Redact secrets from text before it is written anywhere (store, outputs, logs, pages).

Three kinds of secret are removed:

- user info in URLs: ``http://user:pw@host/v1`` -> ``http://[redacted]@host/v1``;
- text that looks like a credential: ``sk-...`` / ``hf_...`` / ``ghp_...`` keys, JWTs,
  ``Bearer``/``Basic`` authorisation values, ``api_key=...``-style query parameters;
- known secret values: ``extra_secrets``, values registered with :func:`register_secret`
  (the configured API key) and the values of the usual key variables (``OPENAI_API_KEY``...).

    redact("401 for key sk-abc123def456ghi789jkl")    # '401 for key [redacted]'
    redact("http://u:pw@host/v1")                     # 'http://[redacted]@host/v1'
    redact("token mysecretvalue", extra_secrets=["mysecretvalue"])   # 'token [redacted]'
    redact_data({"api_key": "x", "model": "m"})       # {'api_key': '[redacted]', 'model': 'm'}
    Redactor().data(record)  # the same, secrets looked up once for many records
    install_log_filter()     # every record the CLI logs goes through redact()
    register_url_secrets("http://u:pw123456@host/v1")   # 'pw123456' is redacted alone too
    url_credentials("http://u:pw@host/v1")              # ('u', 'pw')
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

# Environment variables whose values are credentials wherever they turn up.
SECRET_ENV = (
    "OPENAI_API_KEY",
    "DIFFCAP_API_KEY",
    "ANTHROPIC_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_HUB_TOKEN",
)
# A secret shorter than this is not replaced as a literal: it would blank ordinary words.
MIN_SECRET_LEN = 6

# scheme://userinfo@ — greedy up to the last "@" before the path, so a raw "@" inside a
# password does not leave its tail behind.
_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^/\s?#@]*(?:@[^/\s?#@]*)*)@"
)

_KEY_PATTERNS = [
    # OpenAI / Anthropic style (sk-, sk-proj-, sk-ant-): long, with at least one digit
    r"(?<![\w-])sk-(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9_\-]{16,}",
    r"(?<![\w-])hf_[A-Za-z0-9]{16,}",  # Hugging Face
    r"(?<![\w-])gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub
    r"(?<![\w-])xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
    r"(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])",  # AWS access key id
    r"(?<![\w-])AIza[0-9A-Za-z_\-]{35}",  # Google API key
    r"(?<![\w-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
]
_KEYS = re.compile("|".join(f"(?:{p})" for p in _KEY_PATTERNS))
# "Bearer abc", "Authorization: Basic abc", "authorization=abc": keep the scheme word.
_AUTH = re.compile(
    r"(?P<lead>\b(?:Bearer|Basic|Token)\s+|\bAuthorization\s*[:=]\s*(?:(?:Bearer|Basic|Token)\s+)?)"
    r"(?P<value>[A-Za-z0-9._~+/=\-]{6,})",
    re.IGNORECASE,
)
# api_key=..., "access_token": "...", password: ... in query strings, JSON or log text.
_PARAM = re.compile(
    r"(?P<lead>\b(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|"
    r"client[_-]?secret|secret|password|passwd)\b[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>[^\s\"'&,;}]{4,})",
    re.IGNORECASE,
)

# Cheap substring checks before each pattern (the patterns scan every position: a caption
# without any of these words or prefixes skips them). Kept in step with the patterns above.
_KEY_PREFIXES = ("sk-", "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "AKIA", "AIza", "eyJ")
_AUTH_WORDS = ("bearer", "basic", "token", "authori")
_PARAM_WORDS = ("key", "token", "secret", "passw")

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every later :func:`redact` call in this process (e.g. the
    configured API key). Values shorter than :data:`MIN_SECRET_LEN` are ignored."""
    if value and len(value) >= MIN_SECRET_LEN:
        with _lock:
            _registered.add(value)


def url_credentials(url: str | None) -> tuple[str, str] | None:
    """(user, password) of a URL with user info (``http://user:pw@host``), else None."""
    if not url or "@" not in url:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.username is None and parts.password is None:
        return None
    return parts.username or "", parts.password or ""


def register_url_secrets(url: str | None) -> None:
    """Register the user info of ``url`` (both raw and percent-decoded) as secrets: a
    server that echoes the password alone, or its Basic auth value, is redacted too."""
    creds = url_credentials(url)
    if creds is None:
        return
    raw = urllib.parse.urlsplit(url or "").netloc.rpartition("@")[0]
    plain = urllib.parse.unquote(raw)
    basic = base64.b64encode(plain.encode()).decode("ascii")  # what Basic auth sends
    for value in (creds[1], urllib.parse.unquote(creds[1]), raw, plain, basic):
        register_secret(value)


def known_secrets(extra: Iterable[str | None] = ()) -> list[str]:
    """Literal secrets to replace: ``extra``, registered values, key variables; longest first
    (so a key that contains another is replaced whole)."""
    with _lock:
        found = set(_registered)
    found.update(os.environ.get(name) or "" for name in SECRET_ENV)
    found.update(s for s in extra if s)
    return sorted((s for s in found if len(s) >= MIN_SECRET_LEN), key=len, reverse=True)


def scrub_url_userinfo(text: str) -> str:
    """Replace the user info of every URL in ``text``: ``s://user:pw@h`` -> ``s://[redacted]@h``."""
    if "@" not in text or "://" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def url_without_password(url: str) -> str:
    """A URL safe to log and store: no password in its user info or query
    (``postgresql://u:pw@h:5432/db?password=x`` -> ``postgresql://u@h:5432/db``)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        info, hosts = netloc.rsplit("@", 1)
        user = info.split(":", 1)[0]
        netloc = f"{user}@{hosts}" if user else hosts
    query = urllib.parse.urlencode(
        [
            (k, v)
            for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
            if k.lower() not in ("password", "passfile")
        ]
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact(text: str, extra_secrets: Iterable[str | None] = ()) -> str:
    """``text`` with URL user info, key-like tokens and known secret values replaced."""
    return _redact(text, known_secrets(extra_secrets)) if text else text


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = scrub_url_userinfo(text)
    if any(p in text for p in _KEY_PREFIXES):
        text = _KEYS.sub(REDACTED, text)
    lower = text.lower()
    if any(w in lower for w in _AUTH_WORDS):
        text = _AUTH.sub(lambda m: m.group("lead") + REDACTED, text)
    if any(w in lower for w in _PARAM_WORDS):
        text = _PARAM.sub(lambda m: m.group("lead") + REDACTED, text)
    return text


def redact_optional(text: str | None, extra_secrets: Iterable[str | None] = ()) -> str | None:
    """:func:`redact` that passes ``None`` through (nullable store columns)."""
    return None if text is None else redact(text, extra_secrets)


# Field names that carry credentials. "max_tokens"/"prompt_tokens" are counts, not secrets,
# so "token" only matches as a whole name or with an access/auth/bearer-like prefix.
_SECRET_NAME = re.compile(
    r"(api[-_]?key|apikey|secret|passw(or)?d|authori[sz]ation|credential|private[-_]?key|"
    r"access[-_]?key|cookie|^key$|^token$|(access|auth|bearer|refresh|session|id|hf|api)[-_]?token)",
    re.IGNORECASE,
)


def redact_data(obj: Any, extra_secrets: Iterable[str | None] = ()) -> Any:
    """A deep copy of a JSON-like value: fields named like credentials are replaced whole,
    every string goes through :func:`redact`."""
    return _redact_data(obj, known_secrets(extra_secrets))


def _redact_data(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str) and _SECRET_NAME.search(k) and v not in (None, "", False):
                out[k] = REDACTED
            else:
                out[k] = _redact_data(v, secrets)
        return out
    if isinstance(obj, (list, tuple)):
        return [_redact_data(v, secrets) for v in obj]
    if isinstance(obj, str):
        return _redact(obj, secrets) if obj else obj
    return obj


class Redactor:
    """:func:`redact` / :func:`redact_data` with the known secrets looked up once, for loops
    over many records (the viewer loading 50k records).

        r = Redactor()
        clean = [r.data(rec["provenance"]) for rec in records]
    """

    def __init__(self, extra_secrets: Iterable[str | None] = ()) -> None:
        self.secrets = known_secrets(extra_secrets)

    def text(self, text: str) -> str:
        return _redact(text, self.secrets) if text else text

    def data(self, obj: Any) -> Any:
        return _redact_data(obj, self.secrets)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the rendered message and any traceback text.

    Put it on handlers (a filter on a logger does not see its children's records)."""

    def __init__(self, extra_secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.extra = list(extra_secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        clean = redact(message, self.extra)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.extra)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.extra)
        return True


def install_log_filter(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one :class:`RedactingFilter` to ``logger`` (default ``diffcap``) and to every
    handler of the root logger, once (calling again does not stack filters)."""
    target = logger or logging.getLogger("diffcap")
    filt = next((f for f in target.filters if isinstance(f, RedactingFilter)), None)
    if filt is None:
        filt = RedactingFilter()
        target.addFilter(filt)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(filt)
    return filt
