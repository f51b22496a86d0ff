#include "p2p/pubsub/router.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "p2p/pubsub/mcache.h"
#include "p2p/pubsub/peer_score.h"
#include "p2p/pubsub/seen_cache.h"

namespace an::p2p::pubsub {
namespace {

// go-libp2p-pubsub's constants without a field in GossipSubParams (gossipsub.go):
// an IDONTWANT is remembered for this many heartbeats (GossipSubIDontWantMessageTTL) ...
constexpr int kIDontWantTtlHeartbeats = 3;
// ... and a peer may send this many IDONTWANT RPCs per heartbeat (GossipSubMaxIDontWantMessages).
constexpr int kMaxIDontWantRpcsPerHeartbeat = 1000;
// Expired backoffs are swept every this many heartbeats; a backoff holds our GRAFTs back this
// many heartbeats past its expiry (go's clearBackoff).
constexpr std::uint64_t kBackoffSweepTicks = 15;
constexpr int kBackoffSlackHeartbeats = 2;
// A PRUNE's backoff is the sender's choice; past this it is clamped (go trusts any value, but
// a huge one must not overflow our clock arithmetic).
constexpr std::chrono::hours kMaxPeerBackoff{24};
// Log lines per heartbeat interval; the rest are counted and summarised.
constexpr int kMaxLogLinesPerHeartbeat = 10;
// The message cache's byte bound: history_length heartbeats of messages; a peer sending many
// large valid messages evicts the oldest ones from gossip rather than growing our memory.
constexpr std::size_t kMaxCachedMessageBytes = std::size_t{64} << 20;
// The longest message ID we can hold: a default ID is a peer ID (at most 44 bytes, an identity
// multihash of a 42-byte key) and an 8-byte seqno. A longer ID in IHAVE or IDONTWANT names no
// message of ours; asking for it (an IWANT promise keeps it) or keeping it as unwanted would let
// a peer grow our memory by up to a frame per ID. go keeps IDONTWANT IDs as 32-byte checksums.
constexpr std::size_t kMaxMessageIdLength = 64;
// Message IDs remembered for seen_ttl; at 128 bytes an entry, about 32 MiB at most.
constexpr std::size_t kMaxSeenMessages = std::size_t{256} * 1024;

Bytes encode_seqno(std::uint64_t value) {
  Bytes out(8);
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value & 0xff);
    value >>= 8;
  }
  return out;
}

Expected<void> check_topic(std::string_view topic) {
  if (topic.empty()) return fail("empty topic");
  if (topic.size() > kMaxTopicLength) {
    return fail("topic longer than " + std::to_string(kMaxTopicLength) + " bytes");
  }
  return {};
}

bool speaks_mesh(PeerProtocol protocol) {
  return protocol != PeerProtocol::kFloodsub;
}

}  // namespace

struct Router::State {
  struct PeerState {
    PeerProtocol protocol = PeerProtocol::kMeshsub11;
    bool outbound = false;
    std::unordered_set<std::string> topics;
    // Per heartbeat: IHAVE RPCs received, message IDs we asked for, IWANT IDs served,
    // IDONTWANT RPCs received (go's peerhave, iasked, peerdontwant).
    int ihave_rpcs = 0;
    int ids_asked = 0;
    int iwant_served = 0;
    int idontwant_rpcs = 0;
    // Message IDs this peer does not want, and the heartbeats each is kept for.
    std::unordered_map<MessageId, int, BytesHash> unwanted;
  };
  using PeerSet = std::unordered_set<PeerId>;
  using OutgoingControl = std::map<PeerId, ControlMessage>;

  State(PrivateKey private_key, RouterConfig router_config, Callbacks router_callbacks)
      : key(std::move(private_key)),
        self(key.peer_id()),
        config(std::move(router_config)),
        callbacks(std::move(router_callbacks)),
        mcache(config.params.history_length, config.params.history_gossip, kMaxCachedMessageBytes),
        seen(config.params.seen_ttl, kMaxSeenMessages),
        peer_score(config.score, config.limits.max_peers) {
    const auto seed = config.rng_seed != 0 ? config.rng_seed : std::random_device{}();
    rng.seed(seed);
    // go's seqno: a counter that starts at the wall clock in nanoseconds, so that a restarted
    // node does not reuse message IDs.
    next_seqno = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  }

  PrivateKey key;
  PeerId self;
  RouterConfig config;
  Callbacks callbacks;
  RouterStats stats;
  std::mt19937_64 rng;
  std::uint64_t next_seqno = 0;
  std::uint64_t heartbeat_ticks = 0;
  int log_budget = kMaxLogLinesPerHeartbeat;
  std::uint64_t log_suppressed = 0;

  std::unordered_map<PeerId, PeerState> peers;
  // Topics peers told us they subscribe to (bounded by limits.max_known_topics).
  std::unordered_map<std::string, PeerSet> topic_peers;
  // Joined topics and their mesh (empty sets in floodsub mode).
  std::map<std::string, PeerSet> mesh;
  std::unordered_map<std::string, PeerSet> fanout;
  std::unordered_map<std::string, Clock::time_point> last_publish;
  std::unordered_map<std::string, std::unordered_map<PeerId, Clock::time_point>> backoff;
  // IWANT promises: message ID -> peer -> deadline (go's gossipTracer).
  std::unordered_map<MessageId, std::unordered_map<PeerId, Clock::time_point>, BytesHash> promises;
  MessageCache mcache;
  SeenCache seen;
  PeerScore peer_score;

