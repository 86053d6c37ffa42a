"""Capture rules from Istio's annotations, as text (agent/capture.py); no namespace needed."""

from __future__ import annotations

import pytest

from shoal.agent.capture import CaptureError, from_annotations, iptables_rules

A = "traffic.sidecar.istio.io/"


def _output_rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A SHOAL_OUTPUT")]


def test_default_capture_is_istios_order() -> None:
    text = iptables_rules(from_annotations({}))
    assert text.startswith("*nat\n") and text.endswith("COMMIT\n")
    assert "-A SHOAL_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006" in text
    assert "-A SHOAL_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in text
    inbound = [line for line in text.splitlines() if line.startswith("-A SHOAL_INBOUND")]
    assert [line.split()[-3] for line in inbound[:-1]] == ["15008", "15020", "15021", "15090"]
    assert inbound[-1] == "-A SHOAL_INBOUND -p tcp -j SHOAL_IN_REDIRECT"
    out = _output_rules(text)
    assert out[0] == "-A SHOAL_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN"
    assert "--uid-owner 1337 -j SHOAL_IN_REDIRECT" in out[1] and "! -d 127.0.0.1/32" in out[1]
    assert out[2] == "-A SHOAL_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN"
    assert out[3] == "-A SHOAL_OUTPUT -m owner --uid-owner 1337 -j RETURN"
    assert out[-2:] == [
        "-A SHOAL_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A SHOAL_OUTPUT -j SHOAL_REDIRECT",
    ]


def test_annotations_shape_the_rules() -> None:
    cfg = from_annotations(
        {
            A + "includeInboundPorts": "8080, 9090",
            A + "excludeInboundPorts": "22",
            A + "includeOutboundIPRanges": "10.96.0.0/12",
            A + "excludeOutboundIPRanges": "10.96.5.0/24",
            A + "includeOutboundPorts": "3306",
            A + "excludeOutboundPorts": "5432",
            "other/annotation": "ignored",
        }
    )
    text = iptables_rules(cfg)
    assert "-A SHOAL_INBOUND -p tcp --dport 22 -j RETURN" in text
    assert "-A SHOAL_INBOUND -p tcp --dport 8080 -j SHOAL_IN_REDIRECT" in text
    assert "-A SHOAL_INBOUND -p tcp -j SHOAL_IN_REDIRECT" not in text
    out = _output_rules(text)
    # excluded ports first: they hold for the proxy's own traffic too
    assert out[0] == "-A SHOAL_OUTPUT -p tcp --dport 5432 -j RETURN"
    assert out[-3:] == [
        "-A SHOAL_OUTPUT -p tcp --dport 3306 -j SHOAL_REDIRECT",
        "-A SHOAL_OUTPUT -d 10.96.5.0/24 -j RETURN",
        "-A SHOAL_OUTPUT -d 10.96.0.0/12 -j SHOAL_REDIRECT",
    ]


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({A + "excludeInboundPorts": "80,http"}, "excludeInboundPorts: 'http' is not a port"),
        ({A + "excludeOutboundPorts": "70000"}, "excludeOutboundPorts: '70000' is not a port"),
        ({A + "excludeOutboundIPRanges": "10.0.0.0/33"}, "excludeOutboundIPRanges: '10.0.0.0/33'"),
        ({A + "includeOutboundIPRanges": "fd00::/8"}, "IPv6 capture is not implemented yet"),
        ({A + "interceptionMode": "TPROXY"}, "only REDIRECT is implemented"),
        ({A + "kubevirtInterfaces": "net1"}, "kubevirtInterfaces: not supported"),
    ],
)
def test_bad_annotations_name_the_annotation_and_value(
    annotations: dict[str, str], message: str
) -> None:
    with pytest.raises(CaptureError, match=r"traffic\.sidecar\.istio\.io/") as err:
        from_annotations(annotations)
    assert message in str(err.value), str(err.value)
