#include "p2p/multiformats/multiaddr.h"

// inet_pton/inet_ntop: the same functions on every platform, declared in different headers.
#if defined(_WIN32)
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

#include <algorithm>
#include <array>

namespace an::p2p {
namespace {

enum class ValueKind { kNone, kIp4, kIp6, kPort, kDnsName, kPeerId };

struct Protocol {
  std::uint64_t code;
  std::string_view name;
  ValueKind kind;
};

constexpr std::array<Protocol, 12> kProtocols{{
    {kProtocolIp4, "ip4", ValueKind::kIp4},
    {kProtocolTcp, "tcp", ValueKind::kPort},
    {kProtocolIp6, "ip6", ValueKind::kIp6},
    {kProtocolDns, "dns", ValueKind::kDnsName},
    {kProtocolDns4, "dns4", ValueKind::kDnsName},
    {kProtocolDns6, "dns6", ValueKind::kDnsName},
    {kProtocolDnsaddr, "dnsaddr", ValueKind::kDnsName},
    {kProtocolUdp, "udp", ValueKind::kPort},
    {kProtocolP2pCircuit, "p2p-circuit", ValueKind::kNone},
    {kProtocolP2p, "p2p", ValueKind::kPeerId},
    {kProtocolQuic, "quic", ValueKind::kNone},
    {kProtocolQuicV1, "quic-v1", ValueKind::kNone},
}};

constexpr std::size_t kMaxDnsNameLength = 255;
constexpr std::size_t kMaxQuotedLength = 200;

const Protocol* protocol_by_name(std::string_view name) {
  if (name == "ipfs") name = "p2p";  // The protocol's old name, still in many configs.
  for (const auto& protocol : kProtocols) {
    if (protocol.name == name) return &protocol;
  }
  return nullptr;
}

const Protocol* protocol_by_code(std::uint64_t code) {
  for (const auto& protocol : kProtocols) {
    if (protocol.code == code) return &protocol;
  }
  return nullptr;
}

// Values with a fixed size have no length prefix in the binary form.
std::optional<std::size_t> fixed_size(ValueKind kind) {
  switch (kind) {
    case ValueKind::kNone:
      return 0;
    case ValueKind::kIp4:
      return 4;
    case ValueKind::kIp6:
      return 16;
    case ValueKind::kPort:
      return 2;
    case ValueKind::kDnsName:
    case ValueKind::kPeerId:
      return std::nullopt;
  }
  return std::nullopt;
}

// Shortened, with control characters escaped, so that hostile input cannot flood or forge
// log lines.
std::string quote(std::string_view text) {
  std::string quoted = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMaxQuotedLength; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f || text[i] == '"' || text[i] == '\\') {
      quoted += "\\x";
      quoted += hex_digit(byte >> 4);
      quoted += hex_digit(byte);
    } else {
      quoted += text[i];
    }
  }
  if (text.size() > kMaxQuotedLength) quoted += "...";
  quoted += "\"";
  return quoted;
}

Expected<void> check_dns_name(std::string_view name, const Protocol& protocol) {
  if (name.empty()) return fail("empty " + std::string(protocol.name) + " name");
  if (name.size() > kMaxDnsNameLength) {
    return fail(std::string(protocol.name) + " name is " + std::to_string(name.size()) +
                " bytes long, more than " + std::to_string(kMaxDnsNameLength));
  }
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    // '/' would break the text form; spaces and control bytes are never part of a host name.
    if (c == '/' || byte <= 0x20 || byte == 0x7f) {
      return fail("bad " + std::string(protocol.name) + " name " + quote(name));
    }
  }
  return {};
}

