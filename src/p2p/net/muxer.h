// The stream multiplexer of a connection behind one interface, so that a Connection runs
// yamux (/yamux/1.0.0) or mplex (/mplex/6.7.0) alike. Sessions are sans-I/O state machines:
// fed bytes and time, they produce bytes and events. One owner thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::net {

using MuxerClock = std::chrono::steady_clock;

struct MuxerEvent {
  enum class Kind {
    kInboundStream,  // the peer opened stream_id; accept() it (or reset() to refuse)
    kData,           // data holds the next bytes of stream_id; call consumed() once used
    kRemoteClosed,   // the peer half-closed stream_id: no more data will come
    kReset,          // stream_id was reset (by the peer, or by the muxer); it is gone
    kWritable,       // stream_id's send window grew from zero: write() accepts data again
    kPingReply,      // a reply to ping(): code = the ping's value, rtt = round trip
    kGoAway,         // the peer announced it goes away: open_stream() now fails
  };
  Kind kind = MuxerEvent::Kind::kData;
  std::uint32_t stream_id = 0;  // meaningless for kPingReply and kGoAway
  Bytes data;
  std::chrono::nanoseconds rtt{};
  std::uint32_t code = 0;

  bool concerns_stream() const { return kind != Kind::kPingReply && kind != Kind::kGoAway; }
};

enum class GoAwayReason { kNormal, kProtocolError };

class MuxerSession {
 public:
  virtual ~MuxerSession() = default;

  // The protocol ID negotiated for it, e.g. "/yamux/1.0.0".
  virtual std::string_view protocol() const = 0;

  // Feeds bytes read from the connection, split anywhere. An error means the peer broke the
  // protocol: go_away(kProtocolError), flush the output and close the connection.
  virtual Expected<void> receive(ByteView bytes, MuxerClock::time_point now) = 0;
  // The connection's read side ended: an error if it ended inside a frame.
  virtual Expected<void> receive_eof() const = 0;

  virtual Expected<std::uint32_t> open_stream() = 0;
  virtual Expected<void> accept(std::uint32_t id) = 0;
  // Takes up to send_window(id) bytes of `data` and returns how many; zero means "wait for
  // kWritable".
  virtual Expected<std::size_t> write(std::uint32_t id, ByteView data) = 0;
  virtual std::size_t send_window(std::uint32_t id) const = 0;
  // Half-closes our direction. Idempotent.
  virtual Expected<void> close_write(std::uint32_t id) = 0;
  // Aborts the stream both ways; unknown streams are ignored.
  virtual void reset(std::uint32_t id) = 0;
  // The app has used `bytes` of the data delivered on `id`.
  virtual Expected<void> consumed(std::uint32_t id, std::size_t bytes,
                                  MuxerClock::time_point now) = 0;

  // Sends a ping and returns its value (the reply comes as kPingReply); nullopt when the
  // muxer has no ping.
  virtual std::optional<std::uint32_t> ping(MuxerClock::time_point now) = 0;
  virtual std::optional<std::chrono::nanoseconds> rtt() const = 0;
  // Announces (where the muxer can) that we accept no more streams, and stops accepting them.
  virtual void go_away(GoAwayReason reason) = 0;

  // True while the muxer wants the connection not read (a receive buffer near its cap, in a
  // muxer without flow control); consumed() or a reset ends it.
  virtual bool reading_paused() const = 0;
  // Reading stayed paused too long: resets the streams that hold it.
  virtual void reset_stalled_streams() = 0;

  virtual bool has_output() const = 0;
  virtual std::size_t output_size() const = 0;
  // Appends all pending output to `out` (moves the buffer when `out` is empty).
  virtual void take_output(Bytes& out) = 0;
  // Next event in arrival order; false when there is none.
  virtual bool poll_event(MuxerEvent& event) = 0;

  virtual std::size_t stream_count() const = 0;
  virtual bool remote_went_away() const = 0;
  virtual bool local_went_away() const = 0;
  virtual bool failed() const = 0;
};

// A session of the muxer `protocol` (one is_supported_muxer() accepts); the dialer of the
// underlying connection is the initiator.
Expected<std::unique_ptr<MuxerSession>> make_muxer_session(std::string_view protocol,
                                                           bool is_initiator);

}  // namespace an::p2p::net
