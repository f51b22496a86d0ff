#include "p2p/rcmgr/limits.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "util/decimal.h"

namespace an::p2p::rcmgr {
namespace {

constexpr std::int64_t kMiB = std::int64_t{1} << 20;
constexpr std::int64_t kGiB = std::int64_t{1} << 30;

// go-libp2p's BaseLimitIncrease: what each GiB of budget adds (FDs: a fraction of the budget).
struct Increase {
  std::int64_t memory = 0;
  std::int64_t streams_inbound = 0;
  std::int64_t streams_outbound = 0;
  std::int64_t streams = 0;
  std::int64_t conns_inbound = 0;
  std::int64_t conns_outbound = 0;
  std::int64_t conns = 0;
  double fd_fraction = 0;
};

// go's scale(): below 128 MiB of budget only the base applies; above, each MiB adds 1/1024 of
// the increase. Resources the base leaves unlimited stay so.
Limit scale(Limit base, const Increase& increase, std::int64_t memory_budget,
            std::int64_t fd_budget) {
  const std::int64_t mebibytes = memory_budget > 128 * kMiB ? memory_budget / kMiB : 0;
  auto grow = [&](std::int64_t& value, std::int64_t per_gib) {
    if (value != kUnlimited) value += (per_gib * mebibytes) >> 10;
  };
  grow(base.memory, increase.memory);
  grow(base.streams_inbound, increase.streams_inbound);
  grow(base.streams_outbound, increase.streams_outbound);
  grow(base.streams, increase.streams);
  grow(base.conns_inbound, increase.conns_inbound);
  grow(base.conns_outbound, increase.conns_outbound);
  grow(base.conns, increase.conns);
  if (increase.fd_fraction > 0 && fd_budget > 0 && base.fds != kUnlimited) {
    base.fds = std::max(
        base.fds, static_cast<std::int64_t>(increase.fd_fraction * static_cast<double>(fd_budget)));
  }
  return base;
}

Limit make_limit(std::int64_t conns_inbound, std::int64_t conns_outbound, std::int64_t conns,
                 std::int64_t streams_inbound, std::int64_t streams_outbound, std::int64_t streams,
                 std::int64_t memory, std::int64_t fds) {
  Limit limit;
  limit.conns_inbound = conns_inbound;
  limit.conns_outbound = conns_outbound;
  limit.conns = conns;
  limit.streams_inbound = streams_inbound;
  limit.streams_outbound = streams_outbound;
  limit.streams = streams;
  limit.memory = memory;
  limit.fds = fds;
  return limit;
}

Expected<std::int64_t> parse_value(Resource resource, std::string_view text) {
  if (text == "unlimited") return kUnlimited;
  std::int64_t multiplier = 1;
  std::string_view number = text;
  if (resource == Resource::kMemory) {
    static constexpr std::pair<std::string_view, std::int64_t> kUnits[] = {
        {"KiB", 1024}, {"MiB", kMiB}, {"GiB", kGiB}, {"B", 1}};
    for (const auto& [unit, factor] : kUnits) {
      if (number.size() > unit.size() && number.substr(number.size() - unit.size()) == unit) {
        number.remove_suffix(unit.size());
        multiplier = factor;
        break;
      }
    }
  }
  std::int64_t value = -1;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size() || value < 0 ||
      value > kUnlimited / multiplier) {
    return fail("bad value \"" + std::string(text) + "\" (expected a whole number" +
                (resource == Resource::kMemory ? std::string(", optionally with KiB, MiB or GiB")
                                               : std::string()) +
                ", or unlimited)");
  }
  return value * multiplier;
}

Expected<void> apply_gate_override(GateConfig& gate, std::string_view field,
                                   std::string_view text) {
  auto whole = [&](std::int64_t& target) -> Expected<void> {
    auto value = parse_value(Resource::kConns, text);
    if (!value) return tl::unexpected(value.error());
    target = *value;
    return {};
  };
  auto rate = [&](double& target) -> Expected<void> {
    auto value = parse_decimal(text);
    if (!value || !std::isfinite(*value) || *value < 0 || *value > 1e6) {
      return fail("bad rate \"" + std::string(text) + "\" (expected connections per second)");
    }
    target = *value;
    return {};
  };
  if (field == "handshakes_per_ip") return whole(gate.handshakes_per_ip);
  if (field == "handshakes_per_ipv4_subnet") return whole(gate.handshakes_per_ipv4_subnet);
  if (field == "handshakes_per_ipv6_subnet") return whole(gate.handshakes_per_ipv6_subnet);
  if (field == "handshakes_total") return whole(gate.handshakes_total);
  if (field == "conns_per_ip") return whole(gate.conns_per_ip);
  if (field == "rate_per_ip") return rate(gate.rate_per_ip);
  if (field == "burst_per_ip") return whole(gate.burst_per_ip);
  if (field == "rate_per_subnet") return rate(gate.rate_per_subnet);
  if (field == "burst_per_subnet") return whole(gate.burst_per_subnet);
  return fail("unknown gate limit \"" + std::string(field) +
              "\" (expected handshakes_per_ip, handshakes_per_ipv4_subnet, "
              "handshakes_per_ipv6_subnet, handshakes_total, conns_per_ip, rate_per_ip, "
              "burst_per_ip, rate_per_subnet or burst_per_subnet)");
}

}  // namespace

