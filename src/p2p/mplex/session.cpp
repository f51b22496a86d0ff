#include "p2p/mplex/session.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace an::p2p::mplex {
namespace {

std::string stream_name(std::uint32_t handle) {
  return "mplex: stream " + std::to_string(wire_stream_id(handle)) +
         (opened_locally(handle) ? " (ours)" : " (the peer's)");
}

}  // namespace

Expected<void> validate(const Config& config) {
  if (config.max_message_size == 0 || config.max_message_size > kMaxVarintValue) {
    return fail("mplex: max_message_size must be at least 1");
  }
  if (config.max_inbound_streams == 0 || config.max_outbound_streams == 0) {
    return fail("mplex: max_inbound_streams and max_outbound_streams must be at least 1");
  }
  if (config.max_unconsumed < config.max_message_size) {
    return fail("mplex: max_unconsumed must hold at least one message of max_message_size");
  }
  return {};
}

Expected<Session> Session::create(const Config& config) {
  if (auto valid = validate(config); !valid) return tl::unexpected(valid.error());
  return Session(config);
}

bool Session::OffenceCounter::exceeded(Clock::time_point now, std::size_t threshold) {
  if (count == 0 || now - window_start >= std::chrono::seconds(1)) {
    window_start = now;
    count = 0;
  }
  ++count;
  return count > threshold;
}

// ---- Receiving ----------------------------------------------------------------------------

Expected<void> Session::fail_session(std::string message) {
  failure_ = Error{std::move(message), {}};
  return tl::unexpected(*failure_);
}

Expected<void> Session::receive(ByteView bytes, Clock::time_point now) {
  if (failure_) return tl::unexpected(*failure_);
  now_ = std::max(now_, now);

  while (!bytes.empty()) {
    if (payload_remaining_ > 0) {
      const std::size_t take =
          static_cast<std::size_t>(std::min<std::uint64_t>(payload_remaining_, bytes.size()));
      if (payload_sink_ == PayloadSink::kStream) deliver_payload(bytes.first(take));
      bytes = bytes.subspan(take);
      payload_remaining_ -= take;
      continue;
    }

    Expected<std::optional<DecodedHeader>> decoded;
    if (header_filled_ == 0) {
      decoded = decode_header(bytes, config_.max_message_size);
      if (!decoded) return fail_session(decoded.error().message);
      if (!*decoded) {
        // Both varints end within kMaxHeaderSize bytes or fail, so the rest fits the buffer.
        std::copy(bytes.begin(), bytes.end(), header_bytes_);
        header_filled_ = bytes.size();
        break;
      }
      bytes = bytes.subspan((*decoded)->size);
    } else {
      const std::size_t take = std::min(kMaxHeaderSize - header_filled_, bytes.size());
      std::copy_n(bytes.begin(), take, header_bytes_ + header_filled_);
      decoded =
          decode_header(ByteView(header_bytes_, header_filled_ + take), config_.max_message_size);
      if (!decoded) return fail_session(decoded.error().message);
      if (!*decoded) {
        header_filled_ += take;
        break;
      }
      bytes = bytes.subspan((*decoded)->size - header_filled_);
      header_filled_ = 0;
    }
    if (auto handled = handle_frame((*decoded)->header); !handled) {
      return fail_session(handled.error().message);
    }
  }
  return {};
}

Expected<void> Session::receive_eof() const {
  if (failure_) return tl::unexpected(*failure_);
  if (header_filled_ > 0) {
    return fail("mplex: connection ended inside a frame header (" + std::to_string(header_filled_) +
                " bytes of it)");
  }
  if (payload_remaining_ > 0) {
    return fail("mplex: connection ended inside a frame's payload (" +
                std::to_string(payload_remaining_) + " bytes missing)");
  }
  return {};
}

Expected<void> Session::handle_frame(const FrameHeader& header) {
  // Payloads of everything but a Message we keep (NewStream's name; Close and Reset should
  // have none) are skipped.
  payload_remaining_ = header.length;
  payload_sink_ = PayloadSink::kDiscard;
  if (header.flag == Flag::kNewStream) return open_inbound(header);

  // A Receiver flag comes from the side that did not open the stream: the stream is ours.
  const bool ours = !sent_by_initiator(header.flag);
  if (header.stream_id > kMaxSupportedStreamId) {
    // We never open such IDs and never accept them, so no such stream can exist.
    return handle_missing_stream(header, std::nullopt);
  }
  const std::uint32_t handle = stream_handle(header.stream_id, ours);
  auto it = streams_.find(handle);
  if (it == streams_.end()) return handle_missing_stream(header, handle);
  Stream& stream = it->second;

  switch (header.flag) {
    case Flag::kMessageInitiator:
    case Flag::kMessageReceiver:
      if (header.length == 0) return {};
      if (stream.read_closed || stream.unconsumed + header.length > config_.max_unconsumed) {
        // Data after the peer's Close, or more than the app has room for: mplex has no flow
        // control, so the stream is reset and the connection goes on.
        reset_after_violation(handle);
        return {};
      }
      set_unconsumed(stream, stream.unconsumed + header.length);
      payload_handle_ = handle;
      payload_sink_ = PayloadSink::kStream;
      return {};
    case Flag::kCloseInitiator:
    case Flag::kCloseReceiver:
      if (stream.read_closed) return {};
      stream.read_closed = true;
      events_.push_back(Event{Event::Kind::kRemoteClosed, handle, {}});
      if (stream.write_closed) remove_stream(it, /*keep_data=*/true);
      return {};
    case Flag::kResetInitiator:
    case Flag::kResetReceiver:
      events_.push_back(Event{Event::Kind::kReset, handle, {}});
      remove_stream(it, /*keep_data=*/true);
      return {};
    case Flag::kNewStream:
      break;
  }
  return {};
}

