// The yamux (/yamux/1.0.0) stream multiplexer as a state machine without I/O: fed bytes and
// time, it produces bytes and events. One owner thread at a time; the caller owns all buffers.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "p2p/multiformats/varint.h"
#include "p2p/yamux/frame.h"
#include "util/expected.h"

namespace an::p2p::yamux {

inline constexpr std::string_view kProtocolId = "/yamux/1.0.0";

// Every stream starts with this window in both directions; the spec fixes it, so a larger
// initial window can only be announced by a window update sent with the SYN or ACK.
inline constexpr std::uint32_t kSpecInitialWindow = 256 * 1024;
// go-yamux's maxStreamWindow: the auto-tuned receive window never grows past it.
inline constexpr std::uint32_t kDefaultMaxWindow = 16 * 1024 * 1024;
// go-yamux and js-libp2p-yamux both default to 1000 inbound streams.
inline constexpr std::size_t kDefaultMaxStreams = 1000;
// The spec asks implementations to buffer at least 256 unacknowledged inbound streams.
inline constexpr std::size_t kDefaultAcceptBacklog = 256;
// 64 KiB frames, header included, as go-yamux (MaxMessageSize) and js-libp2p-yamux send: the
// 12-byte header costs 0.02%, yet one stream cannot hold the connection for more than 64 KiB
// at a time, so other streams' frames (and pongs) interleave with a bulk transfer.
inline constexpr std::size_t kDefaultMaxFramePayload = 64 * 1024 - kHeaderSize;
// The receive window doubles when half of it was consumed within this many RTTs, as in go-yamux
// and js-libp2p-yamux: an update is sent per half window, so this means the whole window
// drains in about 8 RTTs or less, i.e. the window, not the link, may be what limits the rate.
inline constexpr int kWindowGrowthRttMultiple = 4;
// Pings we remember while waiting for their replies; older ones are forgotten.
inline constexpr std::size_t kMaxOutstandingPings = 16;
// Streams we reset but whose peer may still have data in flight; beyond this many the oldest
// is forgotten (late data on it then counts as data on an unknown stream).
inline constexpr std::size_t kMaxResetStreamsRemembered = 16384;

using Clock = std::chrono::steady_clock;

struct Config {
  // The dialer of the underlying connection: it opens odd stream IDs, the listener even ones.
  bool is_initiator = false;
  // Receive window we grant every new stream (at least kSpecInitialWindow).
  std::uint32_t initial_window = kSpecInitialWindow;
  // Ceiling for the auto-tuned receive window (at least initial_window).
  std::uint32_t max_window = kDefaultMaxWindow;
  // Concurrent streams per direction. Inbound SYNs beyond it are answered with RST; open_stream
  // fails beyond it.
  std::size_t max_streams = kDefaultMaxStreams;
  // Inbound streams announced to the app but not yet accepted; SYNs beyond it get RST.
  std::size_t accept_backlog = kDefaultAcceptBacklog;
  // Largest Data payload we put in one frame.
  std::size_t max_frame_payload = kDefaultMaxFramePayload;
  // The session pings on its own this often (from receive/consumed) to learn the RTT that
  // window auto-tuning needs; zero turns that off (ping() still works).
  Clock::duration rtt_probe_interval = std::chrono::seconds(30);
  // How long data may still arrive on a stream we reset (the peer had it in flight), counted
  // from the first receive() after the reset. Within it such data is dropped, up to the window
  // the peer still had; after it, it is an error.
  Clock::duration reset_grace = std::chrono::seconds(30);
};

// Checks the relations documented on Config.
Expected<void> validate(const Config& config);

struct Event {
  enum class Kind {
    kInboundStream,  // the peer opened stream_id; accept() it (or reset() to refuse)
    kData,           // data holds the next bytes of stream_id; call consumed() once used
    kRemoteClosed,   // the peer half-closed stream_id (FIN): no more data will come
    kReset,          // stream_id was reset by the peer (code: its error code); it is gone
    kWritable,       // stream_id's send window grew from zero: write() accepts data again
    kPingReply,      // a reply to ping(): code = the ping's value, rtt = round trip
    kGoAway,         // the peer sent GoAway(code): open_stream() now fails; streams go on
  };
  Kind kind = Kind::kData;
  std::uint32_t stream_id = 0;
  Bytes data;
  std::chrono::nanoseconds rtt{};
  std::uint32_t code = 0;
};

class Session {
 public:
  static Expected<Session> create(const Config& config);

  // Feeds the next bytes read from the connection, split anywhere. An error means the peer
  // broke the protocol (or the session had already failed): send go_away(kProtocolError),
  // flush the output and close the connection. The session stays failed.
  Expected<void> receive(ByteView bytes, Clock::time_point now);
  // The connection's read side ended: an error if it ended inside a frame.
  Expected<void> receive_eof() const;

  // Opens an outbound stream: a WindowUpdate(SYN) goes into the output at once (carrying the
  // window we grant beyond the spec's 256 KiB), so the peer learns of it even if we never
  // write. Data may be written right away, before the peer's ACK.
  Expected<std::uint32_t> open_stream();
  // Accepts an inbound stream announced by kInboundStream: sends its ACK. Writing to, reading
  // (consumed) or closing the stream accepts it implicitly too.
  Expected<void> accept(std::uint32_t id);