Expected<Bytes> value_from_text(const Protocol& protocol, std::string_view text) {
  const std::string name(protocol.name);
  switch (protocol.kind) {
    case ValueKind::kNone:
      return Bytes{};
    case ValueKind::kIp4: {
      Bytes raw(4);
      if (inet_pton(AF_INET, std::string(text).c_str(), raw.data()) != 1) {
        return fail("bad ip4 address " + quote(text));
      }
      return raw;
    }
    case ValueKind::kIp6: {
      Bytes raw(16);
      if (inet_pton(AF_INET6, std::string(text).c_str(), raw.data()) != 1) {
        return fail("bad ip6 address " + quote(text));
      }
      return raw;
    }
    case ValueKind::kPort: {
      const bool all_digits =
          !text.empty() && text.size() <= 5 &&
          std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
      unsigned long port = all_digits ? std::stoul(std::string(text)) : 0;
      if (!all_digits || port > 65535) {
        return fail("bad " + name + " port " + quote(text) + " (expected 0-65535)");
      }
      return Bytes{static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port & 0xff)};
    }
    case ValueKind::kDnsName: {
      auto valid = check_dns_name(text, protocol);
      if (!valid) return tl::unexpected(valid.error());
      return Bytes(text.begin(), text.end());
    }
    case ValueKind::kPeerId: {
      auto id = PeerId::parse(text);
      if (!id) return fail("bad p2p value: " + id.error().message);
      return id->bytes();
    }
  }
  return fail("unhandled protocol " + name);
}

Expected<std::string> value_to_text(const Protocol& protocol, ByteView raw) {
  switch (protocol.kind) {
    case ValueKind::kNone:
      return std::string();
    case ValueKind::kIp4:
    case ValueKind::kIp6: {
      char text[INET6_ADDRSTRLEN] = {};
      const int family = protocol.kind == ValueKind::kIp4 ? AF_INET : AF_INET6;
      if (inet_ntop(family, raw.data(), text, sizeof text) == nullptr) {
        return fail("cannot format " + std::string(protocol.name) + " address");
      }
      return std::string(text);
    }
    case ValueKind::kPort:
      return std::to_string((static_cast<unsigned>(raw[0]) << 8) | raw[1]);
    case ValueKind::kDnsName: {
      const std::string_view name(reinterpret_cast<const char*>(raw.data()), raw.size());
      auto valid = check_dns_name(name, protocol);
      if (!valid) return tl::unexpected(valid.error());
      return std::string(name);
    }
    case ValueKind::kPeerId: {
      auto id = PeerId::from_multihash(raw);
      if (!id) return fail("bad p2p value: " + id.error().message);
      return id->to_base58();
    }
  }
  return fail("unhandled protocol " + std::string(protocol.name));
}

void append_component(Bytes& out, const MultiaddrComponent& component) {
  append_varint(out, component.code);
  const Protocol* protocol = protocol_by_code(component.code);
  if (protocol && !fixed_size(protocol->kind)) append_varint(out, component.raw_value.size());
  out.insert(out.end(), component.raw_value.begin(), component.raw_value.end());
}

MultiaddrComponent p2p_component(const PeerId& id) {
  return MultiaddrComponent{kProtocolP2p, "p2p", id.to_base58(), id.bytes()};
}

}  // namespace

Expected<Multiaddr> Multiaddr::parse(std::string_view text) {
  const auto invalid = [&](const std::string& detail) {
    return fail("invalid multiaddr " + quote(text) + ": " + detail);
  };
  if (text.empty()) return invalid("empty text");
  if (text.front() != '/') return invalid("it must start with '/'");
  // Checked up front because C APIs such as inet_pton would stop at a NUL and accept the rest.
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f) {
      return invalid("control character at position " + std::to_string(i));
    }
  }

  Multiaddr address;
  std::string_view rest = text.substr(1);
  // Takes the next '/'-separated token off `rest`; nullopt when nothing is left.
  const auto next_token = [&rest]() -> std::optional<std::string_view> {
    if (rest.empty()) return std::nullopt;
    const std::size_t slash = rest.find('/');
    const std::string_view token = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    return token;
  };
  while (auto name = next_token()) {
    if (name->empty()) return invalid("empty protocol name (\"//\")");
    const Protocol* protocol = protocol_by_name(*name);
    if (!protocol) return invalid("unknown protocol " + quote(*name));
    MultiaddrComponent component{protocol->code, protocol->name, {}, {}};
    if (protocol->kind != ValueKind::kNone) {
      auto value_text = next_token();
      if (!value_text || value_text->empty()) {
        return invalid("missing value after /" + std::string(protocol->name));
      }
      auto raw = value_from_text(*protocol, *value_text);
      if (!raw) return invalid(raw.error().message);
      auto canonical = value_to_text(*protocol, *raw);
      if (!canonical) return invalid(canonical.error().message);
      component.value = std::move(*canonical);
      component.raw_value = std::move(*raw);
    }
    address.components_.push_back(std::move(component));
  }
  if (address.empty()) return invalid("no protocols");
  return address;
}