  // --- helpers ---

  void log(std::string line) {
    if (!callbacks.log) return;
    if (log_budget <= 0) {
      ++log_suppressed;
      return;
    }
    --log_budget;
    callbacks.log("pubsub: " + line);
  }

  void send(const PeerId& peer, Rpc rpc) {
    if (rpc.empty() || !callbacks.send) return;
    callbacks.send(peer, std::move(rpc));
  }

  double score(const PeerId& peer) const {
    return config.floodsub_only ? 0 : peer_score.score(peer);
  }

  bool joined(const std::string& topic) const { return mesh.contains(topic); }

  // Whether we may not GRAFT the peer yet. The peer's backoff began when it sent its PRUNE (or
  // ours reached it), so ours runs a little late or early against it; like go and js
  // (libp2p/specs#289) we wait kBackoffSlackHeartbeats past the expiry so that our GRAFT does not
  // land inside the peer's backoff and cost us a penalty.
  bool in_backoff(const std::string& topic, const PeerId& peer, Clock::time_point now) const {
    auto topic_it = backoff.find(topic);
    if (topic_it == backoff.end()) return false;
    auto it = topic_it->second.find(peer);
    return it != topic_it->second.end() &&
           now <= it->second + kBackoffSlackHeartbeats * config.params.heartbeat_interval;
  }

  void add_backoff(const PeerId& peer, const std::string& topic, Clock::duration interval,
                   Clock::time_point now) {
    auto& expiry = backoff[topic][peer];
    expiry = std::max(expiry, now + interval);
  }

  // Peers subscribed to `topic` that speak gossipsub and pass `filter`, shuffled, at most
  // `count` of them (go's getPeers; count <= 0: all).
  template <class Filter>
  std::vector<PeerId> get_peers(const std::string& topic, int count, Filter filter) {
    std::vector<PeerId> out;
    auto it = topic_peers.find(topic);
    if (it == topic_peers.end()) return out;
    for (const PeerId& peer : it->second) {
      auto peer_it = peers.find(peer);
      if (peer_it == peers.end() || !speaks_mesh(peer_it->second.protocol)) continue;
      if (filter(peer)) out.push_back(peer);
    }
    // Sorted first so that a seeded simulation does not depend on hash-table order.
    std::sort(out.begin(), out.end());
    std::shuffle(out.begin(), out.end(), rng);
    if (count > 0 && out.size() > static_cast<std::size_t>(count)) {
      out.erase(out.begin() + count, out.end());
    }
    return out;
  }

  static std::vector<PeerId> sorted(const PeerSet& set) {
    std::vector<PeerId> out(set.begin(), set.end());
    std::sort(out.begin(), out.end());
    return out;
  }

  bool outbound(const PeerId& peer) const {
    auto it = peers.find(peer);
    return it != peers.end() && it->second.outbound;
  }

  ControlPrune make_prune(const PeerId& peer, const std::string& topic, bool do_px,
                          bool unsubscribe) {
    ControlPrune prune;
    prune.topic = topic;
    auto it = peers.find(peer);
    if (it == peers.end() || it->second.protocol == PeerProtocol::kMeshsub10) {
      return prune;  // v1.0 peers know neither peer exchange nor backoff
    }
    const auto backoff_time =
        unsubscribe ? config.params.unsubscribe_backoff : config.params.prune_backoff;
    prune.backoff_seconds = static_cast<std::uint64_t>(backoff_time.count());
    // Peer exchange only to peers we trust with our neighbours' names.
    if (do_px && score(peer) >= config.thresholds.accept_px_threshold) {
      for (const PeerId& candidate :
           get_peers(topic, config.params.prune_peers,
                     [&](const PeerId& other) { return other != peer && score(other) >= 0; })) {
        prune.peers.push_back(PeerInfo{candidate.bytes(), {}});
      }
    }
    return prune;
  }

  void mesh_add(const std::string& topic, PeerSet& members, const PeerId& peer,
                Clock::time_point now) {
    if (members.insert(peer).second) {
      peer_score.graft(peer, topic, now);
      ++stats.grafts;
    }
  }

  void mesh_remove(const std::string& topic, PeerSet& members, const PeerId& peer) {
    if (members.erase(peer) > 0) {
      peer_score.prune(peer, topic);
      ++stats.prunes;
    }
  }

  // --- subscriptions ---

  void handle_subscriptions(const PeerId& from, PeerState& peer,
                            const std::vector<SubOpts>& subscriptions) {
    std::size_t over_peer_limit = 0;
    std::size_t requested = peer.topics.size();
    for (const SubOpts& sub : subscriptions) {
      if (sub.subscribe && !peer.topics.contains(sub.topic)) ++requested;
    }
    for (const SubOpts& sub : subscriptions) {
      if (!check_topic(sub.topic)) {
        ++stats.invalid;
        continue;
      }
      if (sub.subscribe) {
        if (peer.topics.contains(sub.topic)) continue;
        if (peer.topics.size() >= config.limits.max_topics_per_peer) {
          ++over_peer_limit;
          continue;
        }
        auto topic_it = topic_peers.find(sub.topic);
        if (topic_it == topic_peers.end()) {
          // Topics we joined or publish to are bounded by our own limits and always tracked,
          // so that peers filling the table with junk cannot hide our topics' subscribers.
          const bool ours = joined(sub.topic) || fanout.contains(sub.topic);
          if (!ours && topic_peers.size() >= config.limits.max_known_topics) {
            ++stats.over_limit;
            log("known topics at their limit (" + std::to_string(config.limits.max_known_topics) +
                "): a subscription of " + from.to_base58() + " dropped");
            continue;
          }
          topic_it = topic_peers.emplace(sub.topic, PeerSet{}).first;
        }
        topic_it->second.insert(from);
        peer.topics.insert(sub.topic);
      } else {
        if (peer.topics.erase(sub.topic) == 0) continue;
        forget_subscription(from, sub.topic);
      }
    }
    stats.over_limit += over_peer_limit;
    if (requested > config.limits.max_topics_per_peer) {
      // Asking for more than its own limit a peer is misbehaving (whether or not the total
      // limit dropped its subscriptions first): one behaviour penalty per RPC.
      peer_score.add_penalty(from, 1);
      log(from.to_base58() + " subscribed to more than " +
          std::to_string(config.limits.max_topics_per_peer) + " topics");
    }
  }

