// The p2pd foreground node: the P2P assembly (p2p_node.h) configured from p2pd's flags, the
// control protocol served, p2pd's start-up lines printed, run until a signal. Main thread only
// (it becomes the network thread).
#include "node/p2pd_process.h"

#include <asio.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>

#include "daemon/platform.h"
#include "node/identity.h"
#include "node/p2p_node.h"
#include "node/p2pd_server.h"
#include "p2p/crypto/key.h"
#include "p2p/crypto/keys.h"
#include "util/version.h"

namespace an::node {
namespace {

constexpr auto kShutdownGrace = std::chrono::milliseconds(100);

int start_failure(const std::string& reason) {
  std::fprintf(stderr, "error: %s\n", reason.c_str());
  return 1;
}

// The -id file: a libp2p PrivateKey protobuf, as go's p2pd reads it. Unlike the node's key
// file, its permissions are not checked: test harnesses write throwaway keys with their umask.
Expected<Identity> read_key_file(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return fail("-id " + path + ": " + ec.message());
  if (size == 0 || size > kMaxKeyFileSize) return fail("-id " + path + ": not a key file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail_errno("-id " + path);
  p2p::Bytes content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto key = p2p::PrivateKey::from_protobuf(content);
  p2p::secure_wipe(content);
  if (!key) return fail("-id " + path + ": " + key.error().message);
  auto peer = key->peer_id();
  return Identity{std::move(*key), std::move(peer)};
}

// The P2P assembly go's p2pd makes from its flags.
Expected<P2pConfig> p2p_config(const P2pdOptions& options) {
  P2pConfig config;
  config.agent_version = std::string("agentnetwork/") + kVersion;
  config.security_protocols = options.security_protocols;
  config.muxers = options.muxers;
  std::vector<std::string> host_addrs = options.host_addrs;
  if (host_addrs.empty()) host_addrs.push_back("/ip4/0.0.0.0/tcp/0");
  if (options.no_listen) host_addrs.clear();
  for (const auto& text : host_addrs) {
    auto address = p2p::Multiaddr::parse(text);
    if (!address) return fail("-hostAddrs " + text + ": " + address.error().message);
    config.listen.push_back(std::move(*address));
  }
  for (const auto& text : options.announce_addrs) {
    auto address = p2p::Multiaddr::parse(text);
    if (!address) return fail("-announceAddrs " + text + ": " + address.error().message);
    config.announce.push_back(std::move(*address));
  }
  switch (options.dht) {
    case P2pdDhtMode::kNone:
      break;
    case P2pdDhtMode::kAuto:
      config.dht = config.listen.empty() ? p2p::kad::DhtMode::kClient : p2p::kad::DhtMode::kServer;
      break;
    case P2pdDhtMode::kClient:
      config.dht = p2p::kad::DhtMode::kClient;
      break;
    case P2pdDhtMode::kServer:
      config.dht = p2p::kad::DhtMode::kServer;
      break;
  }
  config.connection_limits.low_water = static_cast<std::size_t>(options.conn_low);
  config.connection_limits.high_water = static_cast<std::size_t>(options.conn_high);
  config.connection_limits.grace_period =
      std::chrono::milliseconds(static_cast<std::int64_t>(options.conn_grace_seconds * 1000));
  // go's p2pd runs go-libp2p's resource manager with its autoscaled defaults.
  config.resource_limits = p2p::rcmgr::scaled_default_limits(
      static_cast<std::int64_t>(daemon::physical_memory_bytes() / 8),
      static_cast<std::int64_t>(daemon::descriptor_limit() / 2));
  // Without -connManager go's p2pd trims nothing; tags and TRIM requests still work.
  config.trim_connections = options.conn_manager;
  config.relay_client = options.relay;
  if (options.relay_service) config.relay_service = p2p::relay::RelayLimits{};
  if (options.bootstrap) {
    for (const auto& text : options.bootstrap_peers) {
      auto address = p2p::Multiaddr::parse(text);
      auto peer = p2p::PeerId::parse(address ? address->peer_id_component().value_or("") : "");
      if (!address || !peer) return fail("-bootstrapPeers: invalid address " + text);
      config.bootstrap.push_back(std::move(*address));
    }
  }
  if (options.pubsub) {
    // go's p2pd runs go-libp2p-pubsub with its defaults (strict signing included) and only the
    // heartbeat interval taken from the flags.
    p2p::pubsub::PubSubConfig pubsub;
    pubsub.router.floodsub_only = options.pubsub_router == P2pdPubsubRouter::kFloodsub;
    pubsub.router.params.heartbeat_interval = options.gossipsub_heartbeat_interval;
    config.pubsub = std::move(pubsub);
  }
  // go's p2pd reserves only with -autoRelay, which is not supported yet.
  config.reserve_on_bootstrap_relays = false;
  // The control socket's owner reads stdout: warnings go to stderr, as go's p2pd logs.
  config.log = [](P2pLogLevel level, const std::string& message) {
    if (level == P2pLogLevel::kWarn) std::fprintf(stderr, "%s\n", message.c_str());
  };
  return config;
}

}  // namespace

int run_p2pd(const P2pdOptions& options) {
  daemon::ignore_broken_pipe_signal();
  asio::io_context io;

  std::optional<Identity> identity;
  if (options.id_file.empty()) {
    auto key = p2p::PrivateKey::generate(p2p::KeyType::kEd25519);
    if (!key) return start_failure(key.error().message);
    auto peer = key->peer_id();
    identity.emplace(Identity{std::move(*key), std::move(peer)});
  } else {
    auto loaded = read_key_file(options.id_file);
    if (!loaded) return start_failure(loaded.error().message);
    identity.emplace(std::move(*loaded));
  }
  auto config = p2p_config(options);
  if (!config) return start_failure(config.error().message);
  auto p2p = P2pNode::start(io, std::move(*identity), std::move(*config));
  if (!p2p) return start_failure(p2p.error().message);
  auto& node = **p2p;

  P2pdServerConfig server_config;
  server_config.listen = options.listen;
  server_config.dht = node.dht();
  server_config.connection_manager = &node.connection_manager();
  server_config.pubsub = node.pubsub();
  auto server = P2pdServer::start(node.host(), std::move(server_config));
  if (!server) return start_failure(server.error().message);

  if (!options.quiet) {
    std::printf("Control socket: %s\n", (*server)->listen_address().c_str());
    std::printf("Peer ID: %s\n", node.host().peer_id().to_string().c_str());
    std::printf("Peer Addrs:\n");
    for (const auto& address : node.advertised_addresses())
      std::printf("%s\n", address.to_string().c_str());
    if (options.bootstrap && !options.bootstrap_peers.empty()) {
      std::printf("Bootstrap peers:\n");
      for (const auto& peer : options.bootstrap_peers)
        std::printf("%s\n", peer.c_str());
    }
    std::fflush(stdout);
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer grace(io);
  signals.async_wait([&](const std::error_code& ec, int) {
    if (ec) return;
    (*server)->stop();
    node.stop();
    // Connections get a moment to put their GoAway on the wire.
    grace.expires_after(kShutdownGrace);
    grace.async_wait([&](const std::error_code&) { io.stop(); });
  });
  io.run();
  // Coroutines still suspended are destroyed with the io_context, after these.
  server->reset();
  p2p->reset();
  return 0;
}

}  // namespace an::node
