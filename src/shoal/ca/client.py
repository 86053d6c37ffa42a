"""Client side of the control plane's TLS port: a verified channel and the CSR call."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import struct_pb2

from shoal.ca.identity import CONTROL_PLANE_DNS
from shoal.ca.service import METHOD


@dataclass(frozen=True)
class CertificateReply:
    chain: tuple[str, ...]  # leaf first
    roots: tuple[str, ...]


def secure_channel(address: str, roots_pem: str) -> grpc.aio.Channel:
    """A channel that trusts only `roots_pem` and expects the control plane's certificate.

    `address` may list several replicas, `ip:port,ip:port`: gRPC then tries them in order."""
    creds = grpc.ssl_channel_credentials(root_certificates=roots_pem.encode())
    target = f"ipv4:{address}" if "," in address else address
    return grpc.aio.secure_channel(
        target, creds, options=[("grpc.ssl_target_name_override", CONTROL_PLANE_DNS)]
    )


async def create_certificate(
    channel: grpc.aio.Channel, csr_pem: str, validity_s: float, token: str, deadline_s: float = 10
) -> CertificateReply:
    call = channel.unary_unary(
        METHOD,
        request_serializer=struct_pb2.Struct.SerializeToString,
        response_deserializer=struct_pb2.Struct.FromString,
    )
    request = struct_pb2.Struct()
    request.update({"csr": csr_pem, "validity_seconds": validity_s})
    reply: struct_pb2.Struct = await call(
        request, metadata=(("authorization", f"Bearer {token}"),), timeout=deadline_s
    )
    chain = tuple(str(v.string_value) for v in reply.fields["cert_chain"].list_value.values)
    roots = tuple(str(v.string_value) for v in reply.fields["roots"].list_value.values)
    return CertificateReply(chain=chain, roots=roots)
