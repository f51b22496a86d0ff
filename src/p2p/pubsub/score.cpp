#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>

#include "p2p/pubsub/peer_score.h"

namespace an::p2p::pubsub {
namespace {

std::optional<std::array<std::uint8_t, 4>> parse_ipv4(std::string_view text) {
  std::array<std::uint8_t, 4> octets{};
  for (std::size_t i = 0; i < 4; ++i) {
    unsigned value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end == text.data() || value > 255) return std::nullopt;
    octets[i] = static_cast<std::uint8_t>(value);
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    if (i < 3) {
      if (text.empty() || text.front() != '.') return std::nullopt;
      text.remove_prefix(1);
    }
  }
  if (!text.empty()) return std::nullopt;
  return octets;
}

bool is_private_ipv4(const std::array<std::uint8_t, 4>& ip) {
  return ip[0] == 10 || ip[0] == 127 || (ip[0] == 172 && (ip[1] & 0xf0) == 16) ||
         (ip[0] == 192 && ip[1] == 168) || (ip[0] == 169 && ip[1] == 254) ||
         (ip[0] == 100 && (ip[1] & 0xc0) == 64);
}

// Applies `decay` and snaps small values to zero (go's refreshScores).
void decay_counter(double& value, double decay, double decay_to_zero) {
  value *= decay;
  if (value < decay_to_zero) value = 0;
}

}  // namespace

bool is_private_or_loopback_ip(std::string_view ip) {
  if (auto v4 = parse_ipv4(ip)) return is_private_ipv4(*v4);
  std::string lower(ip);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
  if (lower == "::1") return true;
  // IPv4-mapped IPv6 (::ffff:a.b.c.d).
  if (lower.starts_with("::ffff:")) {
    if (auto v4 = parse_ipv4(std::string_view(lower).substr(7))) return is_private_ipv4(*v4);
  }
  // fc00::/7 (unique local) and fe80::/10 (link-local): the first hextet, four digits.
  if (lower.size() >= 4 && lower[2] != ':' && lower[3] != ':') {
    if (lower.starts_with("fc") || lower.starts_with("fd")) return true;
    if (lower.starts_with("fe8") || lower.starts_with("fe9") || lower.starts_with("fea") ||
        lower.starts_with("feb")) {
      return true;
    }
  }
  return false;
}

PeerScore::PeerScore(PeerScoreParams params, std::size_t max_retained)
    : params_(std::move(params)), max_retained_(max_retained) {}

const TopicScoreParams* PeerScore::configured(const std::string& topic) const {
  auto it = params_.topics.find(topic);
  return it == params_.topics.end() ? nullptr : &it->second;
}

const TopicScoreParams& PeerScore::topic_params(const std::string& topic) const {
  const TopicScoreParams* params = configured(topic);
  return params ? *params : params_.default_topic;
}

void PeerScore::add_peer(const PeerId& peer, const std::string& ip, Clock::time_point now) {
  if (last_decay_ == Clock::time_point{}) last_decay_ = now;
  const bool counted =
      !ip.empty() && !(params_.ip_colocation_ignore_private && is_private_or_loopback_ip(ip));
  auto [it, inserted] = peers_.try_emplace(peer);
  PeerStats& stats = it->second;
  if (!inserted && !stats.connected) --retained_;
  stats.connected = true;
  if (stats.ip != (counted ? ip : std::string())) {
    if (!stats.ip.empty()) {
      auto by_ip = peers_by_ip_.find(stats.ip);
      if (by_ip != peers_by_ip_.end()) {
        by_ip->second.erase(peer);
        if (by_ip->second.empty()) peers_by_ip_.erase(by_ip);
      }
    }
    stats.ip = counted ? ip : std::string();
    if (!stats.ip.empty()) peers_by_ip_[stats.ip].insert(peer);
  }
}

void PeerScore::remove_peer(const PeerId& peer, Clock::time_point now) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.connected) return;
  // Only non-positive scores are retained, so that leaving and coming back cannot clear a
  // penalty (go's RemovePeer).
  if (compute(it->second) > 0 || max_retained_ == 0) {
    forget(it);
    return;
  }
  for (auto& [topic, stats] : it->second.topics) {
    stats.first_message_deliveries = 0;
    if (stats.in_mesh) apply_mesh_failure(topic, stats);
    stats.in_mesh = false;
  }
  it->second.connected = false;
  it->second.expire = now + params_.retain_score;
  ++retained_;
  if (retained_ > max_retained_) {
    // Forget the retained peer that would expire first.
    auto oldest = peers_.end();
    for (auto candidate = peers_.begin(); candidate != peers_.end(); ++candidate) {
      if (candidate->second.connected) continue;
      if (oldest == peers_.end() || candidate->second.expire < oldest->second.expire) {
        oldest = candidate;
      }
    }
    if (oldest != peers_.end()) forget(oldest);
  }
}

