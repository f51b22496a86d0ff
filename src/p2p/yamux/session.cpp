#include "p2p/yamux/session.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

namespace an::p2p::yamux {
namespace {

constexpr std::uint32_t kMaxStreamId = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t kMaxSendWindow = std::numeric_limits<std::uint32_t>::max();

std::string stream_name(std::uint32_t id) {
  return "yamux: stream " + std::to_string(id);
}

}  // namespace

Expected<void> validate(const Config& config) {
  if (config.initial_window < kSpecInitialWindow) {
    return fail("yamux: initial_window " + std::to_string(config.initial_window) +
                " is below the spec's 256 KiB every peer assumes");
  }
  if (config.max_window < config.initial_window) {
    return fail("yamux: max_window " + std::to_string(config.max_window) +
                " is below initial_window " + std::to_string(config.initial_window));
  }
  if (config.max_streams == 0) return fail("yamux: max_streams must be at least 1");
  if (config.accept_backlog == 0) return fail("yamux: accept_backlog must be at least 1");
  if (config.max_frame_payload == 0 ||
      config.max_frame_payload > std::numeric_limits<std::uint32_t>::max()) {
    return fail("yamux: max_frame_payload must be between 1 and 2^32-1");
  }
  if (config.rtt_probe_interval < Clock::duration::zero() ||
      config.reset_grace < Clock::duration::zero()) {
    return fail("yamux: rtt_probe_interval and reset_grace must not be negative");
  }
  return {};
}

Expected<Session> Session::create(const Config& config) {
  if (auto valid = validate(config); !valid) return tl::unexpected(valid.error());
  return Session(config);
}

Session::Session(const Config& config)
    : config_(config), next_stream_id_(config.is_initiator ? 1 : 2) {}

// ---- Receiving ----------------------------------------------------------------------------

Expected<void> Session::fail_session(std::string message) {
  failure_ = Error{std::move(message), {}};
  return tl::unexpected(*failure_);
}

void Session::note_time(Clock::time_point now) {
  now_ = std::max(now_, now);
}

Expected<void> Session::receive(ByteView bytes, Clock::time_point now) {
  if (failure_) return tl::unexpected(*failure_);
  note_time(now);
  expire_reset_streams(now_);
  maybe_probe_rtt(now_);

  while (!bytes.empty()) {
    if (payload_remaining_ > 0) {
      const std::size_t take = std::min<std::size_t>(payload_remaining_, bytes.size());
      if (payload_sink_ == PayloadSink::kStream) deliver_payload(bytes.first(take));
      bytes = bytes.subspan(take);
      payload_remaining_ -= static_cast<std::uint32_t>(take);
      if (payload_remaining_ == 0) finish_frame(payload_header_);
      continue;
    }

    Expected<FrameHeader> header;
    if (header_filled_ == 0 && bytes.size() >= kHeaderSize) {
      // Whole header in this chunk: decode it in place instead of copying it first.
      header = decode_header(bytes.first(kHeaderSize));
      bytes = bytes.subspan(kHeaderSize);
    } else {
      const std::size_t take = std::min(kHeaderSize - header_filled_, bytes.size());
      std::copy_n(bytes.begin(), take, header_bytes_ + header_filled_);
      header_filled_ += take;
      bytes = bytes.subspan(take);
      if (header_filled_ < kHeaderSize) break;
      header_filled_ = 0;
      header = decode_header(ByteView(header_bytes_, kHeaderSize));
    }
    if (!header) return fail_session(header.error().message);
    if (auto handled = handle_frame(*header); !handled) {
      return fail_session(handled.error().message);
    }
  }
  return {};
}

Expected<void> Session::receive_eof() const {
  if (failure_) return tl::unexpected(*failure_);
  if (header_filled_ > 0) {
    return fail("yamux: connection ended inside a frame header (" + std::to_string(header_filled_) +
                " of " + std::to_string(kHeaderSize) + " bytes)");
  }
  if (payload_remaining_ > 0) {
    return fail("yamux: connection ended inside the payload of " + describe(payload_header_) +
                " (" + std::to_string(payload_remaining_) + " bytes missing)");
  }
  return {};
}

Expected<void> Session::handle_frame(const FrameHeader& header) {
  switch (header.type) {
    case FrameType::kPing:
      handle_ping(header);
      return {};
    case FrameType::kGoAway:
      handle_go_away(header);
      return {};
    case FrameType::kData:
    case FrameType::kWindowUpdate:
      if (header.stream_id == kSessionStreamId) {
        return fail("yamux: " + describe(header) + " addresses stream 0, which only Ping and " +
                    "GoAway may use");
      }
      return handle_stream_frame(header);
  }
  return fail("yamux: unknown frame type");  // decode_header already rejects these
}

Expected<void> Session::handle_stream_frame(const FrameHeader& header) {
  const std::uint32_t id = header.stream_id;
  if (header.has(kFlagSyn)) {
    if (auto opened = open_inbound(id); !opened) return opened;
  }
  auto it = streams_.find(id);
  if (it == streams_.end()) return handle_frame_on_missing_stream(header);
  Stream& stream = it->second;

  if (header.has(kFlagAck) && stream.outbound && !stream.ack_received) {
    stream.ack_received = true;
  }

  if (header.type == FrameType::kWindowUpdate) {
    // With RST the length is an error code (go-yamux), not a delta.
    if (!header.has(kFlagRst) && header.length > 0) {
      const bool was_blocked = stream.send_window == 0;
      stream.send_window += header.length;
      if (stream.send_window > kMaxSendWindow) {
        return fail(stream_name(id) + ": window updates grew the send window to " +
                    std::to_string(stream.send_window) + ", beyond 2^32-1");
      }
      if (was_blocked && !stream.write_closed && !stream.writable_event_queued) {
        stream.writable_event_queued = true;
        events_.push_back(Event{Event::Kind::kWritable, id, {}, {}, 0});
      }
    }
    finish_frame(header);
    return {};
  }

  if (header.length == 0) {
    finish_frame(header);
    return {};
  }
  if (stream.read_closed) {
    return fail(stream_name(id) + ": " + describe(header) + " after the peer's FIN");
  }
  if (header.length > stream.receive_credit) {
    return fail(stream_name(id) + ": " + describe(header) + " overruns the receive window (" +
                std::to_string(stream.receive_credit) + " bytes left)");
  }
  stream.receive_credit -= header.length;
  stream.unconsumed += header.length;
  payload_header_ = header;
  payload_remaining_ = header.length;
  payload_sink_ = PayloadSink::kStream;
  return {};
}

Expected<void> Session::handle_frame_on_missing_stream(const FrameHeader& header) {
  const std::uint32_t id = header.stream_id;
  auto reset = reset_streams_.find(id);
  if (reset != reset_streams_.end()) {
    // We dropped this stream; the peer may not know yet and had data in flight.
    if (header.type == FrameType::kData && header.length > 0) {
      if (header.length > reset->second.credit) {
        return fail(stream_name(id) + ": " + describe(header) + " on a reset stream overruns " +
                    "the window the peer had left (" + std::to_string(reset->second.credit) +
                    " bytes)");
      }
      reset->second.credit -= header.length;
      payload_header_ = header;
      payload_remaining_ = header.length;
      payload_sink_ = PayloadSink::kDiscard;
    }
    // The peer's own FIN or RST means it will send nothing more on it.
    if (header.has(kFlagFin) || header.has(kFlagRst)) reset_streams_.erase(reset);
    return {};
  }
  if (header.type == FrameType::kData && header.length > 0) {
    return fail(stream_name(id) + ": " + describe(header) + " for a stream that is not open");
  }
  // Window updates, FINs and RSTs for finished streams are normal races: ignore them.
  return {};
}

Expected<void> Session::open_inbound(std::uint32_t id) {
  const bool peer_opens_odd = !config_.is_initiator;
  if (id == kSessionStreamId || (id % 2 == 1) != peer_opens_odd) {
    return fail(stream_name(id) + ": SYN with an ID of the wrong parity (the " +
                (peer_opens_odd ? std::string("initiator opens odd IDs")
                                : std::string("responder opens even IDs")) +
                ")");
  }
  if (streams_.contains(id) || reset_streams_.contains(id)) {
    return fail(stream_name(id) + ": duplicate SYN for a stream already opened");
  }
  if (local_went_away_ || inbound_streams_ >= config_.max_streams ||
      backlog_ >= config_.accept_backlog) {
    refuse_inbound(id);
    return {};
  }
  Stream stream;
  stream.outbound = false;
  stream.ack_pending = true;
  stream.in_backlog = true;
  // The peer assumes the spec's window until our ACK grants the rest of initial_window.
  stream.receive_window = config_.initial_window;
  stream.epoch_start = now_;
  streams_.emplace(id, std::move(stream));
  ++inbound_streams_;
  ++backlog_;
  events_.push_back(Event{Event::Kind::kInboundStream, id, {}, {}, 0});
  return {};
}

void Session::refuse_inbound(std::uint32_t id) {
  emit(FrameHeader{FrameType::kWindowUpdate, kFlagRst, id, 0});
  // The peer may send up to the spec's initial window before it sees the RST.
  remember_reset(id, kSpecInitialWindow);
}

void Session::deliver_payload(ByteView chunk) {
  auto it = streams_.find(payload_header_.stream_id);
  if (it == streams_.end()) return;  // the app reset it mid-frame: drop the rest
  Stream& stream = it->second;
  if (stream.inbox.empty() && stream.inbox.capacity() < payload_remaining_) {
    stream.inbox.reserve(payload_remaining_);
  }
  stream.inbox.insert(stream.inbox.end(), chunk.begin(), chunk.end());
  if (!stream.data_event_queued) {
    // One event per batch of unpolled data, however many frames it came in: a peer sending
    // one-byte frames cannot make us hold one event per byte.
    stream.data_event_queued = true;
    events_.push_back(Event{Event::Kind::kData, payload_header_.stream_id, {}, {}, 0});
  }
}

// Applies the flags that end a stream, after the frame's payload (if any) was delivered.
void Session::finish_frame(const FrameHeader& header) {
  auto it = streams_.find(header.stream_id);
  if (it == streams_.end()) return;
  Stream& stream = it->second;
  if (header.has(kFlagRst)) {
    const std::uint32_t code = header.type == FrameType::kWindowUpdate ? header.length : 0;
    events_.push_back(Event{Event::Kind::kReset, header.stream_id, {}, {}, code});
    remove_stream(it, /*keep_data=*/true);
    return;
  }
  if (header.has(kFlagFin) && !stream.read_closed) {
    stream.read_closed = true;
    events_.push_back(Event{Event::Kind::kRemoteClosed, header.stream_id, {}, {}, 0});
    if (stream.write_closed) remove_stream(it, /*keep_data=*/true);
  }
}

void Session::handle_ping(const FrameHeader& header) {
  if (header.has(kFlagSyn)) {
    emit(FrameHeader{FrameType::kPing, kFlagAck, kSessionStreamId, header.length});
    return;
  }
  if (!header.has(kFlagAck)) return;
  auto it = std::find_if(pings_.begin(), pings_.end(),
                         [&](const OutstandingPing& ping) { return ping.value == header.length; });
  if (it == pings_.end()) return;  // unsolicited or forgotten: harmless
  const auto sample = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::max(now_ - it->sent, Clock::duration::zero()));
  // Same smoothing as go-yamux: the mean of the previous estimate and the new sample.
  rtt_ = rtt_ ? (*rtt_ / 2 + sample / 2) : sample;
  if (it->requested_by_app) {
    events_.push_back(Event{Event::Kind::kPingReply, 0, {}, sample, it->value});
  }
  pings_.erase(it);
}