  void forget_subscription(const PeerId& peer, const std::string& topic) {
    auto topic_it = topic_peers.find(topic);
    if (topic_it != topic_peers.end()) {
      topic_it->second.erase(peer);
      if (topic_it->second.empty()) topic_peers.erase(topic_it);
    }
    if (auto mesh_it = mesh.find(topic); mesh_it != mesh.end()) {
      mesh_remove(topic, mesh_it->second, peer);
    }
    if (auto fanout_it = fanout.find(topic); fanout_it != fanout.end()) {
      fanout_it->second.erase(peer);
    }
  }

  // --- messages ---

  void reject_invalid(const PeerId& from, const std::string& topic, std::string_view why) {
    ++stats.invalid;
    peer_score.invalid_delivery(from, topic);
    log("invalid message from " + from.to_base58() + " in topic of " +
        std::to_string(topic.size()) + " bytes: " + std::string(why));
  }

  void fulfill_promise(const MessageId& id) { promises.erase(id); }

  void handle_message(const PeerId& from, Message message, Clock::time_point now) {
    if (!joined(message.topic)) return;  // we relay only topics we joined, as go does
    if (message.from.empty() || message.seqno.empty() || message.signature.empty()) {
      reject_invalid(from, message.topic, "unsigned (StrictSign)");
      return;
    }
    auto author = PeerId::from_multihash(message.from);
    if (!author) {
      reject_invalid(from, message.topic, "bad author: " + author.error().message);
      return;
    }
    if (*author == self) {
      ++stats.duplicates;  // our own message coming back
      return;
    }
    MessageId id = default_message_id(message);
    if (SeenCache::Entry* entry = seen.find(id)) {
      ++stats.duplicates;
      fulfill_promise(id);
      auto mesh_it = mesh.find(message.topic);
      if (mesh_it != mesh.end() && mesh_it->second.contains(from) &&
          std::find(entry->credited.begin(), entry->credited.end(), from) ==
              entry->credited.end()) {
        entry->credited.push_back(from);
        peer_score.duplicate_delivery(from, message.topic, now - entry->first_seen);
      }
      return;
    }
    auto verified = verify_message(message);
    if (!verified) {
      reject_invalid(from, message.topic, verified.error().message);
      return;
    }
    SeenCache::Entry& entry = seen.add(id, now);
    entry.credited.push_back(from);
    peer_score.first_delivery(from, message.topic);
    fulfill_promise(id);
    send_idontwant(from, message, id);
    ++stats.delivered;
    if (callbacks.deliver) {
      callbacks.deliver(ReceivedMessage{*author, message.seqno, message.topic, message.data, id,
                                        from, message.signature, message.key});
    }
    forward(message, id, &from, *author, false, now);
  }

  // v1.2: tell our other mesh peers not to send a large message we already have.
  void send_idontwant(const PeerId& from, const Message& message, const MessageId& id) {
    if (config.floodsub_only || message.data.size() < config.params.idontwant_threshold) return;
    auto mesh_it = mesh.find(message.topic);
    if (mesh_it == mesh.end()) return;
    for (const PeerId& peer : sorted(mesh_it->second)) {
      if (peer == from) continue;
      auto it = peers.find(peer);
      if (it == peers.end() || it->second.protocol != PeerProtocol::kMeshsub12) continue;
      Rpc rpc;
      rpc.control.emplace().idontwant.push_back(ControlIDontWant{{id}});
      send(peer, std::move(rpc));
    }
  }

  // Sends a message on (go's rpcs): `from` is null for our own publication.
  void forward(const Message& message, const MessageId& id, const PeerId* from,
               const PeerId& author, bool own, Clock::time_point now) {
    mcache.put(id, message);
    auto topic_it = topic_peers.find(message.topic);
    if (topic_it == topic_peers.end()) return;
    const PeerSet& subscribed = topic_it->second;
    std::set<PeerId> targets;
    const double publish_threshold = config.thresholds.publish_threshold;
    if (config.floodsub_only) {
      targets.insert(subscribed.begin(), subscribed.end());
    } else if (own && config.params.flood_publish) {
      for (const PeerId& peer : subscribed) {
        if (score(peer) >= publish_threshold) targets.insert(peer);
      }
    } else {
      for (const PeerId& peer : subscribed) {
        auto it = peers.find(peer);
        if (it != peers.end() && !speaks_mesh(it->second.protocol) &&
            score(peer) >= publish_threshold) {
          targets.insert(peer);
        }
      }
      const PeerSet* gossip_peers = nullptr;
      if (auto mesh_it = mesh.find(message.topic); mesh_it != mesh.end()) {
        gossip_peers = &mesh_it->second;
      } else if (own) {
        gossip_peers = &fanout_for_publishing(message.topic, now);
      }
      if (gossip_peers) {
        for (const PeerId& peer : *gossip_peers) {
          auto it = peers.find(peer);
          if (it != peers.end() && it->second.unwanted.contains(id)) continue;
          targets.insert(peer);
        }
      }
    }
    for (const PeerId& peer : targets) {
      if ((from && peer == *from) || peer == author) continue;
      Rpc rpc;
      rpc.publish.push_back(message);
      ++stats.forwarded;
      send(peer, std::move(rpc));
    }
  }

