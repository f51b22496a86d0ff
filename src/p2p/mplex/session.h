// The mplex (/mplex/6.7.0) stream multiplexer as a state machine without I/O: fed bytes and
// time, it produces bytes and events. Limits follow js-libp2p's @libp2p/mplex. One owner thread
// at a time; the caller owns all buffers.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "p2p/mplex/frame.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::mplex {

inline constexpr std::string_view kProtocolId = "/mplex/6.7.0";

// js-libp2p and go-mplex: a larger message is a protocol error, so we never send one either.
inline constexpr std::size_t kDefaultMaxMessageSize = 1024 * 1024;
// js-libp2p's per-connection limits on streams each side opens.
inline constexpr std::size_t kDefaultMaxInboundStreams = 1024;
inline constexpr std::size_t kDefaultMaxOutboundStreams = 1024;
// mplex has no flow control: a stream whose delivered but unconsumed data would exceed this is
// reset (js-libp2p's maxStreamBufferSize).
inline constexpr std::size_t kDefaultMaxUnconsumed = 4 * 1024 * 1024;
// js-libp2p closes the connection when the peer, within one second, opens more than this many
// streams beyond the limit, or sends more than this many messages for streams that do not
// exist: without backpressure, that is the only defence left.
inline constexpr std::size_t kDefaultDisconnectThreshold = 5;
// Streams we reset while the peer may still have messages in flight on them; those messages
// are dropped quietly. Beyond this many the oldest is forgotten.
inline constexpr std::size_t kMaxResetStreamsRemembered = 4096;

using Clock = std::chrono::steady_clock;

struct Config {
  std::size_t max_message_size = kDefaultMaxMessageSize;
  std::size_t max_inbound_streams = kDefaultMaxInboundStreams;
  std::size_t max_outbound_streams = kDefaultMaxOutboundStreams;
  std::size_t max_unconsumed = kDefaultMaxUnconsumed;
  std::size_t disconnect_threshold = kDefaultDisconnectThreshold;
};

Expected<void> validate(const Config& config);

// Both sides number their streams from 0, so the app sees handles instead of wire IDs:
// wire ID * 2, plus 1 for streams the peer opened. Wire IDs at or above 2^31 are refused.
inline constexpr std::uint64_t kMaxSupportedStreamId = (std::uint64_t{1} << 31) - 1;
inline std::uint32_t stream_handle(std::uint64_t wire_id, bool opened_locally) {
  return static_cast<std::uint32_t>((wire_id << 1) | (opened_locally ? 0u : 1u));
}
inline std::uint64_t wire_stream_id(std::uint32_t handle) {
  return handle >> 1;
}
inline bool opened_locally(std::uint32_t handle) {
  return (handle & 1u) == 0;
}

struct Event {
  enum class Kind {
    kInboundStream,  // the peer opened stream_id; accept() it (or reset() to refuse)
    kData,           // data holds the next bytes of stream_id; call consumed() once used
    kRemoteClosed,   // the peer half-closed stream_id: no more data will come
    kReset,          // stream_id was reset by the peer, or by us for a full buffer; it is gone
  };
  Kind kind = Kind::kData;
  std::uint32_t stream_id = 0;  // a handle (see stream_handle)
  Bytes data;
};

class Session {
 public:
  static Expected<Session> create(const Config& config);

  // Feeds the next bytes read from the connection, split anywhere. An error means the peer
  // broke the protocol or must be dropped: close the connection. The session stays failed.
  Expected<void> receive(ByteView bytes, Clock::time_point now);
  // The connection's read side ended: an error if it ended inside a frame.
  Expected<void> receive_eof() const;

  // Opens an outbound stream: its NewStream goes into the output at once.
  Expected<std::uint32_t> open_stream();
  // Accepts an inbound stream announced by kInboundStream (mplex sends nothing for it).
  Expected<void> accept(std::uint32_t id);

