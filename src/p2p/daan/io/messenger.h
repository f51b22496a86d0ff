// /daan/message/1.0.0 and /daan/request/1.0.0 on a Host, as the Go AgentNetwork's messenger
// speaks them: one frame per stream each way (see daan/frame.h). Inbound, a message goes to the
// MessageSink and the stream is closed once the sink has it (reset when the sink refuses it); a
// request is answered with a response or an error frame. Outbound, send and request to a
// connected peer. Network thread only; owned by its user, who keeps the Host alive longer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "p2p/crypto/peer_id.h"
#include "p2p/daan/frame.h"
#include "p2p/net/async.h"
#include "p2p/net/host.h"

namespace an::p2p::daan {

// Default inbound limits. A frame is at most 16 MiB, so a peer may hold two maximal frames at
// once and many small ones (16 streams in flight, as kad allows a peer); the totals bound what
// all peers together make the node hold before the sink takes it (256 MiB, a quarter of a small
// 1 GiB machine, and 256 streams, a few per peer for a node with tens of busy peers). The
// resource manager's protocol and system scopes apply on top.
inline constexpr std::size_t kDefaultMaxStreamsPerPeer = 16;
inline constexpr std::size_t kDefaultMaxStreams = 256;
inline constexpr std::size_t kDefaultMaxBytesPerPeer = 2 * kMaxFrameSize;
inline constexpr std::size_t kDefaultMaxBytes = 16 * kMaxFrameSize;
// Writing an answer; a requester that does not read is dropped.
inline constexpr std::chrono::seconds kAnswerWriteTimeout{10};
// What a requester or sender reads besides the answer it waits for: a peer writing more than
// this on a message stream is misbehaving.
inline constexpr std::size_t kMaxUnexpectedBytes = 4096;

struct RequestAnswer {
  bool error = false;  // a type-4 frame; payload is then its text
  Bytes payload;
  bool operator==(const RequestAnswer&) const = default;
};

// Implemented by the node; called on the network thread. The sender gives up after
// kMessageTimeout (a message) or kRequestTimeout (a request), so the sink should be done by then.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // A one-way message read in full. Succeeds only once the message is durable; an error
  // resets the sender's stream (a refusal).
  virtual asio::awaitable<Expected<void>> deliver_message(const PeerId& from, Bytes payload) = 0;
  // A request; the node answers {true, "no handler registered"} when no agent serves.
  virtual asio::awaitable<RequestAnswer> handle_request(const PeerId& from, Bytes payload) = 0;
};

// Inbound, bytes held while reading frames and streams in flight (both protocols together).
struct MessengerLimits {
  std::size_t max_streams_per_peer = kDefaultMaxStreamsPerPeer;
  std::size_t max_streams = kDefaultMaxStreams;
  std::size_t max_bytes_per_peer = kDefaultMaxBytesPerPeer;
  std::size_t max_bytes = kDefaultMaxBytes;
};

struct MessengerStats {
  std::uint64_t messages_received = 0;  // read in full and decoded (whatever the sink did)
  std::uint64_t requests_received = 0;
  // Inbound streams reset for a limit (ours or the resource manager's) or because the sink
  // refused the message.
  std::uint64_t refused = 0;
  // Inbound streams reset for a malformed frame: a bad length, a truncated body, invalid JSON,
  // a wrong field or the wrong frame type for the protocol.
  std::uint64_t bad_frames = 0;
};

class Messenger {
 public:
  // One line per refused stream or bad frame, with the peer and the reason; a peer can make
  // many, so the caller logs them at a level that cannot flood (P2pNode's debug).
  using LogCallback = std::function<void(std::string_view)>;

  Messenger(net::Host& host, MessengerLimits limits, MessageSink& sink);
  ~Messenger();
  Messenger(const Messenger&) = delete;
  Messenger& operator=(const Messenger&) = delete;

  void set_log(LogCallback log) { log_ = std::move(log); }
  // Handlers for both protocols. Call once.
  void start();
  // New inbound streams are reset from now on; those being served finish.
  void stop();

  // Peer must be connected (the caller dials). send: write a type-1 frame, close our side,
  // wait for the peer to close (its "stored") or reset (refused) — bounded by the deadline.
  asio::awaitable<Expected<void>> send(const PeerId& peer, Bytes payload,
                                       Clock::time_point deadline);
  // A type-2 frame with the next request ID (1, 2, ... per Messenger); the answer must carry the
  // same ID. A type-4 answer is {true, its text}, not an error.
  asio::awaitable<Expected<RequestAnswer>> request(const PeerId& peer, Bytes payload,
                                                   Clock::time_point deadline);

  const MessengerStats& stats() const { return stats_; }
  // Inbound streams being served and bytes reserved for their frames, now.
  std::size_t active_streams() const { return active_streams_; }
  std::size_t held_bytes() const { return held_bytes_; }

 private:
  class InboundSlot;
  struct InboundFrame;

  asio::awaitable<void> serve(std::shared_ptr<net::Stream> stream, FrameType expected);
  asio::awaitable<Expected<InboundFrame>> read_inbound_frame(net::Stream& stream,
                                                             InboundSlot& slot);
  void log(std::string_view line) const;

  net::Host& host_;
  MessengerLimits limits_;
  MessageSink& sink_;
  LogCallback log_;
  MessengerStats stats_;
  std::uint64_t last_request_id_ = 0;
  bool started_ = false;
  bool running_ = false;
  struct PeerUsage {
    std::size_t streams = 0;
    std::size_t bytes = 0;
  };
  std::unordered_map<PeerId, PeerUsage> per_peer_;
  std::size_t active_streams_ = 0;
  std::size_t held_bytes_ = 0;
  // Lets coroutines and handlers that outlive the messenger notice that it is gone.
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::daan
