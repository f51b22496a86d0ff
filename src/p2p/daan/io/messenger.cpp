#include "p2p/daan/io/messenger.h"

#include <array>
#include <string>
#include <utility>

namespace an::p2p::daan {
namespace {

std::string_view protocol_of(FrameType type) {
  return type == FrameType::kMessage ? kMessageProtocol : kRequestProtocol;
}

unsigned type_number(FrameType type) {
  return static_cast<unsigned>(type);
}

// Frame bytes reserved on a stream's resource scope while a reader holds them; released when
// the reader is done with them.
class StreamMemory {
 public:
  explicit StreamMemory(net::ByteStream& stream) : stream_(stream) {}
  ~StreamMemory() { release(); }
  StreamMemory(const StreamMemory&) = delete;
  StreamMemory& operator=(const StreamMemory&) = delete;
  bool reserve(std::size_t bytes) {
    if (!stream_.reserve_memory(bytes)) return false;
    bytes_ += bytes;
    return true;
  }
  void release() {
    stream_.release_memory(bytes_);
    bytes_ = 0;
  }

 private:
  net::ByteStream& stream_;
  std::size_t bytes_ = 0;
};

// The error answer to a request whose response would not fit a frame (Go writes no answer then).
constexpr std::string_view kResponseTooLarge = "response too large";

enum class ReadFailure { kNone, kBadFrame, kNoMemory, kStream };

struct ReadResult {
  ReadFailure failure = ReadFailure::kNone;
  std::string reason;
  std::uint32_t length = 0;
  Bytes body;
};

ReadResult read_failed(ReadFailure failure, std::string reason) {
  ReadResult result;
  result.failure = failure;
  result.reason = std::move(reason);
  return result;
}

// The 4-byte length prefix, checked against kMaxFrameSize.
asio::awaitable<ReadResult> read_length(net::ByteStream& stream) {
  std::array<std::uint8_t, kFrameLengthSize> prefix{};
  std::size_t done = 0;
  while (done < prefix.size()) {
    auto got = co_await stream.read_some(std::span(prefix).subspan(done));
    if (!got) co_return read_failed(ReadFailure::kStream, got.error().message);
    if (*got == 0) {
      co_return read_failed(ReadFailure::kBadFrame,
                            done == 0 ? "stream closed before a frame" : "truncated frame length");
    }
    done += *got;
  }
  auto length = decode_frame_length(prefix);
  if (!length) co_return read_failed(ReadFailure::kBadFrame, length.error().message);
  ReadResult result;
  result.length = *length;
  co_return result;
}

// The body of `length` bytes, read straight into its buffer. Its bytes are reserved on the
// stream's scope as they arrive rather than all at once: the stream's read buffer is charged to
// the same scope and releases what each read hands out, so frame and buffer together never hold
// more than the frame, and a frame of kMaxFrameSize fits go's default stream and protocol-peer
// limits (16 MiB each) however fast it arrives. What the peer may make us hold before it sends
// anything is bounded by the messenger's own budget (inbound) or by our own requests (outbound).
asio::awaitable<ReadResult> read_body(net::ByteStream& stream, std::uint32_t length,
                                      StreamMemory& memory) {
  ReadResult result;
  result.length = length;
  result.body.resize(length);
  std::size_t done = 0;
  while (done < length) {
    auto got = co_await stream.read_some(std::span(result.body).subspan(done));
    if (!got) co_return read_failed(ReadFailure::kStream, got.error().message);
    if (*got == 0) {
      co_return read_failed(ReadFailure::kBadFrame, "truncated frame: " + std::to_string(done) +
                                                        " of " + std::to_string(length) + " bytes");
    }
    if (!memory.reserve(*got)) {
      co_return read_failed(ReadFailure::kNoMemory, "resource limit: no memory for a frame of " +
                                                        std::to_string(length) + " bytes");
    }
    done += *got;
  }
  co_return result;
}

// What is left of the time until `deadline`; an error once it has passed.
Expected<Clock::duration> time_left(Clock::time_point deadline, std::string_view what) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return fail(std::string(what) + ": deadline passed");
  return left;
}

}  // namespace

