// GossipSub v1.1 peer scoring (gossipsub-v1.1.md "The Score Function"): parameters and
// thresholds. The score state itself lives with the Router.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

namespace an::p2p::pubsub {

// Thresholds (all but accept_px and opportunistic_graft <= 0). go-libp2p-pubsub has no
// defaults for these (scoring is off unless an application sets them); these are js
// @libp2p/gossipsub's defaults (score/peer-score-thresholds.ts), which js uses out of the box.
struct PeerScoreThresholds {
  double gossip_threshold = -10;
  double publish_threshold = -50;
  double graylist_threshold = -80;
  double accept_px_threshold = 10;
  double opportunistic_graft_threshold = 20;
};

struct TopicScoreParams {
  double topic_weight = 0;
  double time_in_mesh_weight = 0;
  std::chrono::milliseconds time_in_mesh_quantum{1000};
  double time_in_mesh_cap = 0;
  double first_message_deliveries_weight = 0;
  double first_message_deliveries_decay = 0;
  double first_message_deliveries_cap = 0;
  double mesh_message_deliveries_weight = 0;
  double mesh_message_deliveries_decay = 0;
  double mesh_message_deliveries_cap = 0;
  double mesh_message_deliveries_threshold = 0;
  std::chrono::milliseconds mesh_message_deliveries_window{10};
  std::chrono::milliseconds mesh_message_deliveries_activation{5000};
  double mesh_failure_penalty_weight = 0;
  double mesh_failure_penalty_decay = 0;
  double invalid_message_deliveries_weight = 0;
  double invalid_message_deliveries_decay = 0;
};

// What a topic without its own parameters counts: invalid messages only (P4), so that a peer
// forwarding bad signatures loses score in any topic. js's default P4 weight (-1,
// score/peer-score-params.ts) with a topic weight of 1: ten invalid messages (-100) put a peer
// below the graylist threshold (-80). The decay forgets them over about ten minutes, as go's
// ScoreParameterDecay(10 * time.Minute) does (0.01 ** (1 / 600)).
inline TopicScoreParams invalid_messages_only_topic_params() {
  TopicScoreParams params;
  params.topic_weight = 1;
  params.invalid_message_deliveries_weight = -1;
  params.invalid_message_deliveries_decay = 0.99235;
  return params;
}

// P5 (application-specific) has no source here and stays 0.
struct PeerScoreParams {
  // Topics without an entry contribute nothing but the invalid-message counters of
  // default_topic (applied to every topic), so that a peer flooding bad signatures is punished in
  // any topic.
  std::unordered_map<std::string, TopicScoreParams> topics;
  TopicScoreParams default_topic = invalid_messages_only_topic_params();
  double topic_score_cap = 10;  // js's default
  double ip_colocation_factor_weight = -100;
  double ip_colocation_factor_threshold = 10;
  // Loopback and private addresses are not counted for colocation: many nodes of a test or a
  // lab share one.
  bool ip_colocation_ignore_private = true;
  double behaviour_penalty_weight = -10;
  double behaviour_penalty_threshold = 0;
  double behaviour_penalty_decay = 0.2;
  std::chrono::milliseconds decay_interval{1000};
  double decay_to_zero = 0.1;
  std::chrono::seconds retain_score{3600};
};

}  // namespace an::p2p::pubsub