Expected<Multiaddr> Multiaddr::from_bytes(ByteView bytes) {
  const auto invalid = [&](std::size_t offset, const std::string& detail) {
    return fail("invalid binary multiaddr (" + std::to_string(bytes.size()) + " bytes), at byte " +
                std::to_string(offset) + ": " + detail);
  };
  if (bytes.empty()) return fail("invalid binary multiaddr: no bytes");

  Multiaddr address;
  ByteView rest = bytes;
  while (!rest.empty()) {
    const std::size_t offset = bytes.size() - rest.size();
    auto code = read_varint(rest);
    if (!code) return invalid(offset, "bad protocol code: " + code.error().message);
    const Protocol* protocol = protocol_by_code(*code);
    if (!protocol) return invalid(offset, "unknown protocol code " + std::to_string(*code));

    std::size_t size = 0;
    if (const auto fixed = fixed_size(protocol->kind)) {
      size = *fixed;
    } else {
      const std::size_t length_offset = bytes.size() - rest.size();
      auto length = read_varint(rest);
      if (!length) {
        return invalid(length_offset, "bad length of the " + std::string(protocol->name) +
                                          " value: " + length.error().message);
      }
      if (*length > rest.size()) {
        return invalid(length_offset, "truncated " + std::string(protocol->name) +
                                          " value: needs " + std::to_string(*length) + " bytes, " +
                                          std::to_string(rest.size()) + " left");
      }
      size = static_cast<std::size_t>(*length);
    }
    if (size > rest.size()) {
      return invalid(offset, "truncated " + std::string(protocol->name) + " value: needs " +
                                 std::to_string(size) + " bytes, " + std::to_string(rest.size()) +
                                 " left");
    }
    const ByteView raw = rest.first(size);
    auto text = value_to_text(*protocol, raw);
    if (!text) return invalid(offset, text.error().message);
    address.components_.push_back(MultiaddrComponent{
        protocol->code, protocol->name, std::move(*text), Bytes(raw.begin(), raw.end())});
    rest = rest.subspan(size);
  }
  return address;
}

std::string Multiaddr::to_string() const {
  std::string text;
  for (const auto& component : components_) {
    text += '/';
    text += component.protocol;
    if (!component.value.empty()) {
      text += '/';
      text += component.value;
    }
  }
  return text;
}

Bytes Multiaddr::to_bytes() const {
  Bytes out;
  for (const auto& component : components_)
    append_component(out, component);
  return out;
}

std::optional<std::string> Multiaddr::value_of(std::uint64_t code) const {
  for (const auto& component : components_) {
    if (component.code == code) return component.value;
  }
  return std::nullopt;
}

std::optional<std::string> Multiaddr::peer_id_component() const {
  if (components_.empty() || components_.back().code != kProtocolP2p) return std::nullopt;
  return components_.back().value;
}

Multiaddr Multiaddr::encapsulate(const Multiaddr& inner) const {
  Multiaddr combined = *this;
  combined.components_.insert(combined.components_.end(), inner.components_.begin(),
                              inner.components_.end());
  return combined;
}

Multiaddr Multiaddr::with_peer_id(const PeerId& id) const {
  Multiaddr combined = *this;
  combined.components_.push_back(p2p_component(id));
  return combined;
}

Multiaddr Multiaddr::without_p2p() const {
  Multiaddr stripped = *this;
  if (!stripped.components_.empty() && stripped.components_.back().code == kProtocolP2p) {
    stripped.components_.pop_back();
  }
  return stripped;
}

}  // namespace an::p2p

std::size_t std::hash<an::p2p::Multiaddr>::operator()(
    const an::p2p::Multiaddr& address) const noexcept {
  const auto bytes = address.to_bytes();
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}