// Counts one inbound stream and the frame bytes it holds for its peer and in total while it is
// served.
class Messenger::InboundSlot {
 public:
  InboundSlot(Messenger& messenger, PeerId peer)
      : messenger_(messenger), alive_(messenger.lifetime_.token()), peer_(std::move(peer)) {
    ++messenger_.per_peer_[peer_].streams;
    ++messenger_.active_streams_;
  }
  ~InboundSlot() {
    if (!alive_) return;
    auto found = messenger_.per_peer_.find(peer_);
    if (found != messenger_.per_peer_.end()) {
      found->second.bytes -= bytes_;
      if (--found->second.streams == 0) messenger_.per_peer_.erase(found);
    }
    messenger_.held_bytes_ -= bytes_;
    --messenger_.active_streams_;
  }
  InboundSlot(const InboundSlot&) = delete;
  InboundSlot& operator=(const InboundSlot&) = delete;

  // Reserves a frame's bytes against the peer's and the total budget; false when either is full.
  bool reserve(std::size_t bytes) {
    if (!alive_) return false;
    PeerUsage& usage = messenger_.per_peer_[peer_];
    const MessengerLimits& limits = messenger_.limits_;
    if (usage.bytes + bytes > limits.max_bytes_per_peer ||
        messenger_.held_bytes_ + bytes > limits.max_bytes) {
      return false;
    }
    usage.bytes += bytes;
    messenger_.held_bytes_ += bytes;
    bytes_ += bytes;
    return true;
  }

 private:
  Messenger& messenger_;
  net::Lifetime::Token alive_;
  PeerId peer_;
  std::size_t bytes_ = 0;
};

struct Messenger::InboundFrame {
  ReadFailure failure = ReadFailure::kNone;
  std::string reason;
  Frame frame;
};

Messenger::Messenger(net::Host& host, MessengerLimits limits, MessageSink& sink)
    : host_(host), limits_(limits), sink_(sink) {}

Messenger::~Messenger() {
  lifetime_.end();
}

void Messenger::start() {
  if (started_) return;
  started_ = true;
  running_ = true;
  for (FrameType type : {FrameType::kMessage, FrameType::kRequest}) {
    host_.set_handler(std::string(protocol_of(type)),
                      [this, type, alive = lifetime_.token()](
                          std::shared_ptr<net::Stream> stream) -> asio::awaitable<void> {
                        if (!alive) {
                          stream->abort();
                          co_return;
                        }
                        co_await serve(std::move(stream), type);
                      });
  }
}

void Messenger::stop() {
  running_ = false;
}

void Messenger::log(std::string_view line) const {
  if (log_) log_(line);
}

asio::awaitable<Expected<Messenger::InboundFrame>> Messenger::read_inbound_frame(
    net::Stream& stream, InboundSlot& slot) {
  InboundFrame inbound;
  auto length = co_await read_length(stream);
  if (length.failure != ReadFailure::kNone) {
    inbound.failure = length.failure;
    inbound.reason = std::move(length.reason);
    co_return inbound;
  }
  if (!slot.reserve(length.length)) {
    inbound.failure = ReadFailure::kNoMemory;
    inbound.reason = "over the messenger's byte budget with a frame of " +
                     std::to_string(length.length) + " bytes";
    co_return inbound;
  }
  StreamMemory memory(stream);
  auto body = co_await read_body(stream, length.length, memory);
  if (body.failure != ReadFailure::kNone) {
    inbound.failure = body.failure;
    inbound.reason = std::move(body.reason);
    co_return inbound;
  }
  auto frame = decode_frame_body(body.body);
  if (!frame) {
    inbound.failure = ReadFailure::kBadFrame;
    inbound.reason = frame.error().message;
    co_return inbound;
  }
  inbound.frame = std::move(*frame);
  co_return inbound;
}

