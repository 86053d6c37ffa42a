"""The CA's gRPC service, in the shape of Istio's `IstioCertificateService`.

`/shoal.ca.v1.CertificateService/CreateCertificate` takes a `google.protobuf.Struct`
`{csr: PEM, validity_seconds: N}` and answers `{cert_chain: [PEM...], roots: [PEM...]}`
(leaf first). The caller proves who it is with `authorization: Bearer <token>`; the CSR's only
URI SAN must be the SPIFFE id bound to that token, otherwise PERMISSION_DENIED. A node proxy's
token (nodetokens.py) names several identities, those of the pods on its node: the CSR's SAN
must be one of them. Struct keeps the wire self-describing without a protoc step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import struct_pb2

from shoal.ca.authority import CertificateAuthority
from shoal.ca.certs import CsrError, csr_public_key
from shoal.ca.identity import Identity, IdentityError
from shoal.ca.nodetokens import NodeGrant, NodeTokens, is_node_token
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
        node_tokens: NodeTokens | None = None,
    ) -> None:
        self.ca = ca
        self.tokens = tokens
        self.node_tokens = node_tokens
        self.authenticate = authenticate or self._shoal_token
        self.issued = 0
        self.refused = 0  # CSRs refused (bad token or CSR): the control plane's /metrics

    async def _shoal_token(self, header: str | None) -> Identity:
        return self.tokens.verify_header(header)

    async def create(
        self, request: struct_pb2.Struct, context: grpc.aio.ServicerContext
    ) -> struct_pb2.Struct:
        started = time.perf_counter()
        header = authorization(context)
        if self.node_tokens is not None and is_node_token(header):
            return await self._create_for_node(request, context, header, started)
        try:
            identity = await self.authenticate(header)
        except ValueError as err:  # TokenError, a refused TokenReview
            log.warning("CSR refused: %s", err)
            self.refused += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
            raise  # abort raises; this keeps type checkers honest
        except ConnectionError as err:
            log.warning("CSR not checked: %s", err)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
            raise
        csr, validity = _fields(request)
        return await self._sign(
            context, csr, identity, validity=validity, started=started, caller=str(identity)
        )

    async def _create_for_node(
        self,
        request: struct_pb2.Struct,
        context: grpc.aio.ServicerContext,
        header: str | None,
        started: float,
    ) -> struct_pb2.Struct:
        """A node proxy asks for one of its pods' identities: the one its CSR names, if the
        node token lists it; any other is refused (PERMISSION_DENIED)."""
        assert self.node_tokens is not None
        try:
            grant = self.node_tokens.verify_header(header)
        except ValueError as err:
            log.warning("node CSR refused: %s", err)
            self.refused += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
            raise
        csr, validity = _fields(request)
        try:
            identity = _wanted(csr, grant)
        except CsrError as err:
            log.warning("CSR from node %s refused: %s", grant.node, err)
            self.refused += 1
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
            raise
        caller = f"node {grant.node}"
        return await self._sign(
            context, csr, identity, validity=validity, started=started, caller=caller
        )

    async def _sign(
        self,
        context: grpc.aio.ServicerContext,
        csr: str,
        identity: Identity,
        *,
        validity: float,
        started: float,
        caller: str,
    ) -> struct_pb2.Struct:
        try:
            issued = self.ca.sign(csr.encode(), identity, validity)
        except CsrError as err:
            log.warning("CSR from %s refused: %s", caller, err)
            self.refused += 1
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
            raise
        self.issued += 1
        log.info(
            "issued certificate for %s to %s until %s in %.1f ms",
            identity,
            caller,
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


def _fields(request: struct_pb2.Struct) -> tuple[str, float]:
    fields = dict(request.fields)
    csr = fields["csr"].string_value if "csr" in fields else ""
    validity = fields["validity_seconds"].number_value if "validity_seconds" in fields else 0
    return csr, validity


def _wanted(csr: str, grant: NodeGrant) -> Identity:
    """The identity a node's CSR asks for, if its token lists it (else CsrError)."""
    _, uris = csr_public_key(csr.encode())
    if len(uris) != 1:
        raise CsrError(f"CSR must name exactly one URI SAN, got {uris or 'none'}")
    try:
        identity = Identity.parse(uris[0])
    except IdentityError as err:
        raise CsrError(str(err)) from None
    if not grant.allows(identity):
        raise CsrError(
            f"node {grant.node} may not obtain {identity.spiffe_id}: no pod on that node runs "
            f"as it (its pods: {', '.join(sorted(str(i) for i in grant.identities)) or 'none'})"
        )
    return identity