  // Frames up to send_window(id) bytes of `data` into the output, in messages of at most
  // max_message_size, and returns how many were taken (never zero for non-empty data on a
  // writable stream: there is no flow control).
  Expected<std::size_t> write(std::uint32_t id, ByteView data);
  // How much one write() takes: max_message_size for a writable stream, else 0.
  std::size_t send_window(std::uint32_t id) const;
  // Half-closes our direction. Idempotent.
  Expected<void> close_write(std::uint32_t id);
  // Aborts the stream in both directions. Unknown streams are ignored.
  void reset(std::uint32_t id);
  // The app has used `bytes` of data delivered on `id`, which makes room below max_unconsumed.
  // Unknown streams are ignored; consuming more than was delivered is an error.
  Expected<void> consumed(std::uint32_t id, std::size_t bytes);

  // mplex has no GoAway: from now on inbound streams are reset and open_stream() fails.
  void go_away();

  // True while some stream holds so much unconsumed data that one more message could pass
  // max_unconsumed: the caller should stop reading the connection until consumed() (or a
  // reset) makes room, so that TCP slows the peer down, as go-mplex does.
  bool reading_paused() const { return streams_near_cap_ > 0; }
  // The caller waited too long for room: resets every stream that keeps reading paused.
  void reset_stalled_streams();

  bool has_output() const { return !output_.empty(); }
  std::size_t output_size() const { return output_.size(); }
  // Appends all pending frames to `out` (moves the buffer when `out` is empty).
  void take_output(Bytes& out);

  // Next event in arrival order; false when there is none.
  bool poll_event(Event& event);

  std::size_t stream_count() const { return streams_.size(); }
  bool local_went_away() const { return local_went_away_; }
  bool failed() const { return failure_.has_value(); }

 private:
  explicit Session(const Config& config) : config_(config) {}

  struct Stream {
    bool write_closed = false;  // we sent Close
    bool read_closed = false;   // the peer sent Close
    bool data_event_queued = false;
    bool near_cap = false;         // counted in streams_near_cap_
    std::uint64_t unconsumed = 0;  // delivered (or in inbox), not yet consumed
    Bytes inbox;                   // data not yet polled by the app
  };

  // Where the payload of the frame being received goes.
  enum class PayloadSink { kStream, kDiscard };

  // Counts offences within one-second windows; true once more than `threshold` happened in one.
  struct OffenceCounter {
    Clock::time_point window_start{};
    std::size_t count = 0;
    bool exceeded(Clock::time_point now, std::size_t threshold);
  };

  Expected<void> fail_session(std::string message);
  Expected<void> handle_frame(const FrameHeader& header);
  Expected<void> open_inbound(const FrameHeader& header);
  Expected<void> handle_missing_stream(const FrameHeader& header,
                                       std::optional<std::uint32_t> handle);
  void refuse_inbound(std::uint64_t wire_id);
  void reset_after_violation(std::uint32_t handle);
  void deliver_payload(ByteView chunk);
  void remember_reset(std::uint32_t handle);
  void remove_stream(std::unordered_map<std::uint32_t, Stream>::iterator it, bool keep_data);
  void emit(std::uint32_t handle, Flag flag);
  void set_unconsumed(Stream& stream, std::uint64_t unconsumed);

  Config config_;
  std::uint64_t next_stream_id_ = 0;
  std::unordered_map<std::uint32_t, Stream> streams_;
  std::size_t inbound_streams_ = 0;
  std::size_t outbound_streams_ = 0;
  std::size_t streams_near_cap_ = 0;

  std::unordered_set<std::uint32_t> reset_streams_;
  std::deque<std::uint32_t> reset_order_;  // oldest first
  // Data of streams that finished before the app polled it, keyed by stream.
  std::unordered_map<std::uint32_t, Bytes> orphaned_data_;

  OffenceCounter streams_over_limit_;
  OffenceCounter messages_for_missing_streams_;

  // Receive parser: a partial header, or the rest of a frame's payload.
  std::uint8_t header_bytes_[kMaxHeaderSize] = {};
  std::size_t header_filled_ = 0;
  std::uint32_t payload_handle_ = 0;
  std::uint64_t payload_remaining_ = 0;
  PayloadSink payload_sink_ = PayloadSink::kDiscard;

  Clock::time_point now_{};
  bool local_went_away_ = false;
  std::optional<Error> failure_;

  Bytes output_;
  std::deque<Event> events_;
};

}  // namespace an::p2p::mplex