void Session::handle_go_away(const FrameHeader& header) {
  if (remote_went_away_) return;
  remote_went_away_ = true;
  events_.push_back(Event{Event::Kind::kGoAway, 0, {}, {}, header.length});
}

// ---- Stream bookkeeping -------------------------------------------------------------------

void Session::remember_reset(std::uint32_t id, std::uint32_t credit) {
  if (config_.reset_grace == Clock::duration::zero()) return;
  while (reset_streams_.size() >= kMaxResetStreamsRemembered && !reset_order_.empty()) {
    reset_streams_.erase(reset_order_.front());
    reset_order_.pop_front();
  }
  // The grace starts at the next receive(): reset() has no clock, and the time we last heard
  // from the peer may be long past.
  reset_streams_[id] = ResetStream{credit, Clock::time_point::max()};
  reset_order_.push_back(id);
  unstamped_resets_.push_back(id);
}

void Session::expire_reset_streams(Clock::time_point now) {
  for (std::uint32_t id : unstamped_resets_) {
    auto it = reset_streams_.find(id);
    if (it != reset_streams_.end()) it->second.expires = now + config_.reset_grace;
  }
  unstamped_resets_.clear();
  // Stamped in insertion order with a clock that never goes back, so the oldest expire first.
  while (!reset_order_.empty()) {
    auto it = reset_streams_.find(reset_order_.front());
    if (it != reset_streams_.end()) {
      if (it->second.expires > now) break;
      reset_streams_.erase(it);
    }
    reset_order_.pop_front();
  }
  // Entries the peer closed early leave their IDs behind; drop them once they dominate.
  if (reset_order_.size() > 2 * reset_streams_.size() + 64) {
    std::erase_if(reset_order_, [&](std::uint32_t id) { return !reset_streams_.contains(id); });
  }
}

