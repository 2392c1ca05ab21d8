"""How the client and the worker reach a node: a token and TLS.

* ``token`` (default ``$CEREBELUM_TOKEN``) is sent as
  ``authorization: Bearer <token>`` metadata on every call. It is passed
  per call rather than as call credentials, since gRPC refuses call
  credentials on an insecure channel (a loopback node without TLS).
* ``tls_ca`` (a PEM CA file) makes the channel a TLS one that verifies the
  node's certificate and name (the host of ``server``); ``tls_cert`` and
  ``tls_key`` add a client certificate (mutual TLS).
"""

from __future__ import annotations

import os

import grpc

TOKEN_ENV = "CEREBELUM_TOKEN"


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"cannot read {what} {path!r}: {e}") from None


class Connection:
    """The security settings shared by a Client or a Worker's channels."""

    def __init__(self, server: str, token: str | None = None,
                 tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None):
        self.server = server
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        self.token = token.strip() if token else None
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together "
                             "(a client certificate and its key)")
        if tls_cert is not None and tls_ca is None:
            raise ValueError("tls_cert/tls_key need tls_ca (the CA that "
                             "signed the node's certificate)")
        self.tls_ca = tls_ca
        self._creds = None
        if tls_ca is not None:
            self._creds = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca, "tls_ca"),
                private_key=_read(tls_key, "tls_key") if tls_key else None,
                certificate_chain=_read(tls_cert, "tls_cert")
                if tls_cert else None)
        #: per-call metadata (None without a token)
        self.metadata = (("authorization", f"Bearer {self.token}"),) \
            if self.token else None

    def channel(self, options=None):
        """A blocking channel to the node."""
        if self._creds is not None:
            return grpc.secure_channel(self.server, self._creds,
                                       options=options or [])
        return grpc.insecure_channel(self.server, options=options or [])

    def aio_channel(self, options=None):
        """An asyncio channel to the node."""
        if self._creds is not None:
            return grpc.aio.secure_channel(self.server, self._creds,
                                           options=options or [])
        return grpc.aio.insecure_channel(self.server, options=options or [])

    def hint(self, code) -> str:
        """What to check when the node refuses the call with ``code``."""
        if code == grpc.StatusCode.UNAUTHENTICATED:
            if not self.token:
                return (" (no token was sent: pass token=... or set "
                        f"${TOKEN_ENV})")
            return " (the token is unknown, expired or revoked)"
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return " (the token's role or scopes do not allow this call)"
        if code == grpc.StatusCode.UNAVAILABLE and self.tls_ca:
            return (f" (TLS: is the node's certificate signed by the CA in "
                    f"{self.tls_ca} and valid for the host of "
                    f"{self.server}?)")
        return ""
