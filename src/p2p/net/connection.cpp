#include "p2p/net/connection.h"

namespace an::p2p::net {
namespace {

// Writers wait while this much is queued for the socket, so a slow peer cannot make us buffer
// without bound (flow-control windows bound each stream; this bounds their sum).
constexpr std::size_t kMaxQueuedOutput = 4 * 1024 * 1024;

MuxerClock::time_point now() {
  return MuxerClock::now();
}

}  // namespace

// ---- Stream ----

Stream::Stream(std::shared_ptr<Connection> connection, std::uint32_t id, Direction direction,
               rcmgr::StreamScope scope)
    : connection_(std::move(connection)),
      id_(id),
      direction_(direction),
      scope_(std::move(scope)),
      readable_(connection_->secure_->executor()),
      writable_(connection_->secure_->executor()) {}

Stream::~Stream() {
  // A stream dropped before we finished writing is reset, so the peer does not wait forever.
  // One we closed for writing stays half-closed: what the peer still sends is discarded.
  if (!reset_ && !write_closed_ && connection_->is_open()) {
    connection_->session_->reset(id_);
    connection_->wake_writer();
    connection_->maybe_resume_reading();
  }
  connection_->forget_stream(id_);
}

const PeerId& Stream::remote_peer() const {
  return connection_->remote_peer();
}

Expected<void> Stream::set_protocol(std::string protocol) {
  if (scope_.valid()) {
    if (auto placed = scope_.set_protocol(protocol); !placed) return placed;
  }
  protocol_ = std::move(protocol);
  return {};
}

bool Stream::reserve_memory(std::size_t bytes) {
  return !scope_.valid() || scope_.reserve_memory(static_cast<std::int64_t>(bytes));
}

void Stream::release_memory(std::size_t bytes) {
  if (scope_.valid()) scope_.release_memory(static_cast<std::int64_t>(bytes));
}

asio::awaitable<Expected<std::size_t>> Stream::read_some_from_source(
    std::span<std::uint8_t> buffer) {
  if (pending_negotiation_) {
    auto negotiation = std::move(pending_negotiation_);
    Bytes chunk(multistream::kMaxMessageLength + 16);
    while (!negotiation->done()) {
      auto got = co_await read_from_connection(chunk);
      if (!got) co_return tl::unexpected(got.error());
      if (*got == 0) co_return fail("stream closed during protocol negotiation");
      if (auto fed = negotiation->receive(ByteView(chunk.data(), *got)); !fed) {
        abort();
        co_return fail("protocol negotiation: " + fed.error().message);
      }
    }
    Bytes leftover = negotiation->take_leftover();
    if (!leftover.empty()) {
      std::size_t count = std::min(buffer.size(), leftover.size());
      std::copy_n(leftover.begin(), count, buffer.begin());
      leftover.erase(leftover.begin(), leftover.begin() + static_cast<long>(count));
      unread(std::move(leftover));
      co_return count;
    }
  }
  co_return co_await read_from_connection(buffer);
}

asio::awaitable<Expected<void>> Stream::wait_readable_from_source() {
  // A pending negotiation answer is read with the caller's buffer, like any data.
  while (!pending_negotiation_ && inbox_start_ == inbox_.size() && !remote_closed_ && !reset_) {
    co_await readable_.wait();
  }
  co_return Expected<void>{};
}

asio::awaitable<Expected<std::size_t>> Stream::read_from_connection(
    std::span<std::uint8_t> buffer) {
  while (inbox_start_ == inbox_.size() && !remote_closed_ && !reset_) {
    co_await readable_.wait();
  }
  if (inbox_start_ < inbox_.size()) {
    std::size_t count = std::min(buffer.size(), inbox_.size() - inbox_start_);
    std::copy_n(inbox_.begin() + static_cast<long>(inbox_start_), count, buffer.begin());
    inbox_start_ += count;
    release_memory(count);
    if (inbox_start_ == inbox_.size()) {
      Bytes().swap(inbox_);
      inbox_start_ = 0;
    }
    if (connection_->is_open()) {
      (void)connection_->session_->consumed(id_, count, now());
      if (connection_->session_->has_output()) connection_->wake_writer();
      connection_->maybe_resume_reading();
    }
    co_return count;
  }
  // A reset after the peer's FIN loses nothing: everything it sent has been read.
  if (reset_ && !remote_closed_) co_return fail("stream reset");
  co_return std::size_t{0};
}

asio::awaitable<Expected<void>> Stream::write_all(ByteView bytes) {
  while (!bytes.empty()) {
    if (reset_ || !connection_->is_open()) co_return fail("stream reset");
    if (write_closed_) co_return fail("stream closed for writing");
    while (connection_->session_->output_size() > kMaxQueuedOutput && connection_->is_open()) {
      co_await connection_->output_drained_.wait();
    }
    auto accepted = connection_->session_->write(id_, bytes);
    if (!accepted) co_return tl::unexpected(accepted.error());
    if (*accepted == 0) {
      co_await writable_.wait();
      continue;
    }
    bytes = bytes.subspan(*accepted);
    connection_->wake_writer();
  }
  co_return Expected<void>{};
}

Expected<void> Stream::queue_write(ByteView bytes) {
  if (reset_ || write_closed_ || !connection_->is_open()) return fail("stream closed");
  auto accepted = connection_->session_->write(id_, bytes);
  if (!accepted) return tl::unexpected(accepted.error());
  if (*accepted != bytes.size()) return fail("stream window too small for a queued write");
  connection_->wake_writer();
  return {};
}

asio::awaitable<Expected<void>> Stream::close_write() {
  if (write_closed_) co_return Expected<void>{};
  if (reset_ || !connection_->is_open()) co_return fail("stream reset");
  write_closed_ = true;
  auto closed = connection_->session_->close_write(id_);
  connection_->wake_writer();
  connection_->maybe_resume_reading();  // closing both ways forgets the stream's unread data
  co_return closed;
}

void Stream::abort() {
  if (reset_) return;
  reset_ = true;
  if (connection_->is_open()) {
    connection_->session_->reset(id_);
    connection_->wake_writer();
    connection_->maybe_resume_reading();
  }
  readable_.notify();
  writable_.notify();
}

// ---- Connection ----

Expected<std::shared_ptr<Connection>> make_connection(UpgradedConnection upgraded,
                                                      Direction direction, Multiaddr remote_address,
                                                      Multiaddr local_address,
                                                      rcmgr::ConnectionScope scope, bool relayed) {
  auto session = make_muxer_session(upgraded.muxer, direction == Direction::kOutbound);
  if (!session) return tl::unexpected(session.error());
  return std::make_shared<Connection>(std::move(upgraded), std::move(*session), direction,
                                      std::move(remote_address), std::move(local_address),
                                      std::move(scope), relayed);
}

Connection::Connection(UpgradedConnection upgraded, std::unique_ptr<MuxerSession> session,
                       Direction direction, Multiaddr remote_address, Multiaddr local_address,
                       rcmgr::ConnectionScope scope, bool relayed)
    : secure_(std::move(upgraded.secure)),
      session_(std::move(session)),
      scope_(std::move(scope)),
      direction_(direction),
      relayed_(relayed),
      remote_peer_(secure_->remote_peer()),
      remote_address_(std::move(remote_address)),
      local_address_(std::move(local_address)),
      output_ready_(secure_->executor()),
      output_drained_(secure_->executor()),
      peer_ready_signal_(secure_->executor()),
      read_resume_(secure_->executor()),
      buffer_release_timer_(secure_->executor()) {}

asio::awaitable<bool> Connection::wait_peer_ready(std::chrono::steady_clock::time_point deadline) {
  // Keeps the connection alive across the wait, whoever holds the caller's reference.
  auto self = shared_from_this();
  while (!peer_ready_ && !closed_) {
    bool woken = co_await peer_ready_signal_.wait_until(deadline);
    if (!woken) co_return false;
  }
  co_return peer_ready_;
}

Connection::~Connection() = default;

Expected<void> Connection::start(InboundStreamHandler on_inbound, ClosedHandler on_closed) {
  on_inbound_ = std::move(on_inbound);
  on_closed_ = std::move(on_closed);
  auto executor = secure_->executor();
  auto self = shared_from_this();
  asio::co_spawn(
      executor, [self]() { return self->read_loop(); }, report_exception);
  asio::co_spawn(
      executor, [self]() { return self->write_loop(); }, report_exception);
  return {};
}

Expected<rcmgr::StreamScope> Connection::stream_scope(rcmgr::Direction direction) {
  if (!scope_.valid()) return rcmgr::StreamScope{};
  return scope_.open_stream(direction);
}

void Connection::refuse_data(Stream& stream, std::size_t bytes) {
  // The data is dropped with the stream; the muxer's window for it is returned first so that
  // the connection's accounting of the peer's window stays right.
  (void)session_->consumed(stream.id_, bytes, now());
  session_->reset(stream.id_);
  stream.reset_ = true;
  stream.readable_.notify();
  stream.writable_.notify();
  wake_writer();
}

Expected<std::shared_ptr<Stream>> Connection::open_stream() {
  if (closed_ || closing_) return tl::unexpected(Error{"connection is closing", {}});
  auto scope = stream_scope(rcmgr::Direction::kOutbound);
  if (!scope) return tl::unexpected(scope.error());
  auto id = session_->open_stream();
  if (!id) return tl::unexpected(id.error());
  auto stream =
      std::make_shared<Stream>(shared_from_this(), *id, Direction::kOutbound, std::move(*scope));
  streams_[*id] = stream;
  wake_writer();
  return stream;
}

void Connection::close(const std::string& reason) {
  if (closed_ || closing_) return;
  closing_ = true;
  close_reason_ = reason;
  session_->go_away(GoAwayReason::kNormal);
  wake_writer();
}

void Connection::fail(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  if (close_reason_.empty()) close_reason_ = reason;
  secure_->abort();
  // Streams may drop their last reference while being woken; iterate over a copy.
  auto streams = streams_;
  for (auto& [id, weak] : streams) {
    if (auto stream = weak.lock()) {
      stream->reset_ = true;
      stream->readable_.notify();
      stream->writable_.notify();
    }
  }
  output_ready_.notify();
  output_drained_.notify();
  peer_ready_signal_.notify();
  read_resume_.notify();
  buffer_release_timer_.cancel();
  if (on_closed_) {
    auto handler = std::move(on_closed_);
    handler(*this, close_reason_);
  }
  on_inbound_ = nullptr;
}

void Connection::dispatch_events() {
  MuxerEvent event;
  while (session_->poll_event(event)) {
    if (!peer_ready_ && event.concerns_stream()) {
      peer_ready_ = true;
      peer_ready_signal_.notify();
    }
    auto found = streams_.find(event.stream_id);
    std::shared_ptr<Stream> stream;
    if (found != streams_.end()) stream = found->second.lock();
    switch (event.kind) {
      case MuxerEvent::Kind::kInboundStream: {
        auto scope = stream_scope(rcmgr::Direction::kInbound);
        if (!on_inbound_ || closing_ || !scope || !session_->accept(event.stream_id)) {
          session_->reset(event.stream_id);
          break;
        }
        auto inbound = std::make_shared<Stream>(shared_from_this(), event.stream_id,
                                                Direction::kInbound, std::move(*scope));
        streams_[event.stream_id] = inbound;
        on_inbound_(std::move(inbound));
        break;
      }
      case MuxerEvent::Kind::kData:
        if (!stream) {
          (void)session_->consumed(event.stream_id, event.data.size(), now());
          break;
        }
        if (!stream->reserve_memory(event.data.size())) {
          refuse_data(*stream, event.data.size());
          break;
        }
        if (stream->inbox_.empty()) {
          stream->inbox_ = std::move(event.data);
          stream->inbox_start_ = 0;
        } else {
          stream->inbox_.insert(stream->inbox_.end(), event.data.begin(), event.data.end());
        }
        stream->readable_.notify();
        break;
      case MuxerEvent::Kind::kRemoteClosed:
        if (stream) {
          stream->remote_closed_ = true;
          stream->readable_.notify();
        }
        break;
      case MuxerEvent::Kind::kReset:
        if (stream) {
          stream->reset_ = true;
          stream->readable_.notify();
          stream->writable_.notify();
        }
        break;
      case MuxerEvent::Kind::kWritable:
        if (stream) stream->writable_.notify();
        break;
      case MuxerEvent::Kind::kPingReply:
      case MuxerEvent::Kind::kGoAway:
        break;
    }
  }
}

asio::awaitable<void> Connection::wait_while_reading_paused() {
  const auto deadline = std::chrono::steady_clock::now() + kStalledStreamTimeout;
  read_paused_ = true;
  while (session_->reading_paused() && !closed_) {
    bool woken = co_await read_resume_.wait_until(deadline);
    if (!woken) break;
  }
  read_paused_ = false;
  if (closed_ || !session_->reading_paused()) co_return;
  session_->reset_stalled_streams();
  dispatch_events();
  wake_writer();
}

asio::awaitable<void> Connection::read_loop() {
  auto self = shared_from_this();
  while (!closed_) {
    if (session_->reading_paused()) {
      co_await wait_while_reading_paused();
      if (closed_) break;
    }
    auto view = co_await secure_->read_view();
    if (closed_) break;
    if (!view) {
      fail(view.error().message);
      break;
    }
    if (view->empty()) {
      fail("closed by the peer");
      break;
    }
    note_activity();
    auto received = session_->receive(*view, now());
    dispatch_events();
    if (!received) {
      session_->go_away(GoAwayReason::kProtocolError);
      close_reason_ = received.error().message;
      closing_ = true;
      wake_writer();
      break;
    }
    if (session_->has_output()) wake_writer();
  }
}

asio::awaitable<void> Connection::write_loop() {
  auto self = shared_from_this();
  for (;;) {
    while (!session_->has_output() && !closed_ && !closing_)
      co_await output_ready_.wait();
    if (closed_) break;
    if (session_->has_output()) {
      write_buffer_.clear();
      session_->take_output(write_buffer_);
      writing_ = true;
      auto written = co_await secure_->write_all(write_buffer_);
      writing_ = false;
      output_drained_.notify();
      if (!written) {
        fail(written.error().message);
        break;
      }
      note_activity();
      continue;
    }
    if (closing_) {
      // Everything, including our GoAway, is on the wire.
      (void)co_await secure_->close_write();
      fail(close_reason_.empty() ? "closed" : close_reason_);
      break;
    }
  }
}

void Connection::note_activity() {
  ++activity_;
  if (release_timer_armed_ || closed_) return;
  release_timer_armed_ = true;
  arm_buffer_release();
}

void Connection::arm_buffer_release() {
  seen_activity_ = activity_;
  buffer_release_timer_.expires_after(kIdleBufferRelease);
  buffer_release_timer_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_) return;
    if (self->activity_ != self->seen_activity_ || self->writing_ || self->session_->has_output()) {
      self->arm_buffer_release();
      return;
    }
    // A quiet second: free the buffers; a busy connection keeps reusing them, since
    // allocating megabytes per burst would cost more than the I/O.
    self->release_timer_armed_ = false;
    Bytes().swap(self->write_buffer_);
    self->secure_->release_write_buffer();
    self->secure_->release_read_buffer();
  });
}

}  // namespace an::p2p::net