  // Frames up to send_window(id) bytes of `data` into the output and returns how many were
  // taken; zero means "wait for kWritable".
  Expected<std::size_t> write(std::uint32_t id, ByteView data);
  std::size_t send_window(std::uint32_t id) const;
  // Half-closes our direction (FIN). Idempotent.
  Expected<void> close_write(std::uint32_t id);
  // Aborts the stream in both directions (RST with `code`). Unknown streams are ignored.
  void reset(std::uint32_t id, std::uint32_t code = 0);
  // The app has used `bytes` of data delivered on `id`: frees window and, once half of the
  // window is free, sends a window update (growing the window when it drains fast).
  // Unknown or finished streams are ignored; consuming more than was delivered is an error.
  Expected<void> consumed(std::uint32_t id, std::size_t bytes, Clock::time_point now);
  // Current receive window of the stream (grows by auto-tuning); 0 for unknown streams.
  std::size_t receive_window(std::uint32_t id) const;

  // Sends a ping and returns its value; its reply comes as kPingReply.
  std::uint32_t ping(Clock::time_point now);
  // Smoothed round-trip time from ping replies, if any arrived.
  std::optional<std::chrono::nanoseconds> rtt() const { return rtt_; }

  // Sends GoAway(code) once: from then on inbound SYNs get RST and open_stream() fails.
  void go_away(GoAwayCode code);

  bool has_output() const { return !output_.empty(); }
  std::size_t output_size() const { return output_.size(); }
  // Appends all pending frames to `out` (moves the buffer when `out` is empty).
  void take_output(Bytes& out);

  // Next event in arrival order; false when there is none.
  bool poll_event(Event& event);

  std::size_t stream_count() const { return streams_.size(); }
  bool remote_went_away() const { return remote_went_away_; }
  bool local_went_away() const { return local_went_away_; }
  bool failed() const { return failure_.has_value(); }

 private:
  explicit Session(const Config& config);

  struct Stream {
    bool outbound = false;
    bool ack_pending = false;   // inbound: our next frame on it must carry ACK
    bool ack_received = false;  // outbound: the peer acknowledged our SYN
    bool in_backlog = false;    // inbound, announced, not yet accepted
    bool write_closed = false;  // we sent FIN
    bool read_closed = false;   // the peer sent FIN
    bool data_event_queued = false;
    bool writable_event_queued = false;
    std::uint64_t send_window = kSpecInitialWindow;
    std::uint32_t receive_window = kSpecInitialWindow;  // current target, grows by tuning
    std::uint32_t receive_credit = kSpecInitialWindow;  // bytes the peer may still send
    std::uint64_t unconsumed = 0;                       // delivered, not yet consumed
    Clock::time_point epoch_start{};                    // last window update, for tuning
    Bytes inbox;                                        // data not yet polled by the app
  };

  // A stream we dropped while the peer could still send on it.
  struct ResetStream {
    std::uint32_t credit = 0;  // what the peer may still send
    Clock::time_point expires = Clock::time_point::max();
  };

  // Where the payload of the Data frame being received goes.
  enum class PayloadSink { kStream, kDiscard };

  Expected<void> fail_session(std::string message);
  void note_time(Clock::time_point now);
  Expected<void> handle_frame(const FrameHeader& header);
  Expected<void> handle_stream_frame(const FrameHeader& header);
  Expected<void> handle_frame_on_missing_stream(const FrameHeader& header);
  Expected<void> open_inbound(std::uint32_t id);
  void handle_ping(const FrameHeader& header);
  void handle_go_away(const FrameHeader& header);
  void deliver_payload(ByteView chunk);
  void finish_frame(const FrameHeader& header);
  void refuse_inbound(std::uint32_t id);

  void remember_reset(std::uint32_t id, std::uint32_t credit);
  void expire_reset_streams(Clock::time_point now);
  void remove_stream(std::unordered_map<std::uint32_t, Stream>::iterator it, bool keep_data);
  void mark_accepted(Stream& stream);
  std::uint16_t take_ack_flag(Stream& stream);
  void update_receive_window(std::uint32_t id, Stream& stream, Clock::time_point now);
  void maybe_probe_rtt(Clock::time_point now);
  std::uint32_t send_ping(Clock::time_point now, bool requested_by_app);
  void emit(const FrameHeader& header);

  Config config_;
  std::uint32_t next_stream_id_;
  std::unordered_map<std::uint32_t, Stream> streams_;
  std::size_t inbound_streams_ = 0;
  std::size_t outbound_streams_ = 0;
  std::size_t backlog_ = 0;

  std::unordered_map<std::uint32_t, ResetStream> reset_streams_;
  std::deque<std::uint32_t> reset_order_;        // oldest first
  std::vector<std::uint32_t> unstamped_resets_;  // grace starts at the next receive()
  // Data of streams that finished before the app polled it, keyed by stream.
  std::unordered_map<std::uint32_t, Bytes> orphaned_data_;

  // Receive parser: a partial header, or the rest of a Data frame's payload.
  std::uint8_t header_bytes_[kHeaderSize] = {};
  std::size_t header_filled_ = 0;
  FrameHeader payload_header_{};
  std::uint32_t payload_remaining_ = 0;
  PayloadSink payload_sink_ = PayloadSink::kDiscard;

  struct OutstandingPing {
    std::uint32_t value = 0;
    Clock::time_point sent{};
    bool requested_by_app = false;
  };
  std::vector<OutstandingPing> pings_;
  std::uint32_t next_ping_value_ = 1;
  std::optional<Clock::time_point> last_probe_;
  std::optional<std::chrono::nanoseconds> rtt_;

  Clock::time_point now_{};
  bool remote_went_away_ = false;
  bool local_went_away_ = false;
  std::optional<Error> failure_;

  Bytes output_;
  std::deque<Event> events_;
};

}  // namespace an::p2p::yamux
