// multistream-select 1.0 ("/multistream/1.0.0") as I/O-free state machines: bytes in, bytes out.
// Not thread-safe: one Initiator or Responder per stream, driven by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::multistream {

// The header both sides send first; a different version is a failed negotiation.
inline constexpr std::string_view kProtocolId = "/multistream/1.0.0";
// The answer to a proposal the responder does not support ("not available").
inline constexpr std::string_view kNotAvailable = "na";
// A request for the responder's protocol list.
inline constexpr std::string_view kList = "ls";

// go-multistream and js-libp2p refuse a message whose length prefix (which counts the trailing
// '\n') exceeds 1024, so we refuse the same and never send more.
inline constexpr std::size_t kMaxMessageLength = 1024;

// A peer that keeps proposing (or asking "ls") without ever agreeing would hold the stream
// forever; after this many proposals the negotiation fails. An Initiator accepts at most this
// many protocols to propose.
inline constexpr std::size_t kMaxProposals = 32;

// Appends one message: uvarint(size + 1), the text, '\n'. Refuses text containing '\n' (js
// peers split messages on it) and text that would exceed kMaxMessageLength.
Expected<void> append_message(Bytes& out, std::string_view text);
Expected<Bytes> encode_message(std::string_view text);

// Splits received bytes into messages. Several messages may arrive in one read (pipelining), and
// bytes after the last negotiation message belong to the selected protocol, so nothing is
// consumed beyond the messages asked for.
class MessageReader {
 public:
  void feed(ByteView bytes);

  // The next complete message without its '\n'; nullopt when more bytes are needed. Errors for
  // a malformed length prefix, a message longer than kMaxMessageLength, an empty message and a
  // message that does not end with '\n'. After an error the reader must not be used again.
  Expected<std::optional<std::string>> next();

  // The bytes fed but not yet returned as messages; the reader is left empty.
  Bytes take_remaining();
  std::size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  Bytes buffer_;
  std::size_t consumed_ = 0;  // Prefix of buffer_ already returned as messages.
};

// How an Initiator opens the negotiation.
enum class InitiatorMode : std::uint8_t {
  // Send the header, wait for the responder's header, then propose. One extra round trip.
  kWaitForHeader,
  // Send the header and the first proposal together, as go-multistream's SelectOneOf and
  // js-libp2p's select do. With a single protocol this is "lazy" selection: the caller may send
  // application data right after the output, before the answer; a refusal then fails the
  // negotiation (there is nothing else to propose).
  kOptimistic,
};

// The dialer's side: proposes protocols in order of preference until one is accepted.
class Initiator {
 public:
  // Errors for an empty list, more than kMaxProposals protocols, and protocols that cannot be
  // sent (empty, containing '\n', too long, or the multistream commands "na"/"ls").
  static Expected<Initiator> create(std::vector<std::string> protocols,
                                    InitiatorMode mode = InitiatorMode::kOptimistic);

  // Consumes bytes from the responder. Once done(), further bytes are kept as leftover. Errors
  // (header mismatch, unexpected answer, every protocol refused, malformed message) are final:
  // later calls return the same error.
  Expected<void> receive(ByteView bytes);

  // Appends the bytes to send to the responder (header, proposals) and forgets them.
  void take_output(Bytes& out);

  bool done() const { return state_ == State::kDone; }
  // The accepted protocol; empty until done().
  const std::string& selected_protocol() const { return selected_; }
  // Bytes that followed the final negotiation message: the first application data. Empty
  // before done().
  Bytes take_leftover();

 private:
  enum class State : std::uint8_t { kAwaitHeader, kAwaitAnswer, kDone, kFailed };

  Initiator(std::vector<std::string> protocols, InitiatorMode mode);
  Expected<void> handle(const std::string& message);
  void propose_current();
  Expected<void> fail_with(Error error);

  std::vector<std::string> protocols_;
  InitiatorMode mode_;
  std::size_t current_ = 0;  // Index of the protocol awaiting an answer.
  State state_ = State::kAwaitHeader;
  MessageReader reader_;
  Bytes output_;
  std::string selected_;
  std::optional<Error> error_;
};

// The listener's side: answers proposals until it accepts one.
class Responder {
 public:
  using Matcher = std::function<bool(std::string_view protocol)>;

  // Supports exactly these protocols; "ls" lists them.
  explicit Responder(std::vector<std::string> supported);
  // Supports whatever `supports` accepts (e.g. version ranges); "ls" lists `listed`. An empty
  // `supports` means exactly the listed protocols.
  Responder(Matcher supports, std::vector<std::string> listed);

  // Consumes bytes from the initiator; the header and proposals may arrive in one read. Errors
  // are final, as for Initiator.
  Expected<void> receive(ByteView bytes);

  // Appends the bytes to send (our header at first, then answers) and forgets them.
  void take_output(Bytes& out);

  bool done() const { return state_ == State::kDone; }
  const std::string& selected_protocol() const { return selected_; }
  // Application data the initiator sent right after its accepted proposal. Empty before done().
  Bytes take_leftover();

 private:
  enum class State : std::uint8_t { kAwaitHeader, kAwaitProposal, kDone, kFailed };

  Expected<void> handle(const std::string& message);
  void answer_list();
  Expected<void> fail_with(Error error);

  Matcher supports_;  // Empty: exact match against listed_.
  std::vector<std::string> listed_;
  std::size_t proposals_ = 0;
  State state_ = State::kAwaitHeader;
  MessageReader reader_;
  Bytes output_;
  std::string selected_;
  std::optional<Error> error_;
};

}  // namespace an::p2p::multistream
