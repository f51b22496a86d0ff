#include "p2p/net/muxer.h"

#include <string>
#include <utility>

#include "p2p/mplex/session.h"
#include "p2p/yamux/session.h"

namespace an::p2p::net {
namespace {

MuxerEvent::Kind to_muxer_kind(yamux::Event::Kind kind) {
  switch (kind) {
    case yamux::Event::Kind::kInboundStream:
      return MuxerEvent::Kind::kInboundStream;
    case yamux::Event::Kind::kData:
      return MuxerEvent::Kind::kData;
    case yamux::Event::Kind::kRemoteClosed:
      return MuxerEvent::Kind::kRemoteClosed;
    case yamux::Event::Kind::kReset:
      return MuxerEvent::Kind::kReset;
    case yamux::Event::Kind::kWritable:
      return MuxerEvent::Kind::kWritable;
    case yamux::Event::Kind::kPingReply:
      return MuxerEvent::Kind::kPingReply;
    case yamux::Event::Kind::kGoAway:
      return MuxerEvent::Kind::kGoAway;
  }
  return MuxerEvent::Kind::kGoAway;
}

MuxerEvent::Kind to_muxer_kind(mplex::Event::Kind kind) {
  switch (kind) {
    case mplex::Event::Kind::kInboundStream:
      return MuxerEvent::Kind::kInboundStream;
    case mplex::Event::Kind::kData:
      return MuxerEvent::Kind::kData;
    case mplex::Event::Kind::kRemoteClosed:
      return MuxerEvent::Kind::kRemoteClosed;
    case mplex::Event::Kind::kReset:
      return MuxerEvent::Kind::kReset;
  }
  return MuxerEvent::Kind::kReset;
}

// Only yamux reports round trips and error codes.
void copy_details(const yamux::Event& from, MuxerEvent& to) {
  to.rtt = from.rtt;
  to.code = from.code;
}
void copy_details(const mplex::Event&, MuxerEvent& to) {
  to.rtt = {};
  to.code = 0;
}

// The calls both sessions answer alike; the subclasses add where they differ.
template <typename Session, typename Event>
class SessionMuxer : public MuxerSession {
 public:
  explicit SessionMuxer(Session session) : session_(std::move(session)) {}

  Expected<void> receive(ByteView bytes, MuxerClock::time_point now) override {
    return session_.receive(bytes, now);
  }
  Expected<void> receive_eof() const override { return session_.receive_eof(); }
  Expected<std::uint32_t> open_stream() override { return session_.open_stream(); }
  Expected<void> accept(std::uint32_t id) override { return session_.accept(id); }
  Expected<std::size_t> write(std::uint32_t id, ByteView data) override {
    return session_.write(id, data);
  }
  std::size_t send_window(std::uint32_t id) const override { return session_.send_window(id); }
  Expected<void> close_write(std::uint32_t id) override { return session_.close_write(id); }
  void reset(std::uint32_t id) override { session_.reset(id); }
  bool has_output() const override { return session_.has_output(); }
  std::size_t output_size() const override { return session_.output_size(); }
  void take_output(Bytes& out) override { session_.take_output(out); }
  bool poll_event(MuxerEvent& event) override {
    if (!session_.poll_event(polled_)) return false;
    event.kind = to_muxer_kind(polled_.kind);
    event.stream_id = polled_.stream_id;
    event.data = std::move(polled_.data);
    polled_.data = Bytes();
    copy_details(polled_, event);
    return true;
  }
  std::size_t stream_count() const override { return session_.stream_count(); }
  bool local_went_away() const override { return session_.local_went_away(); }
  bool failed() const override { return session_.failed(); }

 protected:
  Session session_;

 private:
  Event polled_;
};

class YamuxMuxer final : public SessionMuxer<yamux::Session, yamux::Event> {
 public:
  using SessionMuxer::SessionMuxer;

  std::string_view protocol() const override { return yamux::kProtocolId; }
  Expected<void> consumed(std::uint32_t id, std::size_t bytes,
                          MuxerClock::time_point now) override {
    return session_.consumed(id, bytes, now);
  }
  std::optional<std::uint32_t> ping(MuxerClock::time_point now) override {
    return session_.ping(now);
  }
  std::optional<std::chrono::nanoseconds> rtt() const override { return session_.rtt(); }
  // Flow control bounds what the peer may send, so reading never has to pause.
  bool reading_paused() const override { return false; }
  void reset_stalled_streams() override {}
  void go_away(GoAwayReason reason) override {
    session_.go_away(reason == GoAwayReason::kNormal ? yamux::GoAwayCode::kNormal
                                                     : yamux::GoAwayCode::kProtocolError);
  }
  bool remote_went_away() const override { return session_.remote_went_away(); }
};

class MplexMuxer final : public SessionMuxer<mplex::Session, mplex::Event> {
 public:
  using SessionMuxer::SessionMuxer;

  std::string_view protocol() const override { return mplex::kProtocolId; }
  Expected<void> consumed(std::uint32_t id, std::size_t bytes, MuxerClock::time_point) override {
    return session_.consumed(id, bytes);
  }
  std::optional<std::uint32_t> ping(MuxerClock::time_point) override { return std::nullopt; }
  std::optional<std::chrono::nanoseconds> rtt() const override { return std::nullopt; }
  void go_away(GoAwayReason) override { session_.go_away(); }
  bool reading_paused() const override { return session_.reading_paused(); }
  void reset_stalled_streams() override { session_.reset_stalled_streams(); }
  // mplex has no GoAway: the peer just closes the connection.
  bool remote_went_away() const override { return false; }
};

}  // namespace

Expected<std::unique_ptr<MuxerSession>> make_muxer_session(std::string_view protocol,
                                                           bool is_initiator) {
  if (protocol == yamux::kProtocolId) {
    yamux::Config config;
    config.is_initiator = is_initiator;
    auto session = yamux::Session::create(config);
    if (!session) return tl::unexpected(session.error());
    return std::make_unique<YamuxMuxer>(std::move(*session));
  }
  if (protocol == mplex::kProtocolId) {
    auto session = mplex::Session::create(mplex::Config{});
    if (!session) return tl::unexpected(session.error());
    return std::make_unique<MplexMuxer>(std::move(*session));
  }
  return fail("muxer " + std::string(protocol) + " is not supported yet");
}

}  // namespace an::p2p::net