  const PeerSet& fanout_for_publishing(const std::string& topic, Clock::time_point now) {
    PeerSet& members = fanout[topic];
    if (members.empty()) {
      for (const PeerId& peer : get_peers(topic, config.params.d, [&](const PeerId& candidate) {
             return score(candidate) >= config.thresholds.publish_threshold;
           })) {
        members.insert(peer);
      }
    }
    last_publish[topic] = now;
    return members;
  }

  // --- control ---

  void handle_control(const PeerId& from, PeerState& peer, const ControlMessage& control,
                      Clock::time_point now) {
    Rpc reply;
    ControlMessage& reply_control = reply.control.emplace();
    handle_ihave(from, peer, control.ihave, reply_control, now);
    handle_iwant(from, peer, control.iwant, reply.publish);
    handle_graft(from, control.graft, reply_control, now);
    handle_prune(from, control.prune, now);
    handle_idontwant(from, peer, control.idontwant);
    if (reply_control.empty()) reply.control.reset();
    send(from, std::move(reply));
  }

  void handle_ihave(const PeerId& from, PeerState& peer, const std::vector<ControlIHave>& ihaves,
                    ControlMessage& reply, Clock::time_point now) {
    if (ihaves.empty()) return;
    if (score(from) < config.thresholds.gossip_threshold) return;
    const auto max_length = static_cast<std::size_t>(std::max(config.params.max_ihave_length, 0));
    if (++peer.ihave_rpcs > config.params.max_ihave_messages ||
        static_cast<std::size_t>(peer.ids_asked) >= max_length) {
      for (const ControlIHave& ihave : ihaves)
        stats.over_limit += ihave.message_ids.size();
      return;
    }
    std::vector<MessageId> wanted;
    std::unordered_set<MessageId, BytesHash> unique;
    for (const ControlIHave& ihave : ihaves) {
      if (!joined(ihave.topic)) continue;
      for (std::size_t i = 0; i < ihave.message_ids.size(); ++i) {
        if (i >= max_length) {
          stats.over_limit += ihave.message_ids.size() - i;
          break;
        }
        const MessageId& id = ihave.message_ids[i];
        if (id.size() > kMaxMessageIdLength) {
          ++stats.over_limit;
          continue;
        }
        if (seen.contains(id) || !unique.insert(id).second) continue;
        wanted.push_back(id);
      }
    }
    if (wanted.empty()) return;
    const std::size_t room = max_length - static_cast<std::size_t>(peer.ids_asked);
    std::shuffle(wanted.begin(), wanted.end(), rng);
    if (wanted.size() > room) {
      stats.over_limit += wanted.size() - room;
      wanted.resize(room);
    }
    peer.ids_asked += static_cast<int>(wanted.size());
    // One promise per IWANT, on a random ID of it (go's gossipTracer.AddPromise).
    const MessageId& promised =
        wanted[std::uniform_int_distribution<std::size_t>(0, wanted.size() - 1)(rng)];
    promises[promised].try_emplace(from, now + config.params.iwant_followup_time);
    reply.iwant.push_back(ControlIWant{std::move(wanted)});
  }

  void handle_iwant(const PeerId& from, PeerState& peer, const std::vector<ControlIWant>& iwants,
                    std::vector<Message>& out) {
    if (iwants.empty()) return;
    if (score(from) < config.thresholds.gossip_threshold) return;
    std::unordered_set<MessageId, BytesHash> served;
    bool abusive = false;
    for (const ControlIWant& iwant : iwants) {
      for (const MessageId& id : iwant.message_ids) {
        if (peer.iwant_served >= config.params.max_ihave_length) {
          ++stats.over_limit;
          abusive = true;
          continue;
        }
        if (peer.unwanted.contains(id) || served.contains(id)) continue;
        int times_asked = 0;
        const Message* message = mcache.get_for_peer(id, from, times_asked);
        if (!message) continue;
        if (times_asked > config.params.gossip_retransmission) {
          ++stats.over_limit;
          abusive = true;
          continue;
        }
        served.insert(id);
        ++peer.iwant_served;
        ++stats.iwant_served;
        out.push_back(*message);
      }
    }
    // Asking again and again for what was served, or for more than we ever advertise in a
    // heartbeat, is not what an honest peer does.
    if (abusive) peer_score.add_penalty(from, 1);
  }