std::string_view resource_name(Resource resource) {
  switch (resource) {
    case Resource::kMemory:
      return "memory";
    case Resource::kStreamsInbound:
      return "streams_inbound";
    case Resource::kStreamsOutbound:
      return "streams_outbound";
    case Resource::kStreams:
      return "streams";
    case Resource::kConnsInbound:
      return "conns_inbound";
    case Resource::kConnsOutbound:
      return "conns_outbound";
    case Resource::kConns:
      return "conns";
    case Resource::kFds:
      return "fds";
  }
  return "?";
}

std::int64_t& Limit::operator[](Resource resource) {
  switch (resource) {
    case Resource::kMemory:
      return memory;
    case Resource::kStreamsInbound:
      return streams_inbound;
    case Resource::kStreamsOutbound:
      return streams_outbound;
    case Resource::kStreams:
      return streams;
    case Resource::kConnsInbound:
      return conns_inbound;
    case Resource::kConnsOutbound:
      return conns_outbound;
    case Resource::kConns:
      return conns;
    case Resource::kFds:
      break;
  }
  return fds;
}

std::int64_t Limit::operator[](Resource resource) const {
  return const_cast<Limit&>(*this)[resource];
}

LimitConfig scaled_default_limits(std::int64_t memory_budget, std::int64_t fd_budget) {
  // go-libp2p's DefaultLimits (p2p/host/resource-manager/limit_defaults.go): base limits, and
  // what each GiB of budget adds.
  const Limit system_base = make_limit(64, 128, 128, 64 * 16, 128 * 16, 128 * 16, 128 * kMiB, 256);
  const Increase system_increase{1 * kGiB, 64 * 16, 128 * 16, 128 * 16, 64, 128, 128, 1.0};
  const Limit transient_base = make_limit(32, 64, 64, 128, 256, 256, 32 * kMiB, 64);
  const Increase transient_increase{128 * kMiB, 128, 256, 256, 16, 32, 32, 0.25};
  const Limit peer_base = make_limit(8, 8, 8, 256, 512, 512, 64 * kMiB, 4);
  const Increase peer_increase{128 * kMiB, 128, 256, 256, 0, 0, 0, 1.0 / 64};
  const Limit connection_base =
      make_limit(1, 1, 1, kUnlimited, kUnlimited, kUnlimited, 32 * kMiB, 1);
  const Limit stream_base =
      make_limit(kUnlimited, kUnlimited, kUnlimited, 1, 1, 1, 16 * kMiB, kUnlimited);
  const Limit protocol_base =
      make_limit(kUnlimited, kUnlimited, kUnlimited, 512, 2048, 2048, 64 * kMiB, kUnlimited);
  const Increase protocol_increase{164 * kMiB, 256, 512, 512, 0, 0, 0, 0};
  const Limit protocol_peer_base =
      make_limit(kUnlimited, kUnlimited, kUnlimited, 64, 128, 256, 16 * kMiB, kUnlimited);
  // go's increase of the protocol-peer memory is 4 bytes per GiB, i.e. none.
  const Increase protocol_peer_increase{0, 4, 8, 16, 0, 0, 0, 0};

  LimitConfig config;
  config.system = scale(system_base, system_increase, memory_budget, fd_budget);
  config.transient = scale(transient_base, transient_increase, memory_budget, fd_budget);
  config.allowlisted_system = config.system;
  config.allowlisted_transient = config.transient;
  config.peer = scale(peer_base, peer_increase, memory_budget, fd_budget);
  config.connection = connection_base;
  config.stream = stream_base;
  config.protocol = scale(protocol_base, protocol_increase, memory_budget, fd_budget);
  config.protocol_peer =
      scale(protocol_peer_base, protocol_peer_increase, memory_budget, fd_budget);
  // Handshakes in flight are the transient scope's inbound connections.
  config.gate.handshakes_total = config.transient.conns_inbound;
  return config;
}

