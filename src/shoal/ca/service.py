"""The CA's gRPC service, in the shape of Istio's `IstioCertificateService`.

`/shoal.ca.v1.CertificateService/CreateCertificate` takes a `google.protobuf.Struct`
`{csr: PEM, validity_seconds: N}` and answers `{cert_chain: [PEM...], roots: [PEM...]}`
(leaf first). The caller proves who it is with `authorization: Bearer <token>`; the CSR's only
URI SAN must be the SPIFFE id bound to that token, otherwise PERMISSION_DENIED. Struct keeps
the wire self-describing without a protoc step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import struct_pb2

from shoal.ca.authority import CertificateAuthority
from shoal.ca.certs import CsrError
from shoal.ca.identity import Identity
from shoal.ca.tokens import TokenIssuer

log = logging.getLogger("shoal.ca")

SERVICE = "shoal.ca.v1.CertificateService"
# `authorization` metadata value -> the caller's identity; ValueError if it proves none,
# ConnectionError if it cannot be checked now (a Kubernetes TokenReview while the API is away)
CallerAuthenticator = Callable[[str | None], Awaitable[Identity]]
METHOD = f"/{SERVICE}/CreateCertificate"


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return None


class CertificateService:
    def __init__(
        self,
        ca: CertificateAuthority,
        tokens: TokenIssuer,
        authenticate: CallerAuthenticator | None = None,
    ) -> None:
        self.ca = ca
        self.tokens = tokens
        self.authenticate = authenticate or self._shoal_token
        self.issued = 0
        self.refused = 0  # CSRs refused (bad token or CSR): the control plane's /metrics

    async def _shoal_token(self, header: str | None) -> Identity:
        return self.tokens.verify_header(header)

    async def create(
        self, request: struct_pb2.Struct, context: grpc.aio.ServicerContext
    ) -> struct_pb2.Struct:
        started = time.perf_counter()
        try:
            identity = await self.authenticate(authorization(context))
        except ValueError as err:  # TokenError, a refused TokenReview
            log.warning("CSR refused: %s", err)
            self.refused += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
            raise  # abort raises; this keeps type checkers honest
        except ConnectionError as err:
            log.warning("CSR not checked: %s", err)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
            raise
        fields = dict(request.fields)
        csr = fields["csr"].string_value if "csr" in fields else ""
        validity = fields["validity_seconds"].number_value if "validity_seconds" in fields else 0
        try:
            issued = self.ca.sign(csr.encode(), identity, validity)
        except CsrError as err:
            log.warning("CSR from %s refused: %s", identity, err)
            self.refused += 1
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
            raise
        self.issued += 1
        log.info(
            "issued certificate for %s until %s in %.1f ms",
            identity,
            issued.not_after.isoformat(timespec="seconds"),
            (time.perf_counter() - started) * 1000,
        )
        out = struct_pb2.Struct()
        out.update({"cert_chain": list(issued.chain), "roots": list(issued.roots)})
        return out

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateCertificate": grpc.unary_unary_rpc_method_handler(
                    self.create,
                    request_deserializer=struct_pb2.Struct.FromString,
                    response_serializer=struct_pb2.Struct.SerializeToString,
                )
            },
        )