asio::awaitable<void> Messenger::serve(std::shared_ptr<net::Stream> stream, FrameType expected) {
  auto alive = lifetime_.token();
  const PeerId from = stream->remote_peer();
  const std::string_view protocol = protocol_of(expected);
  auto report = [&](std::string_view what, std::string_view reason) {
    log(std::string("daan: ") + std::string(what) + " from " + from.to_string() + " on " +
        std::string(protocol) + ": " + std::string(reason));
  };
  if (!running_) {
    stream->abort();
    co_return;
  }
  auto usage = per_peer_.find(from);
  const std::size_t peer_streams = usage == per_peer_.end() ? 0 : usage->second.streams;
  if (active_streams_ >= limits_.max_streams || peer_streams >= limits_.max_streams_per_peer) {
    ++stats_.refused;
    report("refused a stream", active_streams_ >= limits_.max_streams
                                   ? "too many streams in flight"
                                   : "too many streams in flight from this peer");
    stream->abort();
    co_return;
  }
  InboundSlot slot(*this, from);
  const auto timeout = expected == FrameType::kMessage ? kMessageTimeout : kRequestTimeout;
  auto read = co_await net::with_timeout(read_inbound_frame(*stream, slot), timeout, "frame");
  if (!alive) {
    stream->abort();
    co_return;
  }
  if (!read) {
    report("gave up on a frame", read.error().message);
    stream->abort();
    co_return;
  }
  switch (read->failure) {
    case ReadFailure::kNone:
      break;
    case ReadFailure::kBadFrame:
      ++stats_.bad_frames;
      report("bad frame", read->reason);
      stream->abort();
      co_return;
    case ReadFailure::kNoMemory:
      ++stats_.refused;
      report("refused a frame", read->reason);
      stream->abort();
      co_return;
    case ReadFailure::kStream:
      stream->abort();
      co_return;
  }
  Frame& frame = read->frame;
  if (frame.type != expected) {
    ++stats_.bad_frames;
    report("bad frame", "type " + std::to_string(type_number(frame.type)) + " where " +
                            std::to_string(type_number(expected)) + " belongs");
    stream->abort();
    co_return;
  }

  if (expected == FrameType::kMessage) {
    ++stats_.messages_received;
    auto delivered = co_await sink_.deliver_message(from, std::move(frame.payload));
    if (!delivered) {
      if (alive) {
        ++stats_.refused;
        report("refused a message", delivered.error().message);
      }
      stream->abort();
      co_return;
    }
    // Closing our side is the sender's receipt: the message is stored.
    (void)co_await stream->close_write();
    co_return;
  }

  ++stats_.requests_received;
  RequestAnswer answer = co_await sink_.handle_request(from, std::move(frame.payload));
  Frame reply{answer.error ? FrameType::kError : FrameType::kResponse, frame.request_id,
              std::move(answer.payload)};
  if (frame_body_size(reply) > kMaxFrameSize) {
    reply = Frame{FrameType::kError, frame.request_id, to_bytes(kResponseTooLarge)};
  }
  const Bytes encoded = encode_frame(reply);
  auto written =
      co_await net::with_timeout(stream->write_all(encoded), kAnswerWriteTimeout, "answer");
  if (!written) {
    if (alive) report("could not answer a request", written.error().message);
    stream->abort();
    co_return;
  }
  (void)co_await stream->close_write();
}

