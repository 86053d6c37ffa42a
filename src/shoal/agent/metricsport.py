"""The proxy's metrics port: Istio's `:15090/stats/prometheus`, served by Envoy itself.

A static listener (in the bootstrap, like Istio's, so it answers before any xDS arrives)
forwards `/stats/prometheus` to Envoy's own admin endpoint, asking only for the mesh metrics
(`filter=^istio\\.`, `usedonly`), and a Lua filter rewrites the answer into Istio's exact
names: `envoy_istio_requests_total` becomes `istio_requests_total`, the one packed tag Envoy
carries (shoal.common.packedlabels: cheaper per request than 23 tags) becomes Istio's labels,
and an empty label value becomes `unknown` (`latest` for a canonical revision;
`grpc_response_status` stays empty, as Istio leaves it for non-gRPC requests). Envoy's other
stats stay on its admin port.

The rewrite costs one pass over the text per scrape (measured in
benchmarks/telemetry_bench.py), nothing per request.
"""

from __future__ import annotations

from shoal.common.packedlabels import SEPARATOR, TAG

STATS_CLUSTER = "prometheus_stats"
LISTENER = "prometheus_stats"
PATH = "/stats/prometheus"
# the admin query: only the series shoal's stats loggers make, only those ever written
_ADMIN_PATH = "/stats/prometheus?usedonly&filter=%5Eistio%5C."

# One plain `string.find` pass over the text for the packed tag (shoal.common.packedlabels),
# each found value split at its separators into Istio's labels, and one literal gsub for the
# prefix: plain finds and subs only (Lua patterns with a class and a callback took 130 ms for
# 1,000 series; see benchmarks/README.md for this one's time).
_LUA = (
    """
local find, sub, byte, concat = string.find, string.sub, string.byte, table.concat
local TAG = '"""
    + TAG
    + """="'
local SEP = '\\"""
    + f"{ord(SEPARATOR)}"
    + """'
local function default(key, value)
  if value ~= "" then
    if key == "request_protocol" and value == "application/grpc" then return "grpc" end
    return value
  end
  if key == "grpc_response_status" then return "" end
  if key == "request_protocol" then return "http" end
  if sub(key, -19) == "_canonical_revision" then return "latest" end
  return "unknown"
end
local function labels(packed)
  local out, n, pos = {}, 0, 1
  while true do
    local stop = find(packed, SEP, pos, true)
    local piece = sub(packed, pos, (stop or 0) - 1)
    local eq = find(piece, "=", 1, true)
    if eq then
      local key = sub(piece, 1, eq - 1)
      n = n + 1
      out[n] = key .. '="' .. default(key, sub(piece, eq + 1)) .. '"'
    elseif n > 0 then
      out[n] = sub(out[n], 1, -2) .. SEP .. piece .. '"'
    end
    if stop == nil then break end
    pos = stop + 1
  end
  return concat(out, ",")
end
local function closing(text, from)
  -- the first quote not escaped by an odd run of backslashes (Envoy escapes \\ and ")
  local at = find(text, '"', from, true)
  while at ~= nil do
    local k = at - 1
    while byte(text, k) == 92 do k = k - 1 end
    if (at - 1 - k) % 2 == 0 then return at end
    at = find(text, '"', at + 1, true)
  end
  return #text + 1
end
local function unpack_labels(text)
  -- a histogram's ~22 lines and the 4 stats of one label set share one packed value
  local out, n, pos, seen = {}, 0, 1, {}
  while true do
    local at = find(text, TAG, pos, true)
    if at == nil then break end
    local from = at + #TAG
    local stop = closing(text, from)
    local packed = sub(text, from, stop - 1)
    local expanded = seen[packed]
    if expanded == nil then
      expanded = labels(packed)
      seen[packed] = expanded
    end
    out[n + 1] = sub(text, pos, at - 1)
    out[n + 2] = expanded
    n = n + 2
    pos = stop + 1
  end
  out[n + 1] = sub(text, pos)
  return concat(out)
end
function envoy_on_response(handle)
  local body = handle:body()
  if body == nil or body:length() == 0 then return end
  local text = unpack_labels(body:getBytes(0, body:length()))
  body:setBytes((text:gsub("envoy_istio_", "istio_")))
end
"""
)


def _router() -> dict[str, object]:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        },
    }


def metrics_listener(host: str, port: int) -> dict[str, object]:
    """The static listener serving `PATH` on `host:port` (bootstrap JSON)."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "prometheus_stats",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "prometheus",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"path": PATH},
                            "route": {
                                "cluster": STATS_CLUSTER,
                                "regex_rewrite": {
                                    "pattern": {"regex": ".*"},
                                    "substitution": _ADMIN_PATH,
                                },
                            },
                        }
                    ],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.lua",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                    "default_source_code": {"inline_string": _LUA},
                },
            },
            _router(),
        ],
    }
    return {
        "name": LISTENER,
        "address": {"socket_address": {"address": host, "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def admin_cluster(admin_port: int) -> dict[str, object]:
    """The static cluster of Envoy's own admin endpoint (loopback)."""
    address = {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
    return {
        "name": STATS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": STATS_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
    }
