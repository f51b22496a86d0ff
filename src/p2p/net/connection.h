// A secured, multiplexed libp2p connection (yamux or mplex over Noise) and its streams. The
// connection owns its reader and writer coroutines; streams are shared by the connection and their
// user. Everything runs on the network thread (one io_context thread), so nothing here locks.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "p2p/multiformats/multiaddr.h"
#include "p2p/multistream/multistream.h"
#include "p2p/net/async.h"
#include "p2p/net/byte_stream.h"
#include "p2p/net/muxer.h"
#include "p2p/net/secure_connection.h"
#include "p2p/net/upgrade.h"
#include "p2p/rcmgr/resource_manager.h"

namespace an::p2p::net {

// How long a connection must be quiet before it frees its read and write buffers.
inline constexpr std::chrono::seconds kIdleBufferRelease{1};
// A muxer without flow control (mplex) pauses reading while a stream's unread data nears its
// cap, so that TCP slows the peer; a reader that does not catch up within this time gets its
// stream reset and reading goes on.
inline constexpr std::chrono::seconds kStalledStreamTimeout{5};

class Connection;

// One multiplexed stream. Reads wait for data; writes wait for the peer's window. What it
// buffers (data received and not read yet, messages a reader reassembles) is reserved from its
// resource scope: the stream is reset when that is full.
class Stream final : public ByteStream, public std::enable_shared_from_this<Stream> {
 public:
  Stream(std::shared_ptr<Connection> connection, std::uint32_t id, Direction direction,
         rcmgr::StreamScope scope);
  ~Stream() override;

  asio::awaitable<Expected<void>> write_all(ByteView bytes) override;
  asio::awaitable<Expected<void>> close_write() override;
  void abort() override;  // the muxer's reset

  std::uint32_t id() const { return id_; }
  Direction direction() const { return direction_; }
  const std::string& protocol() const { return protocol_; }
  // Moves the stream into its protocol's resource scope; fails when that is full (the caller
  // resets the stream).
  Expected<void> set_protocol(std::string protocol);
  bool reserve_memory(std::size_t bytes) override;
  void release_memory(std::size_t bytes) override;
  // Queues a few bytes without waiting (they must fit the initial window, as a multistream
  // proposal does). Errors when the stream or connection is gone.
  Expected<void> queue_write(ByteView bytes);
  // Optimistic ("lazy") negotiation: the proposal went out and data may follow it at once; the
  // peer's answer is consumed before the first bytes read, and a refusal fails that read.
  void expect_negotiation_answer(std::unique_ptr<multistream::Initiator> initiator) {
    pending_negotiation_ = std::move(initiator);
  }
  Connection& connection() { return *connection_; }
  const PeerId& remote_peer() const;

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override;
  asio::awaitable<Expected<void>> wait_readable_from_source() override;

 private:
  friend class Connection;

  asio::awaitable<Expected<std::size_t>> read_from_connection(std::span<std::uint8_t> buffer);

  std::unique_ptr<multistream::Initiator> pending_negotiation_;
  std::shared_ptr<Connection> connection_;
  std::uint32_t id_;
  Direction direction_;
  std::string protocol_;
  rcmgr::StreamScope scope_;
  Bytes inbox_;
  std::size_t inbox_start_ = 0;
  bool remote_closed_ = false;  // FIN received
  bool reset_ = false;          // RST either way, or the connection died
  bool write_closed_ = false;
  Signal readable_;
  Signal writable_;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Called for every stream the peer opens, before any protocol is negotiated on it.
  using InboundStreamHandler = std::function<void(std::shared_ptr<Stream>)>;
  using ClosedHandler = std::function<void(Connection&, const std::string& reason)>;

  // `scope` is the connection's resource scope with its peer set (an empty one: no limits).
  Connection(UpgradedConnection upgraded, std::unique_ptr<MuxerSession> session,
             Direction direction, Multiaddr remote_address, Multiaddr local_address,
             rcmgr::ConnectionScope scope = {}, bool relayed = false);
  ~Connection();

  // Starts the reader and writer. Call once, right after construction.
  Expected<void> start(InboundStreamHandler on_inbound, ClosedHandler on_closed);