asio::awaitable<Expected<void>> Messenger::send(const PeerId& peer, Bytes payload,
                                                Clock::time_point deadline) {
  Frame frame{FrameType::kMessage, 0, std::move(payload)};
  if (frame_body_size(frame) > kMaxFrameSize) {
    co_return fail("message of " + std::to_string(frame.payload.size()) +
                   " bytes is over the limit of " + std::to_string(kMaxPayloadSize));
  }
  auto left = time_left(deadline, "send");
  if (!left) co_return tl::unexpected(left.error());
  auto opened = host_.new_stream_optimistic(peer, std::string(kMessageProtocol));
  if (!opened) co_return tl::unexpected(opened.error());
  std::shared_ptr<net::Stream> stream = std::move(*opened);
  const Bytes encoded = encode_frame(frame);
  frame.payload = Bytes();

  auto exchange = [&]() -> asio::awaitable<Expected<void>> {
    auto written = co_await stream->write_all(encoded);
    if (written) written = co_await stream->close_write();
    if (!written) co_return fail("refused by peer (" + written.error().message + ")");
    // The peer closes its side once it has the message, or resets the stream to refuse it.
    std::array<std::uint8_t, 512> buffer{};
    std::size_t unexpected = 0;
    for (;;) {
      auto got = co_await stream->read_some(buffer);
      if (!got) co_return fail("refused by peer (" + got.error().message + ")");
      if (*got == 0) co_return Expected<void>{};
      unexpected += *got;
      if (unexpected > kMaxUnexpectedBytes) co_return fail("peer wrote data on a message stream");
    }
  };
  auto sent = co_await net::with_timeout(exchange(), *left, "send");
  if (!sent) stream->abort();
  co_return sent;
}

asio::awaitable<Expected<RequestAnswer>> Messenger::request(const PeerId& peer, Bytes payload,
                                                            Clock::time_point deadline) {
  Frame frame{FrameType::kRequest, ++last_request_id_, std::move(payload)};
  if (frame_body_size(frame) > kMaxFrameSize) {
    co_return fail("request of " + std::to_string(frame.payload.size()) +
                   " bytes is over the limit of " + std::to_string(kMaxPayloadSize));
  }
  auto left = time_left(deadline, "request");
  if (!left) co_return tl::unexpected(left.error());
  auto opened = host_.new_stream_optimistic(peer, std::string(kRequestProtocol));
  if (!opened) co_return tl::unexpected(opened.error());
  std::shared_ptr<net::Stream> stream = std::move(*opened);
  const std::uint64_t request_id = frame.request_id;
  const Bytes encoded = encode_frame(frame);
  frame.payload = Bytes();

  auto exchange = [&]() -> asio::awaitable<Expected<RequestAnswer>> {
    auto written = co_await stream->write_all(encoded);
    if (written) written = co_await stream->close_write();
    if (!written) co_return fail("request not sent (" + written.error().message + ")");
    auto length = co_await read_length(*stream);
    if (length.failure == ReadFailure::kStream) {
      co_return fail("no answer (" + length.reason + ")");
    }
    if (length.failure != ReadFailure::kNone) co_return fail("bad answer: " + length.reason);
    StreamMemory memory(*stream);
    auto body = co_await read_body(*stream, length.length, memory);
    if (body.failure == ReadFailure::kStream) co_return fail("no answer (" + body.reason + ")");
    if (body.failure != ReadFailure::kNone) co_return fail("bad answer: " + body.reason);
    auto answer = decode_frame_body(body.body);
    if (!answer) co_return fail("bad answer: " + answer.error().message);
    if (answer->request_id != request_id) {
      co_return fail("answer to request " + std::to_string(answer->request_id) + ", expected " +
                     std::to_string(request_id));
    }
    if (answer->type == FrameType::kResponse) {
      co_return RequestAnswer{false, std::move(answer->payload)};
    }
    if (answer->type == FrameType::kError) {
      co_return RequestAnswer{true, std::move(answer->payload)};
    }
    co_return fail("bad answer: frame type " + std::to_string(type_number(answer->type)));
  };
  auto answered = co_await net::with_timeout(exchange(), *left, "request");
  if (!answered) stream->abort();
  co_return answered;
}

}  // namespace an::p2p::daan
