// The state of the GossipSub v1.1 score function (go-libp2p-pubsub score.go): per peer and per
// joined topic the counters of P1 to P4, the IP colocation of P6 and the behaviour penalty of
// P7, their decay, and the retention of non-positive scores after a peer leaves. One thread
// (the Router's).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "p2p/crypto/peer_id.h"
#include "p2p/pubsub/score.h"

namespace an::p2p::pubsub {

// True for addresses many honest nodes share (loopback, RFC 1918, link-local, CGNAT, IPv6
// unique-local): not counted for colocation when the parameters say so.
bool is_private_or_loopback_ip(std::string_view ip);

class PeerScore {
 public:
  using Clock = std::chrono::steady_clock;

  // `max_retained`: disconnected peers whose (non-positive) score is remembered.
  PeerScore(PeerScoreParams params, std::size_t max_retained);

  void add_peer(const PeerId& peer, const std::string& ip, Clock::time_point now);
  void remove_peer(const PeerId& peer, Clock::time_point now);
  double score(const PeerId& peer) const;

  void graft(const PeerId& peer, const std::string& topic, Clock::time_point now);
  void prune(const PeerId& peer, const std::string& topic);
  // The first valid copy of a message came from this peer.
  void first_delivery(const PeerId& peer, const std::string& topic);
  // A later copy of a valid message, `since_first` after the first one.
  void duplicate_delivery(const PeerId& peer, const std::string& topic,
                          Clock::duration since_first);
  void invalid_delivery(const PeerId& peer, const std::string& topic);
  void add_penalty(const PeerId& peer, double count);
  // Decays counters once per elapsed decay interval and updates mesh times; every heartbeat.
  void refresh(Clock::time_point now);
  const PeerScoreParams& params() const { return params_; }

 private:
  struct TopicStats {
    bool in_mesh = false;
    Clock::time_point graft_time{};
    Clock::duration mesh_time{};
    double first_message_deliveries = 0;
    double mesh_message_deliveries = 0;
    bool mesh_message_deliveries_active = false;
    double mesh_failure_penalty = 0;
    double invalid_message_deliveries = 0;
  };
  struct PeerStats {
    bool connected = true;
    Clock::time_point expire{};
    std::string ip;  // "" when unknown or not counted
    std::unordered_map<std::string, TopicStats> topics;
    double behaviour_penalty = 0;
  };

  // Parameters of a topic with its own entry, or nullptr.
  const TopicScoreParams* configured(const std::string& topic) const;
  const TopicScoreParams& topic_params(const std::string& topic) const;
  double compute(const PeerStats& stats) const;
  void apply_mesh_failure(const std::string& topic, TopicStats& stats) const;
  void decay(Clock::time_point now);
  void forget(std::unordered_map<PeerId, PeerStats>::iterator it);

  PeerScoreParams params_;
  std::size_t max_retained_;
  std::size_t retained_ = 0;
  Clock::time_point last_decay_{};
  std::unordered_map<PeerId, PeerStats> peers_;
  std::unordered_map<std::string, std::unordered_set<PeerId>> peers_by_ip_;
};

}  // namespace an::p2p::pubsub