void PeerScore::forget(std::unordered_map<PeerId, PeerStats>::iterator it) {
  if (!it->second.ip.empty()) {
    auto by_ip = peers_by_ip_.find(it->second.ip);
    if (by_ip != peers_by_ip_.end()) {
      by_ip->second.erase(it->first);
      if (by_ip->second.empty()) peers_by_ip_.erase(by_ip);
    }
  }
  if (!it->second.connected) --retained_;
  peers_.erase(it);
}

double PeerScore::score(const PeerId& peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? 0 : compute(it->second);
}

double PeerScore::compute(const PeerStats& stats) const {
  double score = 0;
  for (const auto& [topic, topic_stats] : stats.topics) {
    const TopicScoreParams* own = configured(topic);
    const TopicScoreParams& params = own ? *own : params_.default_topic;
    double topic_score = 0;
    if (own) {
      if (topic_stats.in_mesh && params.time_in_mesh_quantum.count() > 0) {
        double p1 = std::chrono::duration<double>(topic_stats.mesh_time).count() /
                    std::chrono::duration<double>(params.time_in_mesh_quantum).count();
        p1 = std::min(p1, params.time_in_mesh_cap);
        topic_score += p1 * params.time_in_mesh_weight;
      }
      topic_score += topic_stats.first_message_deliveries * params.first_message_deliveries_weight;
      if (topic_stats.mesh_message_deliveries_active &&
          topic_stats.mesh_message_deliveries < params.mesh_message_deliveries_threshold) {
        const double deficit =
            params.mesh_message_deliveries_threshold - topic_stats.mesh_message_deliveries;
        topic_score += deficit * deficit * params.mesh_message_deliveries_weight;
      }
      topic_score += topic_stats.mesh_failure_penalty * params.mesh_failure_penalty_weight;
    }
    topic_score += topic_stats.invalid_message_deliveries * topic_stats.invalid_message_deliveries *
                   params.invalid_message_deliveries_weight;
    score += topic_score * params.topic_weight;
  }
  if (params_.topic_score_cap > 0 && score > params_.topic_score_cap) {
    score = params_.topic_score_cap;
  }
  if (!stats.ip.empty()) {
    auto by_ip = peers_by_ip_.find(stats.ip);
    const auto sharing =
        by_ip == peers_by_ip_.end() ? 0.0 : static_cast<double>(by_ip->second.size());
    if (sharing > params_.ip_colocation_factor_threshold) {
      const double surplus = sharing - params_.ip_colocation_factor_threshold;
      score += surplus * surplus * params_.ip_colocation_factor_weight;
    }
  }
  if (stats.behaviour_penalty > params_.behaviour_penalty_threshold) {
    const double excess = stats.behaviour_penalty - params_.behaviour_penalty_threshold;
    score += excess * excess * params_.behaviour_penalty_weight;
  }
  return score;
}

void PeerScore::apply_mesh_failure(const std::string& topic, TopicStats& stats) const {
  const TopicScoreParams* params = configured(topic);
  if (!params) return;
  if (stats.mesh_message_deliveries_active &&
      stats.mesh_message_deliveries < params->mesh_message_deliveries_threshold) {
    const double deficit =
        params->mesh_message_deliveries_threshold - stats.mesh_message_deliveries;
    stats.mesh_failure_penalty += deficit * deficit;
  }
}

void PeerScore::graft(const PeerId& peer, const std::string& topic, Clock::time_point now) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || !configured(topic)) return;
  TopicStats& stats = it->second.topics[topic];
  stats.in_mesh = true;
  stats.graft_time = now;
  stats.mesh_time = {};
  stats.mesh_message_deliveries_active = false;
}

void PeerScore::prune(const PeerId& peer, const std::string& topic) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  auto topic_it = it->second.topics.find(topic);
  if (topic_it == it->second.topics.end()) return;
  apply_mesh_failure(topic, topic_it->second);
  topic_it->second.in_mesh = false;
}

