// The p2pd foreground node: builds the Host and its services on one io_context, serves the
// control protocol, prints p2pd's start-up lines and runs until a signal. Main thread only
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
#include "node/listen_addresses.h"
#include "node/p2pd_server.h"
#include "p2p/connmgr/connection_manager.h"
#include "p2p/crypto/key.h"
#include "p2p/crypto/keys.h"
#include "p2p/kad/io/dht.h"
#include "p2p/net/host.h"
#include "p2p/relay/io/relay_client.h"
#include "p2p/relay/io/relay_service.h"
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
  auto noise_static = p2p::noise::X25519KeyPair::generate();
  if (!noise_static) return start_failure(noise_static.error().message);
  p2p::net::LocalIdentity local{identity->key, identity->peer_id, std::move(*noise_static)};
  local.security_protocols = options.security_protocols;
  local.muxers = options.muxers;
  if (auto valid = p2p::net::validate_upgrade_protocols(local); !valid) {
    return start_failure(valid.error().message);
  }
  // Declared before the Host, which may report closing connections while it is destroyed.
  p2p::connmgr::Limits limits;
  limits.low_water = static_cast<std::size_t>(options.conn_low);
  limits.high_water = static_cast<std::size_t>(options.conn_high);
  limits.grace_period =
      std::chrono::milliseconds(static_cast<std::int64_t>(options.conn_grace_seconds * 1000));
  auto connection_manager = std::make_unique<p2p::connmgr::ConnectionManager>(limits);
  p2p::net::HostConfig host_config;
  host_config.agent_version = std::string("agentnetwork/") + kVersion;
  auto host = std::make_unique<p2p::net::Host>(io, std::move(local), host_config);

  std::vector<std::string> host_addrs = options.host_addrs;
  if (host_addrs.empty() && !options.no_listen) host_addrs.push_back("/ip4/0.0.0.0/tcp/0");
  if (options.no_listen) host_addrs.clear();
  std::vector<p2p::Multiaddr> bound;
  for (const auto& text : host_addrs) {
    auto address = p2p::Multiaddr::parse(text);
    if (!address) return start_failure("-hostAddrs " + text + ": " + address.error().message);
    auto listening = host->listen(*address);
    if (!listening) return start_failure("-hostAddrs " + text + ": " + listening.error().message);
    bound.push_back(*listening);
  }
  std::vector<p2p::Multiaddr> direct = expand_unspecified(bound);
  if (!options.announce_addrs.empty()) {
    direct.clear();
    for (const auto& text : options.announce_addrs) {
      auto address = p2p::Multiaddr::parse(text);
      if (!address) return start_failure("-announceAddrs " + text + ": " + address.error().message);
      direct.push_back(*address);
    }
  }
  host->set_advertised_addresses(direct);

  bool stopping = false;
  host->on_connection([&](const p2p::net::ConnectionEvent& event) {
    if (!event.connected) {
      connection_manager->disconnected(event.peer);
      return;
    }
    connection_manager->connected(event.peer,
                                  event.direction == p2p::net::Direction::kInbound
                                      ? p2p::connmgr::PeerDirection::kInbound
                                      : p2p::connmgr::PeerDirection::kOutbound,
                                  std::chrono::steady_clock::now());
    // Without -connManager go's p2pd trims nothing; tags and TRIM requests still work.
    if (!options.conn_manager || stopping) return;
    for (const auto& peer : connection_manager->select_for_trim(std::chrono::steady_clock::now()))
      host->disconnect(peer);
  });

  std::unique_ptr<p2p::kad::Dht> dht;
  if (options.dht != P2pdDhtMode::kNone) {
    p2p::kad::DhtConfig dht_config;
    const bool server = options.dht == P2pdDhtMode::kServer ||
                        (options.dht == P2pdDhtMode::kAuto && !bound.empty());
    dht_config.mode = server ? p2p::kad::DhtMode::kServer : p2p::kad::DhtMode::kClient;
    dht = std::make_unique<p2p::kad::Dht>(*host, io.get_executor(), dht_config);
    dht->start();
  }

  std::unique_ptr<p2p::relay::RelayClient> relay_client;
  if (options.relay) {
    relay_client = std::make_unique<p2p::relay::RelayClient>(*host);
    relay_client->on_addresses_changed([&](const std::vector<p2p::Multiaddr>& relayed) {
      auto advertised = direct;
      for (const auto& address : relayed)
        advertised.push_back(address.without_p2p());
      host->set_advertised_addresses(advertised);
    });
    relay_client->start();
  }
  std::unique_ptr<p2p::relay::RelayService> relay_service;
  if (options.relay_service) {
    relay_service = std::make_unique<p2p::relay::RelayService>(*host);
    relay_service->start();
  }

  if (options.bootstrap) {
    for (const auto& text : options.bootstrap_peers) {
      auto address = p2p::Multiaddr::parse(text);
      auto peer = p2p::PeerId::parse(address ? address->peer_id_component().value_or("") : "");
      if (!address || !peer) return start_failure("-bootstrapPeers: invalid address " + text);
      connection_manager->protect(*peer, "bootstrap");
      asio::co_spawn(
          io,
          [&host, address = *address]() -> asio::awaitable<void> {
            auto connected = co_await host->connect(address);
            if (!connected) {
              std::fprintf(stderr, "bootstrap peer %s: %s\n", address.to_string().c_str(),
                           connected.error().message.c_str());
            }
          },
          p2p::net::report_exception);
    }
  }

  P2pdServerConfig server_config;
  server_config.listen = options.listen;
  server_config.dht = dht.get();
  server_config.connection_manager = connection_manager.get();
  auto server = P2pdServer::start(*host, std::move(server_config));
  if (!server) return start_failure(server.error().message);

  if (!options.quiet) {
    std::printf("Control socket: %s\n", (*server)->listen_address().c_str());
    std::printf("Peer ID: %s\n", host->peer_id().to_string().c_str());
    std::printf("Peer Addrs:\n");
    for (const auto& address : host->advertised_addresses())
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
    stopping = true;
    (*server)->stop();
    if (dht) dht->stop();
    host->close();
    // Connections get a moment to put their GoAway on the wire.
    grace.expires_after(kShutdownGrace);
    grace.async_wait([&](const std::error_code&) { io.stop(); });
  });
  io.run();
  // Coroutines still suspended are destroyed with the io_context, after these.
  server->reset();
  relay_service.reset();
  relay_client.reset();
  dht.reset();
  return 0;
}

}  // namespace an::node