Expected<void> Session::open_inbound(const FrameHeader& header) {
  if (header.stream_id > kMaxSupportedStreamId) {
    return fail("mplex: NewStream with ID " + std::to_string(header.stream_id) +
                ", beyond the 2^31-1 we support");
  }
  const std::uint32_t handle = stream_handle(header.stream_id, /*opened_locally=*/false);
  if (streams_.contains(handle)) {
    return fail(stream_name(handle) + ": NewStream for a stream that is still open");
  }
  // A reset ID may be reused: the peer forgot it.
  reset_streams_.erase(handle);
  if (local_went_away_) {
    refuse_inbound(header.stream_id);
    return {};
  }
  if (inbound_streams_ >= config_.max_inbound_streams) {
    refuse_inbound(header.stream_id);
    if (streams_over_limit_.exceeded(now_, config_.disconnect_threshold)) {
      return fail("mplex: the peer keeps opening streams beyond the limit of " +
                  std::to_string(config_.max_inbound_streams));
    }
    return {};
  }
  streams_.emplace(handle, Stream{});
  ++inbound_streams_;
  events_.push_back(Event{Event::Kind::kInboundStream, handle, {}});
  return {};
}

Expected<void> Session::handle_missing_stream(const FrameHeader& header,
                                              std::optional<std::uint32_t> handle) {
  const bool is_message =
      header.flag == Flag::kMessageInitiator || header.flag == Flag::kMessageReceiver;
  if (handle) {
    auto reset = reset_streams_.find(*handle);
    if (reset != reset_streams_.end()) {
      // We reset it and the peer had messages in flight; its own Close or Reset ends them.
      if (!is_message) reset_streams_.erase(reset);
      return {};
    }
  }
  // Close and Reset for streams that just finished are normal races; messages for streams
  // that never existed are not, and a peer sending many of them is dropped, as js-libp2p does.
  if (is_message && header.length > 0 &&
      messages_for_missing_streams_.exceeded(now_, config_.disconnect_threshold)) {
    return fail("mplex: the peer keeps sending messages for streams that are not open (last: " +
                describe(header) + ")");
  }
  return {};
}

void Session::refuse_inbound(std::uint64_t wire_id) {
  const std::uint32_t handle = stream_handle(wire_id, /*opened_locally=*/false);
  emit(handle, Flag::kResetReceiver);
  remember_reset(handle);
}

void Session::reset_after_violation(std::uint32_t handle) {
  auto it = streams_.find(handle);
  if (it == streams_.end()) return;
  emit(handle, reset_flag(opened_locally(handle)));
  events_.push_back(Event{Event::Kind::kReset, handle, {}});
  remember_reset(handle);
  // What arrived before stays readable, as with a reset by the peer.
  remove_stream(it, /*keep_data=*/true);
}

void Session::deliver_payload(ByteView chunk) {
  auto it = streams_.find(payload_handle_);
  if (it == streams_.end()) return;  // the app reset it mid-frame: drop the rest
  Stream& stream = it->second;
  if (stream.inbox.empty() && stream.inbox.capacity() < payload_remaining_) {
    stream.inbox.reserve(static_cast<std::size_t>(payload_remaining_));
  }
  stream.inbox.insert(stream.inbox.end(), chunk.begin(), chunk.end());
  if (!stream.data_event_queued) {
    // One event per batch of unpolled data, however many messages it came in.
    stream.data_event_queued = true;
    events_.push_back(Event{Event::Kind::kData, payload_handle_, {}});
  }
}

// ---- Stream bookkeeping -------------------------------------------------------------------

void Session::remember_reset(std::uint32_t handle) {
  while (reset_streams_.size() >= kMaxResetStreamsRemembered && !reset_order_.empty()) {
    reset_streams_.erase(reset_order_.front());
    reset_order_.pop_front();
  }
  if (reset_streams_.insert(handle).second) reset_order_.push_back(handle);
  // Entries the peer ended early leave their handles behind; drop them once they dominate.
  if (reset_order_.size() > 2 * reset_streams_.size() + 64) {
    std::erase_if(reset_order_, [&](std::uint32_t id) { return !reset_streams_.contains(id); });
  }
}