void PeerScore::first_delivery(const PeerId& peer, const std::string& topic) {
  const TopicScoreParams* params = configured(topic);
  auto it = peers_.find(peer);
  if (!params || it == peers_.end()) return;
  TopicStats& stats = it->second.topics[topic];
  stats.first_message_deliveries =
      std::min(stats.first_message_deliveries + 1, params->first_message_deliveries_cap);
  if (stats.in_mesh) {
    stats.mesh_message_deliveries =
        std::min(stats.mesh_message_deliveries + 1, params->mesh_message_deliveries_cap);
  }
}

void PeerScore::duplicate_delivery(const PeerId& peer, const std::string& topic,
                                   Clock::duration since_first) {
  const TopicScoreParams* params = configured(topic);
  auto it = peers_.find(peer);
  if (!params || it == peers_.end()) return;
  auto topic_it = it->second.topics.find(topic);
  if (topic_it == it->second.topics.end() || !topic_it->second.in_mesh) return;
  if (since_first > params->mesh_message_deliveries_window) return;
  TopicStats& stats = topic_it->second;
  stats.mesh_message_deliveries =
      std::min(stats.mesh_message_deliveries + 1, params->mesh_message_deliveries_cap);
}

void PeerScore::invalid_delivery(const PeerId& peer, const std::string& topic) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  it->second.topics[topic].invalid_message_deliveries += 1;
}

void PeerScore::add_penalty(const PeerId& peer, double count) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  it->second.behaviour_penalty += count;
}

void PeerScore::refresh(Clock::time_point now) {
  if (params_.decay_interval.count() <= 0) return;
  // A long gap between heartbeats still decays once per interval, but a bounded number of
  // times: past this, every counter has reached zero anyway.
  constexpr int kMaxDecaysPerRefresh = 1000;
  int decays = 0;
  while (now - last_decay_ >= params_.decay_interval && decays < kMaxDecaysPerRefresh) {
    last_decay_ += params_.decay_interval;
    ++decays;
  }
  if (decays == kMaxDecaysPerRefresh) last_decay_ = now;
  for (int i = 0; i < decays; ++i)
    decay(now);
  for (auto& [peer, stats] : peers_) {
    if (!stats.connected) continue;
    for (auto& [topic, topic_stats] : stats.topics) {
      const TopicScoreParams* params = configured(topic);
      if (!params || !topic_stats.in_mesh) continue;
      topic_stats.mesh_time = now - topic_stats.graft_time;
      if (topic_stats.mesh_time > params->mesh_message_deliveries_activation) {
        topic_stats.mesh_message_deliveries_active = true;
      }
    }
  }
}

void PeerScore::decay(Clock::time_point now) {
  const double to_zero = params_.decay_to_zero;
  for (auto it = peers_.begin(); it != peers_.end();) {
    PeerStats& stats = it->second;
    if (!stats.connected) {
      // Retained scores do not decay; they are forgotten when retention ends.
      if (stats.expire <= now) {
        auto expired = it++;
        forget(expired);
        continue;
      }
      ++it;
      continue;
    }
    for (auto topic_it = stats.topics.begin(); topic_it != stats.topics.end();) {
      const TopicScoreParams& params = topic_params(topic_it->first);
      TopicStats& topic_stats = topic_it->second;
      decay_counter(topic_stats.first_message_deliveries, params.first_message_deliveries_decay,
                    to_zero);
      decay_counter(topic_stats.mesh_message_deliveries, params.mesh_message_deliveries_decay,
                    to_zero);
      decay_counter(topic_stats.mesh_failure_penalty, params.mesh_failure_penalty_decay, to_zero);
      decay_counter(topic_stats.invalid_message_deliveries, params.invalid_message_deliveries_decay,
                    to_zero);
      // A topic of no remaining interest leaves the map, which bounds it by the joined topics.
      const bool idle = !topic_stats.in_mesh && topic_stats.first_message_deliveries == 0 &&
                        topic_stats.mesh_message_deliveries == 0 &&
                        topic_stats.mesh_failure_penalty == 0 &&
                        topic_stats.invalid_message_deliveries == 0;
      topic_it = idle ? stats.topics.erase(topic_it) : std::next(topic_it);
    }
    decay_counter(stats.behaviour_penalty, params_.behaviour_penalty_decay, to_zero);
    ++it;
  }
}

}  // namespace an::p2p::pubsub