Expected<std::int64_t> parse_memory_size(std::string_view text) {
  if (text == "unlimited") return fail("bad size \"unlimited\" (expected bytes, KiB, MiB or GiB)");
  return parse_value(Resource::kMemory, text);
}

std::string format_memory_size(std::int64_t bytes) {
  if (bytes > 0 && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "GiB";
  if (bytes > 0 && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
  if (bytes > 0 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + "KiB";
  return std::to_string(bytes);
}

LimitConfig unlimited_limits() {
  LimitConfig config;
  config.gate.handshakes_per_ip = kUnlimited;
  config.gate.handshakes_per_ipv4_subnet = kUnlimited;
  config.gate.handshakes_per_ipv6_subnet = kUnlimited;
  config.gate.handshakes_total = kUnlimited;
  config.gate.conns_per_ip = kUnlimited;
  // A bucket starts full: with an unlimited burst it never runs dry.
  config.gate.burst_per_ip = kUnlimited;
  config.gate.burst_per_subnet = kUnlimited;
  return config;
}

Expected<void> apply_limit_override(LimitConfig& config, std::string_view text) {
  const auto equals = text.find('=');
  const auto dot = text.rfind('.', equals);
  if (equals == std::string_view::npos || dot == std::string_view::npos || dot == 0) {
    return fail("bad limit \"" + std::string(text) + "\" (expected SCOPE.RESOURCE=VALUE)");
  }
  const auto scope = text.substr(0, dot);
  const auto field = text.substr(dot + 1, equals - dot - 1);
  const auto value_text = text.substr(equals + 1);
  auto with_context = [&](Expected<void> result) -> Expected<void> {
    if (!result) return fail("limit \"" + std::string(text) + "\": " + result.error().message);
    return {};
  };
  if (scope == "gate") return with_context(apply_gate_override(config.gate, field, value_text));

  Limit* limit = nullptr;
  if (scope == "system") limit = &config.system;
  if (scope == "transient") limit = &config.transient;
  if (scope == "allowlisted_system") limit = &config.allowlisted_system;
  if (scope == "allowlisted_transient") limit = &config.allowlisted_transient;
  if (scope == "peer") limit = &config.peer;
  if (scope == "connection") limit = &config.connection;
  if (scope == "stream") limit = &config.stream;
  if (scope == "protocol") limit = &config.protocol;
  if (scope == "protocol_peer") limit = &config.protocol_peer;
  if (scope.substr(0, 9) == "protocol:" && scope.size() > 10 && scope[9] == '/') {
    const std::string protocol(scope.substr(9));
    auto found = config.protocols.find(protocol);
    if (found == config.protocols.end()) {
      found = config.protocols.emplace(protocol, config.protocol).first;
    }
    limit = &found->second;
  }
  if (limit == nullptr) {
    return fail("limit \"" + std::string(text) +
                "\": unknown scope (expected system, transient, allowlisted_system, "
                "allowlisted_transient, peer, connection, stream, protocol, protocol_peer, "
                "protocol:/ID or gate)");
  }
  for (Resource resource : kAllResources) {
    if (resource_name(resource) != field) continue;
    auto value = parse_value(resource, value_text);
    if (!value) return with_context(tl::unexpected(value.error()));
    (*limit)[resource] = *value;
    return {};
  }
  return fail("limit \"" + std::string(text) +
              "\": unknown resource (expected memory, streams_inbound, streams_outbound, "
              "streams, conns_inbound, conns_outbound, conns or fds)");
}

std::string format_limit(Resource resource, std::int64_t value) {
  if (value == kUnlimited) return "unlimited";
  if (resource != Resource::kMemory) return std::to_string(value);
  char text[32];
  if (value >= kGiB) {
    std::snprintf(text, sizeof(text), "%.1f GiB", static_cast<double>(value) / kGiB);
  } else if (value >= kMiB) {
    std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(value) / kMiB);
  } else if (value >= 1024) {
    std::snprintf(text, sizeof(text), "%.1f KiB", static_cast<double>(value) / 1024);
  } else {
    std::snprintf(text, sizeof(text), "%lld B", static_cast<long long>(value));
  }
  return text;
}

}  // namespace an::p2p::rcmgr
