#include "p2p/multistream/multistream.h"

#include <algorithm>
#include <utility>

namespace an::p2p::multistream {
namespace {

// A length prefix of kMaxMessageLength fits in this many varint bytes; a prefix still
// continuing after them announces a longer message, refused without waiting for the rest.
constexpr std::size_t kMaxLengthPrefixBytes = 2;
static_assert(kMaxMessageLength < (std::size_t{1} << (7 * kMaxLengthPrefixBytes)));

// Peer-supplied text goes into error messages: escape what is not printable ASCII and cut it
// short so that a hostile peer cannot flood or garble our logs.
std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '"' && byte != '\\') {
      out += static_cast<char>(byte);
    } else {
      out += "\\x";
      out += hex_digit(byte >> 4);
      out += hex_digit(byte);
    }
  }
  if (text.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

// The caller guarantees the text fits and has no '\n'.
void write_message(Bytes& out, std::string_view text) {
  append_varint(out, text.size() + 1);
  out.insert(out.end(), text.begin(), text.end());
  out.push_back('\n');
}

Expected<void> check_sendable(std::string_view text) {
  if (text.find('\n') != std::string_view::npos) {
    return fail("multistream: message " + printable(text) + " contains a newline");
  }
  if (text.size() + 1 > kMaxMessageLength) {
    return fail("multistream: message of " + std::to_string(text.size() + 1) +
                " bytes exceeds the " + std::to_string(kMaxMessageLength) + "-byte limit");
  }
  return {};
}

Expected<void> check_proposable(std::string_view protocol) {
  if (protocol.empty()) return fail("multistream: empty protocol ID");
  if (protocol == kNotAvailable || protocol == kList) {
    return fail("multistream: " + printable(protocol) +
                " is a multistream command, not a protocol");
  }
  return check_sendable(protocol);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

}  // namespace

Expected<void> append_message(Bytes& out, std::string_view text) {
  if (auto checked = check_sendable(text); !checked) return checked;
  write_message(out, text);
  return {};
}

Expected<Bytes> encode_message(std::string_view text) {
  Bytes out;
  if (auto appended = append_message(out, text); !appended) return tl::unexpected(appended.error());
  return out;
}

// ---- MessageReader ----

void MessageReader::feed(ByteView bytes) {
  if (consumed_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

Expected<std::optional<std::string>> MessageReader::next() {
  ByteView rest = ByteView(buffer_).subspan(consumed_);
  if (rest.empty()) return std::optional<std::string>{};

  // Only decode the prefix once its last byte is here: a prefix split across reads is not an
  // error, and read_varint would call it truncated.
  const std::size_t scanned = std::min(rest.size(), kMaxLengthPrefixBytes);
  const bool prefix_complete =
      std::any_of(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(scanned),
                  [](std::uint8_t byte) { return (byte & 0x80) == 0; });
  if (!prefix_complete) {
    if (rest.size() < kMaxLengthPrefixBytes) return std::optional<std::string>{};
    return fail("multistream: message length exceeds the " + std::to_string(kMaxMessageLength) +
                "-byte limit");
  }

  ByteView body = rest;
  auto length = read_varint(body);
  if (!length) return fail("multistream: bad message length: " + length.error().message);
  if (*length > kMaxMessageLength) {
    return fail("multistream: message of " + std::to_string(*length) + " bytes exceeds the " +
                std::to_string(kMaxMessageLength) + "-byte limit");
  }
  if (*length == 0) return fail("multistream: empty message (not even the trailing newline)");
  const auto size = static_cast<std::size_t>(*length);
  if (body.size() < size) return std::optional<std::string>{};
  if (body[size - 1] != '\n') return fail("multistream: message does not end with a newline");

  std::string text(reinterpret_cast<const char*>(body.data()), size - 1);
  consumed_ += (rest.size() - body.size()) + size;
  return std::optional<std::string>(std::move(text));
}

Bytes MessageReader::take_remaining() {
  Bytes remaining(buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_), buffer_.end());
  buffer_.clear();
  consumed_ = 0;
  return remaining;
}

// ---- Initiator ----

Expected<Initiator> Initiator::create(std::vector<std::string> protocols, InitiatorMode mode) {
  if (protocols.empty()) return fail("multistream: no protocols to propose");
  if (protocols.size() > kMaxProposals) {
    return fail("multistream: " + std::to_string(protocols.size()) +
                " protocols to propose, more than the limit of " + std::to_string(kMaxProposals));
  }
  for (const auto& protocol : protocols) {
    if (auto checked = check_proposable(protocol); !checked) {
      return tl::unexpected(checked.error());
    }
  }
  return Initiator(std::move(protocols), mode);
}

Initiator::Initiator(std::vector<std::string> protocols, InitiatorMode mode)
    : protocols_(std::move(protocols)), mode_(mode) {
  write_message(output_, kProtocolId);
  if (mode_ == InitiatorMode::kOptimistic) propose_current();
}

void Initiator::propose_current() {
  write_message(output_, protocols_[current_]);
}

Expected<void> Initiator::fail_with(Error error) {
  state_ = State::kFailed;
  error_ = error;
  return tl::unexpected(std::move(error));
}

Expected<void> Initiator::receive(ByteView bytes) {
  if (state_ == State::kFailed) return tl::unexpected(*error_);
  reader_.feed(bytes);
  // Stop at the accepting message: whatever follows is the protocol's, not ours.
  while (state_ != State::kDone) {
    auto message = reader_.next();
    if (!message) return fail_with(message.error());
    if (!message->has_value()) break;
    if (auto handled = handle(**message); !handled) return handled;
  }
  return {};
}

Expected<void> Initiator::handle(const std::string& message) {
  if (state_ == State::kAwaitHeader) {
    if (message != kProtocolId) {
      return fail_with(Error{"multistream: peer sent header " + printable(message) + ", expected " +
                             printable(kProtocolId)});
    }
    state_ = State::kAwaitAnswer;
    if (mode_ == InitiatorMode::kWaitForHeader) propose_current();
    return {};
  }

  const std::string& proposed = protocols_[current_];
  if (message == proposed) {
    selected_ = proposed;
    state_ = State::kDone;
    return {};
  }
  if (message == kNotAvailable) {
    if (++current_ == protocols_.size()) {
      return fail_with(Error{"multistream: peer supports none of: " + join(protocols_)});
    }
    propose_current();
    return {};
  }
  return fail_with(Error{"multistream: peer answered " + printable(message) + " to the proposal " +
                         printable(proposed) + " (expected the same or \"na\")"});
}

void Initiator::take_output(Bytes& out) {
  out.insert(out.end(), output_.begin(), output_.end());
  output_.clear();
}

Bytes Initiator::take_leftover() {
  if (state_ != State::kDone) return {};
  return reader_.take_remaining();
}

// ---- Responder ----

Responder::Responder(std::vector<std::string> supported) : listed_(std::move(supported)) {
  // Like go-multistream, announce ourselves at once instead of waiting for the header: it saves
  // the initiator a round trip.
  write_message(output_, kProtocolId);
}

Responder::Responder(Matcher supports, std::vector<std::string> listed)
    : supports_(std::move(supports)), listed_(std::move(listed)) {
  write_message(output_, kProtocolId);
}

Expected<void> Responder::fail_with(Error error) {
  state_ = State::kFailed;
  error_ = error;
  return tl::unexpected(std::move(error));
}

Expected<void> Responder::receive(ByteView bytes) {
  if (state_ == State::kFailed) return tl::unexpected(*error_);
  reader_.feed(bytes);
  while (state_ != State::kDone) {
    auto message = reader_.next();
    if (!message) return fail_with(message.error());
    if (!message->has_value()) break;
    if (auto handled = handle(**message); !handled) return handled;
  }
  return {};
}

Expected<void> Responder::handle(const std::string& message) {
  if (state_ == State::kAwaitHeader) {
    if (message != kProtocolId) {
      return fail_with(Error{"multistream: peer sent header " + printable(message) + ", expected " +
                             printable(kProtocolId)});
    }
    state_ = State::kAwaitProposal;
    return {};
  }

  if (++proposals_ > kMaxProposals) {
    return fail_with(Error{"multistream: peer made more than " + std::to_string(kMaxProposals) +
                           " proposals without agreeing on a protocol"});
  }
  if (message == kList) {
    answer_list();
    return {};
  }
  // A proposal with an inner '\n' cannot be echoed as one message, so it cannot be accepted.
  const bool echoable = message.find('\n') == std::string::npos;
  const bool supported = supports_
                             ? supports_(message)
                             : std::find(listed_.begin(), listed_.end(), message) != listed_.end();
  if (echoable && supported) {
    write_message(output_, message);
    selected_ = message;
    state_ = State::kDone;
    return {};
  }
  write_message(output_, kNotAvailable);
  return {};
}

// The "ls" answer as go (before it dropped "ls"), js-libp2p and rust-libp2p write it: one
// message whose body is each protocol as its own length-prefixed, '\n'-terminated message,
// followed by a final '\n'. Protocols that would push it past kMaxMessageLength are left out,
// since peers refuse longer messages.
void Responder::answer_list() {
  Bytes body;
  for (const auto& protocol : listed_) {
    if (protocol.empty() || !check_sendable(protocol)) continue;
    Bytes entry;
    write_message(entry, protocol);
    if (body.size() + entry.size() + 1 > kMaxMessageLength) break;
    body.insert(body.end(), entry.begin(), entry.end());
  }
  body.push_back('\n');
  append_varint(output_, body.size());
  output_.insert(output_.end(), body.begin(), body.end());
}

void Responder::take_output(Bytes& out) {
  out.insert(out.end(), output_.begin(), output_.end());
  output_.clear();
}

Bytes Responder::take_leftover() {
  if (state_ != State::kDone) return {};
  return reader_.take_remaining();
}

}  // namespace an::p2p::multistream
