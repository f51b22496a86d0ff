// `agentnetwork p2pd`: the node composed like go-libp2p-daemon's p2pd (a Host with the DHT,
// circuit relay, connection manager, identify and pubsub, driven through the p2pd control
// protocol), in the foreground, with no data directory. run_p2pd is called once, from main's
// thread, which becomes the network thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace an::node {

enum class P2pdDhtMode { kNone, kAuto, kClient, kServer };
enum class P2pdPubsubRouter { kGossipsub, kFloodsub };

// go-libp2p-daemon's defaults.
struct P2pdOptions {
  std::string listen = "/unix/tmp/p2pd.sock";  // control socket
  std::vector<std::string> host_addrs;         // empty: /ip4/0.0.0.0/tcp/0
  std::vector<std::string> announce_addrs;     // empty: the listen addresses
  bool no_listen = false;
  std::string id_file;  // empty: a fresh Ed25519 key for this run
  std::vector<std::string> security_protocols{"/noise", "/tls/1.0.0"};
  std::vector<std::string> muxers{"/yamux/1.0.0"};
  P2pdDhtMode dht = P2pdDhtMode::kNone;
  bool relay = true;           // circuit relay v2 client: accept and dial relayed connections
  bool relay_service = false;  // circuit relay v2 hop service
  std::vector<std::string> bootstrap_peers;
  bool bootstrap = false;
  bool conn_manager = false;
  int conn_low = 256;
  int conn_high = 512;
  double conn_grace_seconds = 120;
  bool quiet = false;
  bool pubsub = false;
  P2pdPubsubRouter pubsub_router = P2pdPubsubRouter::kGossipsub;
  std::chrono::milliseconds gossipsub_heartbeat_interval{1000};  // go-libp2p-pubsub's default
};

// Runs until SIGINT/SIGTERM. Returns the exit code: 0 after a clean stop, 1 when it could not
// start (the reason is on stderr).
int run_p2pd(const P2pdOptions& options);

}  // namespace an::node