void Session::remove_stream(std::unordered_map<std::uint32_t, Stream>::iterator it,
                            bool keep_data) {
  Stream& stream = it->second;
  if (stream.outbound) {
    --outbound_streams_;
  } else {
    --inbound_streams_;
    if (stream.in_backlog) --backlog_;
  }
  if (keep_data && stream.data_event_queued && !stream.inbox.empty()) {
    orphaned_data_[it->first] = std::move(stream.inbox);
  }
  streams_.erase(it);
}

void Session::mark_accepted(Stream& stream) {
  if (!stream.in_backlog) return;
  stream.in_backlog = false;
  --backlog_;
}

std::uint16_t Session::take_ack_flag(Stream& stream) {
  mark_accepted(stream);
  if (!stream.ack_pending) return 0;
  stream.ack_pending = false;
  return kFlagAck;
}

// Grants the peer more window once half of it is free (go-yamux's rule, so both sides send
// similar update rates), doubling the window up to max_window when the previous half window
// was consumed within kWindowGrowthRttMultiple RTTs.
void Session::update_receive_window(std::uint32_t id, Stream& stream, Clock::time_point now) {
  const std::uint16_t flags = take_ack_flag(stream);
  if (stream.read_closed && flags == 0) return;  // the peer will send nothing more
  const std::uint64_t outstanding = std::uint64_t{stream.receive_credit} + stream.unconsumed;
  std::uint64_t delta =
      outstanding >= stream.receive_window ? 0 : stream.receive_window - outstanding;
  if (flags == 0 && delta < stream.receive_window / 2) return;

  if (flags == 0 && rtt_ && *rtt_ > std::chrono::nanoseconds::zero() &&
      now - stream.epoch_start < kWindowGrowthRttMultiple * *rtt_ &&
      stream.receive_window < config_.max_window) {
    const std::uint64_t grown =
        std::min<std::uint64_t>(std::uint64_t{stream.receive_window} * 2, config_.max_window);
    delta += grown - stream.receive_window;
    stream.receive_window = static_cast<std::uint32_t>(grown);
  }
  stream.epoch_start = now;
  if (delta == 0 && flags == 0) return;
  stream.receive_credit += static_cast<std::uint32_t>(delta);
  emit(FrameHeader{FrameType::kWindowUpdate, flags, id, static_cast<std::uint32_t>(delta)});
}