  // Opens a stream (announced to the peer at once). Fails once the connection is closing or
  // the peer sent GoAway, or when the resource scope has no room for another stream.
  Expected<std::shared_ptr<Stream>> open_stream();

  // Graceful close: GoAway (where the muxer has one), flush, then close the socket. Idempotent.
  void close(const std::string& reason);

  bool is_open() const { return !closed_; }
  // Open and not winding down: no GoAway sent or received, so new streams can be opened.
  bool accepts_new_streams() const {
    return !closed_ && !closing_ && !session_->local_went_away() && !session_->remote_went_away();
  }
  Direction direction() const { return direction_; }
  // Runs over a stream of a connection to a circuit relay (remote_address() then contains
  // /p2p-circuit): limited in time and data by the relay, so a direct connection is preferred.
  bool relayed() const { return relayed_; }
  const PeerId& remote_peer() const { return remote_peer_; }
  const Multiaddr& remote_address() const { return remote_address_; }
  const Multiaddr& local_address() const { return local_address_; }
  std::size_t stream_count() const { return streams_.size(); }
  std::chrono::system_clock::time_point opened_at() const { return opened_at_; }
  std::optional<std::chrono::nanoseconds> rtt() const { return session_->rtt(); }
  // The negotiated muxer's protocol ID.
  std::string_view muxer() const { return session_->protocol(); }

  // True once the peer has shown that its side of the connection is set up: it opened a stream
  // or answered on one of ours (keepalive pings do not count: js sends one at once).
  bool peer_ready() const { return peer_ready_; }
  // Waits until peer_ready() or the connection closes; false on timeout.
  asio::awaitable<bool> wait_peer_ready(std::chrono::steady_clock::time_point deadline);

 private:
  friend class Stream;

  asio::awaitable<void> read_loop();
  asio::awaitable<void> write_loop();
  void dispatch_events();
  void fail(const std::string& reason);
  void wake_writer() { output_ready_.notify(); }
  void note_activity();
  void arm_buffer_release();
  void forget_stream(std::uint32_t id) { streams_.erase(id); }
  // A stream scope for a new stream; an empty one when the connection has no scope.
  Expected<rcmgr::StreamScope> stream_scope(rcmgr::Direction direction);
  // Received data the stream's scope cannot hold: the stream is reset.
  void refuse_data(Stream& stream, std::size_t bytes);
  void maybe_resume_reading() {
    if (read_paused_ && !session_->reading_paused()) read_resume_.notify();
  }
  asio::awaitable<void> wait_while_reading_paused();

  std::unique_ptr<SecureConnection> secure_;
  std::unique_ptr<MuxerSession> session_;
  rcmgr::ConnectionScope scope_;
  Direction direction_;
  bool relayed_;
  PeerId remote_peer_;
  Multiaddr remote_address_;
  Multiaddr local_address_;
  std::chrono::system_clock::time_point opened_at_ = std::chrono::system_clock::now();
  std::unordered_map<std::uint32_t, std::weak_ptr<Stream>> streams_;
  InboundStreamHandler on_inbound_;
  ClosedHandler on_closed_;
  Signal output_ready_;
  Signal output_drained_;
  Signal peer_ready_signal_;
  Signal read_resume_;
  bool read_paused_ = false;
  bool peer_ready_ = false;
  Bytes write_buffer_;
  bool writing_ = false;
  asio::steady_timer buffer_release_timer_;
  std::uint64_t activity_ = 0;
  std::uint64_t seen_activity_ = 0;
  bool release_timer_armed_ = false;
  bool closing_ = false;  // GoAway sent; flush then close
  bool closed_ = false;
  std::string close_reason_;
};

// Builds a Connection from an upgraded one, with a session of the muxer it negotiated; the
// dialer is the muxer's initiator.
Expected<std::shared_ptr<Connection>> make_connection(UpgradedConnection upgraded,
                                                      Direction direction, Multiaddr remote_address,
                                                      Multiaddr local_address,
                                                      rcmgr::ConnectionScope scope = {},
                                                      bool relayed = false);

}  // namespace an::p2p::net