  void handle_graft(const PeerId& from, const std::vector<ControlGraft>& grafts,
                    ControlMessage& reply, Clock::time_point now) {
    if (grafts.empty()) return;
    const double peer_score_now = score(from);
    bool do_px = true;
    std::vector<std::string> refused;
    for (const ControlGraft& graft : grafts) {
      auto mesh_it = mesh.find(graft.topic);
      if (mesh_it == mesh.end()) {
        do_px = false;  // an unknown topic: no PX, so as not to leak our peers
        continue;
      }
      PeerSet& members = mesh_it->second;
      if (members.contains(from)) continue;
      auto backoff_topic = backoff.find(graft.topic);
      if (backoff_topic != backoff.end()) {
        auto expiry = backoff_topic->second.find(from);
        if (expiry != backoff_topic->second.end() && now < expiry->second) {
          // GRAFT while backing off: a behaviour penalty, two when it comes very early.
          peer_score.add_penalty(from, 1);
          const auto flood_cutoff =
              expiry->second + std::chrono::seconds(config.params.graft_flood_threshold_seconds) -
              config.params.prune_backoff;
          if (now < flood_cutoff) peer_score.add_penalty(from, 1);
          do_px = false;
          add_backoff(from, graft.topic, config.params.prune_backoff, now);
          refused.push_back(graft.topic);
          continue;
        }
      }
      if (peer_score_now < 0) {
        do_px = false;
        add_backoff(from, graft.topic, config.params.prune_backoff, now);
        refused.push_back(graft.topic);
        continue;
      }
      // At D_hi only outbound peers may graft (a defence against mesh takeover).
      if (static_cast<int>(members.size()) >= config.params.d_hi && !outbound(from)) {
        add_backoff(from, graft.topic, config.params.prune_backoff, now);
        refused.push_back(graft.topic);
        continue;
      }
      mesh_add(graft.topic, members, from, now);
    }
    for (const std::string& topic : refused) {
      reply.prune.push_back(make_prune(from, topic, do_px, false));
    }
  }