// ---- Local operations ---------------------------------------------------------------------

Expected<std::uint32_t> Session::open_stream() {
  if (failure_) return tl::unexpected(*failure_);
  if (remote_went_away_) return fail("yamux: cannot open a stream: the peer sent GoAway");
  if (local_went_away_) return fail("yamux: cannot open a stream: we sent GoAway");
  if (outbound_streams_ >= config_.max_streams) {
    return fail("yamux: cannot open a stream: " + std::to_string(outbound_streams_) +
                " outbound streams are open, the configured maximum");
  }
  if (next_stream_id_ >= kMaxStreamId - 1) {
    return fail("yamux: stream IDs exhausted on this connection");
  }
  const std::uint32_t id = next_stream_id_;
  next_stream_id_ += 2;

  Stream stream;
  stream.outbound = true;
  stream.receive_window = config_.initial_window;
  stream.receive_credit = config_.initial_window;
  stream.epoch_start = now_;
  streams_.emplace(id, std::move(stream));
  ++outbound_streams_;
  emit(FrameHeader{FrameType::kWindowUpdate, kFlagSyn, id,
                   config_.initial_window - kSpecInitialWindow});
  return id;
}

Expected<void> Session::accept(std::uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return fail(stream_name(id) + " is not open");
  Stream& stream = it->second;
  if (stream.outbound) return fail(stream_name(id) + " is ours: only inbound streams are accepted");
  if (!stream.ack_pending) {
    mark_accepted(stream);
    return {};
  }
  // The ACK carries whatever window we grant beyond what the peer may already send.
  update_receive_window(id, stream, now_);
  return {};
}

std::size_t Session::send_window(std::uint32_t id) const {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.write_closed) return 0;
  return static_cast<std::size_t>(it->second.send_window);
}

std::size_t Session::receive_window(std::uint32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.receive_window;
}

Expected<std::size_t> Session::write(std::uint32_t id, ByteView data) {
  if (failure_) return tl::unexpected(*failure_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return fail(stream_name(id) + " is not open (reset or finished)");
  Stream& stream = it->second;
  if (stream.write_closed) return fail(stream_name(id) + ": write after close_write");
  const std::size_t total =
      static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), stream.send_window));
  if (total == 0) return std::size_t{0};

  const std::size_t frames = (total + config_.max_frame_payload - 1) / config_.max_frame_payload;
  output_.reserve(output_.size() + total + frames * kHeaderSize);
  std::uint16_t flags = take_ack_flag(stream);
  for (std::size_t offset = 0; offset < total;) {
    const std::size_t size = std::min(total - offset, config_.max_frame_payload);
    append_header(output_,
                  FrameHeader{FrameType::kData, flags, id, static_cast<std::uint32_t>(size)});
    output_.insert(output_.end(), data.begin() + static_cast<std::ptrdiff_t>(offset),
                   data.begin() + static_cast<std::ptrdiff_t>(offset + size));
    offset += size;
    flags = 0;
  }
  stream.send_window -= total;
  return total;
}