void Session::remove_stream(std::unordered_map<std::uint32_t, Stream>::iterator it,
                            bool keep_data) {
  if (opened_locally(it->first)) {
    --outbound_streams_;
  } else {
    --inbound_streams_;
  }
  Stream& stream = it->second;
  if (stream.near_cap) --streams_near_cap_;
  if (keep_data && stream.data_event_queued && !stream.inbox.empty()) {
    orphaned_data_[it->first] = std::move(stream.inbox);
  }
  streams_.erase(it);
}

// ---- Local operations ---------------------------------------------------------------------

Expected<std::uint32_t> Session::open_stream() {
  if (failure_) return tl::unexpected(*failure_);
  if (local_went_away_) return fail("mplex: cannot open a stream: the connection is closing");
  if (outbound_streams_ >= config_.max_outbound_streams) {
    return fail("mplex: cannot open a stream: " + std::to_string(outbound_streams_) +
                " outbound streams are open, the configured maximum");
  }
  if (next_stream_id_ > kMaxSupportedStreamId) {
    return fail("mplex: stream IDs exhausted on this connection");
  }
  const std::uint64_t wire_id = next_stream_id_++;
  const std::uint32_t handle = stream_handle(wire_id, /*opened_locally=*/true);
  streams_.emplace(handle, Stream{});
  ++outbound_streams_;
  // The name is informational; js-libp2p sends the ID in decimal, and so do we.
  const std::string name = std::to_string(wire_id);
  append_header(output_, FrameHeader{wire_id, Flag::kNewStream, name.size()});
  output_.insert(output_.end(), name.begin(), name.end());
  return handle;
}

Expected<void> Session::accept(std::uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return fail(stream_name(id) + " is not open");
  if (opened_locally(id))
    return fail(stream_name(id) + " is ours: only inbound streams are accepted");
  return {};
}

std::size_t Session::send_window(std::uint32_t id) const {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.write_closed || failure_) return 0;
  return config_.max_message_size;
}

Expected<std::size_t> Session::write(std::uint32_t id, ByteView data) {
  if (failure_) return tl::unexpected(*failure_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return fail(stream_name(id) + " is not open (reset or finished)");
  if (it->second.write_closed) return fail(stream_name(id) + ": write after close_write");
  // One message per call: the caller bounds the output between calls.
  const std::size_t size = std::min(data.size(), config_.max_message_size);
  if (size == 0) return std::size_t{0};
  output_.reserve(output_.size() + size + kMaxHeaderSize);
  append_header(output_, FrameHeader{wire_stream_id(id), message_flag(opened_locally(id)), size});
  output_.insert(output_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(size));
  return size;
}

Expected<void> Session::close_write(std::uint32_t id) {
  if (failure_) return tl::unexpected(*failure_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return fail(stream_name(id) + " is not open (reset or finished)");
  Stream& stream = it->second;
  if (stream.write_closed) return {};
  stream.write_closed = true;
  emit(id, close_flag(opened_locally(id)));
  if (stream.read_closed) remove_stream(it, /*keep_data=*/true);
  return {};
}

void Session::reset(std::uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  emit(id, reset_flag(opened_locally(id)));
  if (!it->second.read_closed) remember_reset(id);
  remove_stream(it, /*keep_data=*/false);
}

Expected<void> Session::consumed(std::uint32_t id, std::size_t bytes) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return {};
  Stream& stream = it->second;
  if (bytes > stream.unconsumed) {
    return fail(stream_name(id) + ": consumed " + std::to_string(bytes) + " bytes but only " +
                std::to_string(stream.unconsumed) + " were delivered");
  }
  set_unconsumed(stream, stream.unconsumed - bytes);
  return {};
}

void Session::go_away() {
  local_went_away_ = true;
}

void Session::set_unconsumed(Stream& stream, std::uint64_t unconsumed) {
  stream.unconsumed = unconsumed;
  const bool near_cap = unconsumed + config_.max_message_size > config_.max_unconsumed;
  if (near_cap == stream.near_cap) return;
  stream.near_cap = near_cap;
  if (near_cap) {
    ++streams_near_cap_;
  } else {
    --streams_near_cap_;
  }
}

void Session::reset_stalled_streams() {
  std::vector<std::uint32_t> stalled;
  for (const auto& [handle, stream] : streams_) {
    if (stream.near_cap) stalled.push_back(handle);
  }
  for (std::uint32_t handle : stalled)
    reset_after_violation(handle);
}

// ---- Output and events --------------------------------------------------------------------

void Session::emit(std::uint32_t handle, Flag flag) {
  append_header(output_, FrameHeader{wire_stream_id(handle), flag, 0});
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
    }
    event = std::move(next);
    return true;
  }
  return false;
}

// ---- Fuzzing ------------------------------------------------------------------------------

}  // namespace an::p2p::mplex