  void handle_prune(const PeerId& from, const std::vector<ControlPrune>& prunes,
                    Clock::time_point now) {
    if (prunes.empty()) return;
    const double peer_score_now = score(from);
    for (const ControlPrune& prune : prunes) {
      auto mesh_it = mesh.find(prune.topic);
      if (mesh_it == mesh.end()) continue;
      mesh_remove(prune.topic, mesh_it->second, from);
      if (prune.backoff_seconds && *prune.backoff_seconds > 0) {
        const auto requested = std::min<std::uint64_t>(
            *prune.backoff_seconds,
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::seconds>(kMaxPeerBackoff).count()));
        add_backoff(from, prune.topic, std::chrono::seconds(requested), now);
      } else {
        add_backoff(from, prune.topic, config.params.prune_backoff, now);
      }
      if (prune.peers.empty()) continue;
      if (peer_score_now < config.thresholds.accept_px_threshold) continue;
      px_connect(prune.peers);
    }
  }

  void px_connect(std::vector<PeerInfo> infos) {
    const auto limit = static_cast<std::size_t>(std::max(config.params.prune_peers, 0));
    if (infos.size() > limit) {
      std::shuffle(infos.begin(), infos.end(), rng);
      stats.over_limit += infos.size() - limit;
      infos.resize(limit);
    }
    for (const PeerInfo& info : infos) {
      auto candidate = PeerId::from_multihash(info.peer_id);
      if (!candidate || *candidate == self || peers.contains(*candidate)) continue;
      if (callbacks.px_candidate) callbacks.px_candidate(*candidate, info.signed_peer_record);
    }
  }

  void handle_idontwant(const PeerId& from, PeerState& peer,
                        const std::vector<ControlIDontWant>& idontwants) {
    if (idontwants.empty()) return;
    if (++peer.idontwant_rpcs > kMaxIDontWantRpcsPerHeartbeat) {
      for (const auto& entry : idontwants)
        stats.over_limit += entry.message_ids.size();
      return;
    }
    std::size_t dropped = 0;
    for (const ControlIDontWant& entry : idontwants) {
      for (const MessageId& id : entry.message_ids) {
        if (id.size() > kMaxMessageIdLength) {
          ++dropped;
          continue;
        }
        if (peer.unwanted.size() >= config.limits.max_idontwant_per_peer &&
            !peer.unwanted.contains(id)) {
          ++dropped;
          continue;
        }
        peer.unwanted[id] = kIDontWantTtlHeartbeats;
      }
    }
    if (dropped > 0) {
      stats.over_limit += dropped;
      log(from.to_base58() + " sent IDONTWANT IDs over our limits (count or length); " +
          std::to_string(dropped) + " dropped");
    }
  }

  // --- heartbeat ---

  void emit_gossip(const std::string& topic, const PeerSet& exclude, OutgoingControl& out) {
    std::vector<MessageId> ids = mcache.gossip_ids(topic);
    if (ids.empty()) return;
    std::vector<PeerId> candidates;
    if (auto it = topic_peers.find(topic); it != topic_peers.end()) {
      for (const PeerId& peer : it->second) {
        auto peer_it = peers.find(peer);
        if (exclude.contains(peer) || peer_it == peers.end() ||
            !speaks_mesh(peer_it->second.protocol) ||
            score(peer) < config.thresholds.gossip_threshold) {
          continue;
        }
        candidates.push_back(peer);
      }
    }
    std::sort(candidates.begin(), candidates.end());
    auto target = static_cast<std::size_t>(std::max(config.params.d_lazy, 0));
    target = std::max(target, static_cast<std::size_t>(config.params.gossip_factor *
                                                       static_cast<double>(candidates.size())));
    std::shuffle(candidates.begin(), candidates.end(), rng);
    if (candidates.size() > target) {
      candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(target), candidates.end());
    }
    const auto max_length = static_cast<std::size_t>(std::max(config.params.max_ihave_length, 0));
    for (const PeerId& peer : candidates) {
      std::vector<MessageId> advertised = ids;
      if (advertised.size() > max_length) {
        // A different subset for each peer covers more when truncating.
        std::shuffle(advertised.begin(), advertised.end(), rng);
        advertised.resize(max_length);
      }
      out[peer].ihave.push_back(ControlIHave{topic, std::move(advertised)});
    }
  }

  void maintain_mesh(const std::string& topic, PeerSet& members, Clock::time_point now,
                     std::map<PeerId, std::vector<std::string>>& to_graft,
                     std::map<PeerId, std::vector<std::string>>& to_prune,
                     std::set<PeerId>& no_px) {
    const GossipSubParams& params = config.params;
    auto graft_peer = [&](const PeerId& peer) {
      mesh_add(topic, members, peer, now);
      to_graft[peer].push_back(topic);
    };
    auto prune_peer = [&](const PeerId& peer) {
      mesh_remove(topic, members, peer);
      add_backoff(peer, topic, params.prune_backoff, now);
      to_prune[peer].push_back(topic);
    };
    auto eligible = [&](const PeerId& peer) {
      return !members.contains(peer) && !in_backoff(topic, peer, now) && score(peer) >= 0;
    };

    for (const PeerId& peer : sorted(members)) {
      if (score(peer) < 0) {
        prune_peer(peer);
        no_px.insert(peer);
      }
    }
    if (static_cast<int>(members.size()) < params.d_lo) {
      const int needed = params.d - static_cast<int>(members.size());
      for (const PeerId& peer : get_peers(topic, needed, eligible))
        graft_peer(peer);
    }
    if (static_cast<int>(members.size()) >= params.d_hi) {  // go prunes at D_hi already
      std::vector<PeerId> ranked = sorted(members);
      std::shuffle(ranked.begin(), ranked.end(), rng);
      std::stable_sort(ranked.begin(), ranked.end(),
                       [&](const PeerId& a, const PeerId& b) { return score(a) > score(b); });
      const auto d = static_cast<std::size_t>(std::max(params.d, 0));
      const auto d_score = std::min(static_cast<std::size_t>(std::max(params.d_score, 0)), d);
      // Keep the best D_score by score and the rest of D at random ...
      std::shuffle(ranked.begin() + static_cast<std::ptrdiff_t>(d_score), ranked.end(), rng);
      // ... with at least D_out outbound peers among the D kept.
      std::size_t kept_outbound = 0;
      for (std::size_t i = 0; i < d && i < ranked.size(); ++i) {
        if (outbound(ranked[i])) ++kept_outbound;
      }
      const auto d_out = static_cast<std::size_t>(std::max(params.d_out, 0));
      if (kept_outbound < d_out) {
        auto rotate_to_front = [&](std::size_t i) {
          std::rotate(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(i),
                      ranked.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        };
        std::size_t moved = kept_outbound;
        for (std::size_t i = 1; i < d && moved > 0 && i < ranked.size(); ++i) {
          if (outbound(ranked[i])) {
            rotate_to_front(i);
            --moved;
          }
        }
        std::size_t needed = d_out - kept_outbound;
        for (std::size_t i = d; i < ranked.size() && needed > 0; ++i) {
          if (outbound(ranked[i])) {
            rotate_to_front(i);
            --needed;
          }
        }
      }
      for (std::size_t i = d; i < ranked.size(); ++i)
        prune_peer(ranked[i]);
    }
    if (static_cast<int>(members.size()) >= params.d_lo) {
      int outbound_count = 0;
      for (const PeerId& peer : members) {
        if (outbound(peer)) ++outbound_count;
      }
      if (outbound_count < params.d_out) {
        for (const PeerId& peer :
             get_peers(topic, params.d_out - outbound_count,
                       [&](const PeerId& peer) { return eligible(peer) && outbound(peer); })) {
          graft_peer(peer);
        }
      }
    }
    if (params.opportunistic_graft_ticks > 0 &&
        heartbeat_ticks % static_cast<std::uint64_t>(params.opportunistic_graft_ticks) == 0 &&
        members.size() > 1) {
      std::vector<double> scores;
      for (const PeerId& peer : members)
        scores.push_back(score(peer));
      std::sort(scores.begin(), scores.end());
      const double median = scores[scores.size() / 2];
      if (median < config.thresholds.opportunistic_graft_threshold) {
        for (const PeerId& peer : get_peers(
                 topic, params.opportunistic_graft_peers,
                 [&](const PeerId& peer) { return eligible(peer) && score(peer) > median; })) {
          graft_peer(peer);
        }
      }
    }
  }

  void heartbeat(Clock::time_point now) {
    ++heartbeat_ticks;
    if (log_suppressed > 0 && callbacks.log) {
      callbacks.log("pubsub: " + std::to_string(log_suppressed) + " more log lines suppressed");
    }
    log_budget = kMaxLogLinesPerHeartbeat;
    log_suppressed = 0;

    peer_score.refresh(now);
    seen.expire(now);
    if (heartbeat_ticks % kBackoffSweepTicks == 0) {
      const auto slack = kBackoffSlackHeartbeats * config.params.heartbeat_interval;
      for (auto topic_it = backoff.begin(); topic_it != backoff.end();) {
        std::erase_if(topic_it->second,
                      [&](const auto& entry) { return entry.second + slack < now; });
        topic_it = topic_it->second.empty() ? backoff.erase(topic_it) : std::next(topic_it);
      }
    }
    for (auto& [id, peer] : peers) {
      peer.ihave_rpcs = 0;
      peer.ids_asked = 0;
      peer.iwant_served = 0;
      peer.idontwant_rpcs = 0;
      for (auto unwanted = peer.unwanted.begin(); unwanted != peer.unwanted.end();) {
        unwanted = --unwanted->second <= 0 ? peer.unwanted.erase(unwanted) : std::next(unwanted);
      }
    }
    // Broken IWANT promises: one behaviour penalty each (P7).
    for (auto it = promises.begin(); it != promises.end();) {
      std::erase_if(it->second, [&](const auto& entry) {
        if (entry.second >= now) return false;
        peer_score.add_penalty(entry.first, 1);
        log(entry.first.to_base58() + " did not follow up an IWANT");
        return true;
      });
      it = it->second.empty() ? promises.erase(it) : std::next(it);
    }

    if (!config.floodsub_only) {
      std::map<PeerId, std::vector<std::string>> to_graft;
      std::map<PeerId, std::vector<std::string>> to_prune;
      std::set<PeerId> no_px;
      OutgoingControl out;
      for (auto& [topic, members] : mesh) {
        maintain_mesh(topic, members, now, to_graft, to_prune, no_px);
        emit_gossip(topic, members, out);
      }
      for (auto it = last_publish.begin(); it != last_publish.end();) {
        if (it->second + config.params.fanout_ttl < now) {
          fanout.erase(it->first);
          it = last_publish.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& [topic, members] : fanout) {
        auto subscribed = topic_peers.find(topic);
        std::erase_if(members, [&](const PeerId& peer) {
          return subscribed == topic_peers.end() || !subscribed->second.contains(peer) ||
                 score(peer) < config.thresholds.publish_threshold;
        });
        if (static_cast<int>(members.size()) < config.params.d) {
          const std::string& fanout_topic = topic;
          PeerSet& fanout_members = members;
          for (const PeerId& peer :
               get_peers(fanout_topic, config.params.d - static_cast<int>(members.size()),
                         [&](const PeerId& peer) {
                           return !fanout_members.contains(peer) &&
                                  score(peer) >= config.thresholds.publish_threshold;
                         })) {
            members.insert(peer);
          }
        }
        emit_gossip(topic, members, out);
      }
      for (auto& [peer, topics] : to_graft) {
        for (const std::string& topic : topics)
          out[peer].graft.push_back(ControlGraft{topic});
      }
      for (auto& [peer, topics] : to_prune) {
        const bool do_px = !no_px.contains(peer);
        for (const std::string& topic : topics) {
          out[peer].prune.push_back(make_prune(peer, topic, do_px, false));
        }
      }
      for (auto& [peer, control] : out) {
        Rpc rpc;
        rpc.control = std::move(control);
        send(peer, std::move(rpc));
      }
    }
    mcache.shift();
  }
};

Router::Router(PrivateKey key, RouterConfig config, Callbacks callbacks)
    : state_(std::make_unique<State>(std::move(key), std::move(config), std::move(callbacks))) {}

Router::~Router() = default;

void Router::add_peer(const PeerId& peer, PeerProtocol protocol, bool outbound, std::string ip,
                      Clock::time_point now) {
  State& s = *state_;
  if (peer == s.self || s.peers.contains(peer)) return;
  if (s.peers.size() >= s.config.limits.max_peers) {
    ++s.stats.over_limit;
    s.log("peers at their limit (" + std::to_string(s.config.limits.max_peers) +
          "): " + peer.to_base58() + " ignored");
    return;
  }
  State::PeerState& state = s.peers[peer];
  state.protocol = s.config.floodsub_only ? PeerProtocol::kFloodsub : protocol;
  state.outbound = outbound;
  s.peer_score.add_peer(peer, ip, now);
  // The hello: our subscriptions.
  Rpc hello;
  for (const auto& [topic, members] : s.mesh)
    hello.subscriptions.push_back(SubOpts{true, topic});
  s.send(peer, std::move(hello));
}

void Router::remove_peer(const PeerId& peer, Clock::time_point now) {
  State& s = *state_;
  auto it = s.peers.find(peer);
  if (it == s.peers.end()) return;
  for (const std::string& topic : it->second.topics) {
    auto topic_it = s.topic_peers.find(topic);
    if (topic_it == s.topic_peers.end()) continue;
    topic_it->second.erase(peer);
    if (topic_it->second.empty()) s.topic_peers.erase(topic_it);
  }
  for (auto& [topic, members] : s.mesh)
    members.erase(peer);
  for (auto& [topic, members] : s.fanout)
    members.erase(peer);
  for (auto promise = s.promises.begin(); promise != s.promises.end();) {
    promise->second.erase(peer);
    promise = promise->second.empty() ? s.promises.erase(promise) : std::next(promise);
  }
  s.peer_score.remove_peer(peer, now);
  s.peers.erase(it);
}

void Router::handle_rpc(const PeerId& from, Rpc rpc, Clock::time_point now) {
  State& s = *state_;
  auto it = s.peers.find(from);
  if (it == s.peers.end()) return;
  if (s.score(from) < s.config.thresholds.graylist_threshold) {
    ++s.stats.graylisted_rpcs;
    return;
  }
  State::PeerState& peer = it->second;
  s.handle_subscriptions(from, peer, rpc.subscriptions);
  for (Message& message : rpc.publish)
    s.handle_message(from, std::move(message), now);
  if (rpc.control && !s.config.floodsub_only && speaks_mesh(peer.protocol)) {
    s.handle_control(from, peer, *rpc.control, now);
  }
}

Expected<MessageId> Router::publish(std::string_view topic, Bytes data, Clock::time_point now) {
  State& s = *state_;
  if (auto checked = check_topic(topic); !checked) return tl::unexpected(checked.error());
  if (data.size() > kMaxDataSize) {
    return fail("message of " + std::to_string(data.size()) + " bytes is over the limit of " +
                std::to_string(kMaxDataSize));
  }
  Message message;
  message.topic = std::string(topic);
  message.data = std::move(data);
  message.seqno = encode_seqno(s.next_seqno++);
  if (auto signed_ok = sign_message(message, s.key); !signed_ok) {
    return tl::unexpected(signed_ok.error());
  }
  MessageId id = default_message_id(message);
  ++s.stats.published;
  s.seen.add(id, now);
  if (s.joined(message.topic) && s.callbacks.deliver) {
    ++s.stats.delivered;
    s.callbacks.deliver(ReceivedMessage{s.self, message.seqno, message.topic, message.data, id,
                                        s.self, message.signature, message.key});
  }
  s.forward(message, id, nullptr, s.self, true, now);
  return id;
}

Expected<void> Router::join(std::string_view topic_view, Clock::time_point now) {
  State& s = *state_;
  if (auto checked = check_topic(topic_view); !checked) return checked;
  std::string topic(topic_view);
  if (s.mesh.contains(topic)) return {};
  if (s.mesh.size() >= s.config.limits.max_local_topics) {
    return fail("already in " + std::to_string(s.config.limits.max_local_topics) +
                " topics, the limit");
  }
  State::PeerSet& members = s.mesh[topic];
  if (!s.config.floodsub_only) {
    auto eligible = [&](const PeerId& peer) {
      return !s.in_backoff(topic, peer, now) && s.score(peer) >= 0;
    };
    if (auto fanout_it = s.fanout.find(topic); fanout_it != s.fanout.end()) {
      for (const PeerId& peer : fanout_it->second) {
        if (eligible(peer)) s.mesh_add(topic, members, peer, now);
      }
      s.fanout.erase(fanout_it);
      s.last_publish.erase(topic);
    }
    const int needed = s.config.params.d - static_cast<int>(members.size());
    if (needed > 0) {
      for (const PeerId& peer : s.get_peers(topic, needed, [&](const PeerId& peer) {
             return !members.contains(peer) && eligible(peer);
           })) {
        s.mesh_add(topic, members, peer, now);
      }
    }
  }
  for (const PeerId& peer : State::sorted([&] {
         State::PeerSet all;
         for (const auto& [id, state] : s.peers)
           all.insert(id);
         return all;
       }())) {
    Rpc rpc;
    rpc.subscriptions.push_back(SubOpts{true, topic});
    if (members.contains(peer)) rpc.control.emplace().graft.push_back(ControlGraft{topic});
    s.send(peer, std::move(rpc));
  }
  return {};
}

void Router::leave(std::string_view topic_view, Clock::time_point now) {
  State& s = *state_;
  std::string topic(topic_view);
  auto mesh_it = s.mesh.find(topic);
  if (mesh_it == s.mesh.end()) return;
  State::PeerSet members = std::move(mesh_it->second);
  s.mesh.erase(mesh_it);
  for (const PeerId& peer : members)
    s.peer_score.prune(peer, topic);
  std::vector<PeerId> all;
  for (const auto& [id, state] : s.peers)
    all.push_back(id);
  std::sort(all.begin(), all.end());
  for (const PeerId& peer : all) {
    Rpc rpc;
    rpc.subscriptions.push_back(SubOpts{false, topic});
    if (members.contains(peer)) {
      rpc.control.emplace().prune.push_back(s.make_prune(peer, topic, true, true));
      s.add_backoff(peer, topic, s.config.params.unsubscribe_backoff, now);
      ++s.stats.prunes;
    }
    s.send(peer, std::move(rpc));
  }
}

void Router::heartbeat(Clock::time_point now) {
  state_->heartbeat(now);
}

void Router::rpc_dropped(const PeerId& peer) {
  (void)peer;
  ++state_->stats.dropped_rpcs;
}

const PeerId& Router::local_peer() const {
  return state_->self;
}

std::vector<std::string> Router::topics() const {
  std::vector<std::string> out;
  for (const auto& [topic, members] : state_->mesh)
    out.push_back(topic);
  return out;
}

std::vector<PeerId> Router::topic_peers(std::string_view topic) const {
  const State& s = *state_;
  std::vector<PeerId> out;
  if (topic.empty()) {
    for (const auto& [peer, state] : s.peers)
      out.push_back(peer);
  } else if (auto it = s.topic_peers.find(std::string(topic)); it != s.topic_peers.end()) {
    out.assign(it->second.begin(), it->second.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<PeerId> Router::mesh_peers(std::string_view topic) const {
  const State& s = *state_;
  auto it = s.mesh.find(std::string(topic));
  if (it == s.mesh.end()) return {};
  return State::sorted(it->second);
}

double Router::score(const PeerId& peer) const {
  return state_->score(peer);
}

const RouterStats& Router::stats() const {
  return state_->stats;
}

const RouterConfig& Router::config() const {
  return state_->config;
}

}  // namespace an::p2p::pubsub