Expected<void> Session::close_write(std::uint32_t id) {
  if (failure_) return tl::unexpected(*failure_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return fail(stream_name(id) + " is not open (reset or finished)");
  Stream& stream = it->second;
  if (stream.write_closed) return {};
  stream.write_closed = true;
  emit(FrameHeader{FrameType::kWindowUpdate,
                   static_cast<std::uint16_t>(take_ack_flag(stream) | kFlagFin), id, 0});
  if (stream.read_closed) remove_stream(it, /*keep_data=*/true);
  return {};
}

void Session::reset(std::uint32_t id, std::uint32_t code) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  emit(FrameHeader{FrameType::kWindowUpdate, kFlagRst, id, code});
  if (!it->second.read_closed) remember_reset(id, it->second.receive_credit);
  remove_stream(it, /*keep_data=*/false);
}

Expected<void> Session::consumed(std::uint32_t id, std::size_t bytes, Clock::time_point now) {
  note_time(now);
  maybe_probe_rtt(now_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return {};
  Stream& stream = it->second;
  if (bytes > stream.unconsumed) {
    return fail(stream_name(id) + ": consumed " + std::to_string(bytes) + " bytes but only " +
                std::to_string(stream.unconsumed) + " were delivered");
  }
  stream.unconsumed -= bytes;
  if (!failure_) update_receive_window(id, stream, now_);
  return {};
}

std::uint32_t Session::ping(Clock::time_point now) {
  note_time(now);
  return send_ping(now_, /*requested_by_app=*/true);
}

std::uint32_t Session::send_ping(Clock::time_point now, bool requested_by_app) {
  if (pings_.size() >= kMaxOutstandingPings) pings_.erase(pings_.begin());
  const std::uint32_t value = next_ping_value_++;
  pings_.push_back(OutstandingPing{value, now, requested_by_app});
  emit(FrameHeader{FrameType::kPing, kFlagSyn, kSessionStreamId, value});
  return value;
}

void Session::maybe_probe_rtt(Clock::time_point now) {
  if (config_.rtt_probe_interval == Clock::duration::zero() || failure_) return;
  if (last_probe_ && now - *last_probe_ < config_.rtt_probe_interval) return;
  const bool probe_outstanding = std::any_of(
      pings_.begin(), pings_.end(), [](const auto& ping) { return !ping.requested_by_app; });
  if (probe_outstanding) return;
  last_probe_ = now;
  send_ping(now, /*requested_by_app=*/false);
}

void Session::go_away(GoAwayCode code) {
  if (local_went_away_) return;
  local_went_away_ = true;
  emit(FrameHeader{FrameType::kGoAway, 0, kSessionStreamId, static_cast<std::uint32_t>(code)});
}

// ---- Output and events --------------------------------------------------------------------

void Session::emit(const FrameHeader& header) {
  append_header(output_, header);
}

void Session::take_output(Bytes& out) {
  if (out.empty()) {
    out.swap(output_);
  } else {
    out.insert(out.end(), output_.begin(), output_.end());
  }
  output_.clear();
}

bool Session::poll_event(Event& event) {
  while (!events_.empty()) {
    Event next = std::move(events_.front());
    events_.pop_front();
    if (next.kind == Event::Kind::kData) {
      auto it = streams_.find(next.stream_id);
      if (it != streams_.end() && it->second.data_event_queued) {
        it->second.data_event_queued = false;
        next.data = std::move(it->second.inbox);
        it->second.inbox = Bytes();
      } else if (auto orphan = orphaned_data_.find(next.stream_id);
                 orphan != orphaned_data_.end()) {
        next.data = std::move(orphan->second);
        orphaned_data_.erase(orphan);
      }
      if (next.data.empty()) continue;  // the app reset the stream meanwhile
    } else if (next.kind == Event::Kind::kWritable) {
      auto it = streams_.find(next.stream_id);
      if (it == streams_.end()) continue;
      it->second.writable_event_queued = false;
    }
    event = std::move(next);
    return true;
  }
  return false;
}

// ---- Fuzzing ------------------------------------------------------------------------------

}  // namespace an::p2p::yamux
