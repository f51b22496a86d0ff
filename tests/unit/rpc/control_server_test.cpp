#include "rpc/control_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "agentnetwork/v1/node.grpc.pb.h"
#include "p2p/net/host.h"
#include "rpc/call_runner.h"
#include "support/temp_dir.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::rpc {
namespace {

namespace v1 = agentnetwork::v1;
using p2p::net::test::kWaitLimit;
using p2p::net::test::make_identity;

std::chrono::system_clock::time_point in(std::chrono::milliseconds delay) {
  return std::chrono::system_clock::now() + delay;
}

// A host with a control server, and a second host to be its peer, on one network thread (the
// io_context runs in a background thread, as in the node); the test thread is the gRPC client.
class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = std::make_unique<p2p::net::Host>(io_, make_identity(), p2p::net::HostConfig{});
    other_ = std::make_unique<p2p::net::Host>(io_, make_identity(), p2p::net::HostConfig{});
    auto loopback = p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
    ASSERT_TRUE(loopback);
    auto bound = host_->listen(*loopback);
    auto other_bound = other_->listen(*loopback);
    ASSERT_TRUE(bound && other_bound);
    host_address_ = bound->to_string() + "/p2p/" + host_->peer_id().to_string();
    other_address_ = other_bound->to_string() + "/p2p/" + other_->peer_id().to_string();
  }

  void TearDown() override {
    stop_server();
    on_network_thread([this] {
      host_->close();
      other_->close();
    });
    work_.reset();
    io_.stop();
    if (network_thread_.joinable()) network_thread_.join();
    // Hosts and coroutines are destroyed on this thread, the io_context no longer running.
    server_.reset();
  }

  ControlServerConfig default_config() {
    ControlServerConfig config;
    config.endpoint = choose_endpoint(daemon::DataPaths(dir_.path()), "");
    config.facts.version = "9.9.9";
    config.facts.agent_version = "agentnetwork/9.9.9";
    config.facts.role = "normal";
    config.facts.pid = 4242;
    config.facts.start_time = std::chrono::system_clock::now() - std::chrono::seconds(5);
    config.facts.listen_addrs = {host_address_};
    config.facts.data_dir = dir_.path().string();
    config.facts.log_file = (dir_.path() / "logs" / "node.log").string();
    config.request_shutdown = [this] { shutdown_requests_.fetch_add(1); };
    return config;
  }

  // Starts the server and then the network thread.
  void start(ControlServerConfig config) {
    auto server = ControlServer::start(io_, *host_, std::move(config));
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(server_->endpoint(), grpc::InsecureChannelCredentials());
    stub_ = v1::Node::NewStub(channel_);
    network_thread_ = std::thread([this] { io_.run(); });
  }

  // Stops the server as the node does, waiting for its completion report.
  void stop_server() {
    if (!server_ || server_stopped_) return;
    std::promise<void> stopped;
    asio::post(io_, [&] { server_->stop([&] { stopped.set_value(); }); });
    EXPECT_EQ(stopped.get_future().wait_for(kWaitLimit), std::future_status::ready);
    server_stopped_ = true;
  }

  template <class Function>
  void on_network_thread(Function function) {
    if (!network_thread_.joinable()) {
      function();
      return;
    }
    std::promise<void> done;
    asio::post(io_, [&] {
      function();
      done.set_value();
    });
    ASSERT_EQ(done.get_future().wait_for(kWaitLimit), std::future_status::ready);
  }

  std::unique_ptr<grpc::ClientContext> context(
      std::chrono::milliseconds deadline = std::chrono::milliseconds(10000)) {
    auto made = std::make_unique<grpc::ClientContext>();
    made->set_deadline(in(deadline));
    return made;
  }

  std::size_t peer_count_on_network_thread() {
    std::size_t count = 0;
    on_network_thread([&] { count = host_->connected_peers().size(); });
    return count;
  }

  test::TempDir dir_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::unique_ptr<p2p::net::Host> host_;
  std::unique_ptr<p2p::net::Host> other_;
  std::string host_address_;
  std::string other_address_;
  std::unique_ptr<ControlServer> server_;
  bool server_stopped_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Node::Stub> stub_;
  std::thread network_thread_;
  std::atomic<int> shutdown_requests_{0};
};

TEST_F(ControlServerTest, GetStatusReportsTheNodeAndItsLiveState) {
  start(default_config());
  v1::GetStatusResponse status;
  auto call = stub_->GetStatus(context().get(), {}, &status);
  ASSERT_TRUE(call.ok()) << call.error_message();
  EXPECT_EQ(status.peer_id(), host_->peer_id().to_string());
  EXPECT_EQ(status.version(), "9.9.9");
  EXPECT_EQ(status.agent_version(), "agentnetwork/9.9.9");
  EXPECT_EQ(status.role(), "normal");
  EXPECT_EQ(status.pid(), 4242);
  EXPECT_GE(status.uptime_ms(), 5000);
  ASSERT_EQ(status.listen_addrs_size(), 1);
  EXPECT_EQ(status.listen_addrs(0), host_address_);
  EXPECT_EQ(status.peer_count(), 0u);
  EXPECT_EQ(status.api_endpoint(), server_->endpoint());
  EXPECT_EQ(status.api_endpoint(), "unix:" + (dir_.path() / "api.sock").string());
  EXPECT_NE(std::find(status.protocols().begin(), status.protocols().end(), "/ipfs/ping/1.0.0"),
            status.protocols().end());
}

TEST_F(ControlServerTest, TheSocketIsPrivateAndRemovedAtStop) {
  // A crashed node's socket file is replaced.
  start(default_config());
  struct stat info {};
  const auto socket = dir_.path() / "api.sock";
  ASSERT_EQ(::stat(socket.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  stop_server();
  EXPECT_FALSE(std::filesystem::exists(socket));
}

TEST_F(ControlServerTest, SomethingElseAtTheSocketPathIsNotReplaced) {
  const auto socket = dir_.path() / "api.sock";
  std::ofstream(socket) << "not a socket";
  auto server = ControlServer::start(io_, *host_, default_config());
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().message.find("api.sock"), std::string::npos);
  std::ifstream kept(socket);
  std::string content;
  std::getline(kept, content);
  EXPECT_EQ(content, "not a socket");
}

TEST_F(ControlServerTest, ConnectListPingDisconnect) {
  start(default_config());
  v1::ConnectRequest connect;
  connect.set_address(other_address_);
  v1::ConnectResponse connected;
  auto call = stub_->Connect(context().get(), connect, &connected);
  ASSERT_TRUE(call.ok()) << call.error_message();
  EXPECT_EQ(connected.peer().peer_id(), other_->peer_id().to_string());
  EXPECT_EQ(connected.peer().direction(), v1::DIRECTION_OUTBOUND);
  EXPECT_GT(connected.peer().connected_at_unix_ms(), 0);

  v1::ListPeersResponse peers;
  ASSERT_TRUE(stub_->ListPeers(context().get(), {}, &peers).ok());
  ASSERT_EQ(peers.peers_size(), 1);
  EXPECT_EQ(peers.peers(0).peer_id(), other_->peer_id().to_string());
  EXPECT_FALSE(peers.peers(0).address().empty());

  v1::PingRequest ping;
  ping.set_peer_id(other_->peer_id().to_string());
  ping.set_count(3);
  v1::PingResponse pinged;
  call = stub_->Ping(context().get(), ping, &pinged);
  ASSERT_TRUE(call.ok()) << call.error_message();
  ASSERT_EQ(pinged.rtt_ns_size(), 3);
  for (auto rtt : pinged.rtt_ns())
    EXPECT_GT(rtt, 0);

  v1::FindPeerRequest find;
  find.set_peer_id(other_->peer_id().to_string());
  v1::FindPeerResponse found;
  call = stub_->FindPeer(context().get(), find, &found);
  ASSERT_TRUE(call.ok()) << call.error_message();
  EXPECT_TRUE(found.connected());

  v1::DisconnectRequest disconnect;
  disconnect.set_peer_id(other_->peer_id().to_string());
  v1::DisconnectResponse disconnected;
  call = stub_->Disconnect(context().get(), disconnect, &disconnected);
  ASSERT_TRUE(call.ok()) << call.error_message();
  call = stub_->Disconnect(context().get(), disconnect, &disconnected);
  EXPECT_EQ(call.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(peer_count_on_network_thread(), 0u);
}

TEST_F(ControlServerTest, BadInputGetsTheRightCodes) {
  start(default_config());
  auto connect_code = [&](const std::string& address) {
    v1::ConnectRequest request;
    request.set_address(address);
    v1::ConnectResponse response;
    return stub_->Connect(context().get(), request, &response);
  };
  EXPECT_EQ(connect_code("not a multiaddr").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(connect_code("/ip4/127.0.0.1/tcp/1").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(connect_code(host_address_).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A closed port, and the right address with someone else's peer ID.
  asio::io_context probe_io;
  asio::ip::tcp::acceptor probe(probe_io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto closed_port = probe.local_endpoint().port();
  probe.close();
  auto refused = connect_code("/ip4/127.0.0.1/tcp/" + std::to_string(closed_port) + "/p2p/" +
                              other_->peer_id().to_string());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  const std::string stranger = make_identity().peer_id.to_string();
  auto other_port = other_address_.substr(0, other_address_.find("/p2p/"));
  auto mismatch = connect_code(other_port + "/p2p/" + stranger);
  EXPECT_EQ(mismatch.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(mismatch.error_message().find(stranger), std::string::npos) << mismatch.error_message();

  v1::PingRequest ping;
  v1::PingResponse pinged;
  ping.set_peer_id("not-a-peer");
  EXPECT_EQ(stub_->Ping(context().get(), ping, &pinged).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ping.set_peer_id(other_->peer_id().to_string());
  EXPECT_EQ(stub_->Ping(context().get(), ping, &pinged).error_code(), grpc::StatusCode::NOT_FOUND);
  ping.set_count(kMaxPingCount + 1);
  EXPECT_EQ(stub_->Ping(context().get(), ping, &pinged).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::FindPeerRequest find;
  v1::FindPeerResponse found;
  find.set_peer_id(stranger);
  auto unknown = stub_->FindPeer(context().get(), find, &found);
  // This server has no DHT (the node's tests cover the DHT methods with one).
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(unknown.error_message().find("without the DHT"), std::string::npos);

  v1::GetValueRequest get;
  v1::GetValueResponse value;
  EXPECT_EQ(stub_->GetValue(context().get(), get, &value).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // A namespace without a validator is refused before any work.
  get.set_key("/mine/x");
  auto unknown_namespace = stub_->GetValue(context().get(), get, &value);
  EXPECT_EQ(unknown_namespace.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  get.set_key("/pk/x");
  auto no_dht = stub_->GetValue(context().get(), get, &value);
  EXPECT_EQ(no_dht.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(no_dht.error_message().empty());
  v1::PutValueRequest put;
  v1::PutValueResponse put_response;
  put.set_key("/pk/x");
  put.set_value(std::string(kMaxRecordValueBytes + 1, 'v'));
  EXPECT_EQ(stub_->PutValue(context().get(), put, &put_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // A record that does not validate: "/pk/x" names no peer.
  put.set_value("v");
  EXPECT_EQ(stub_->PutValue(context().get(), put, &put_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetClosestPeersRequest closest;
  v1::GetClosestPeersResponse closest_response;
  closest.set_key("k");
  EXPECT_EQ(stub_->GetClosestPeers(context().get(), closest, &closest_response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  closest.set_key(std::string(p2p::kad::kMaxRecordKeySize + 1, 'k'));
  EXPECT_EQ(stub_->GetClosestPeers(context().get(), closest, &closest_response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControlServerTest, AStalledPeerCostsOnlyItsOwnCallsDeadline) {
  start(default_config());
  // Accepts TCP connections (the kernel completes them) but never says a word.
  asio::io_context silent_io;
  asio::ip::tcp::acceptor silent(silent_io, {asio::ip::make_address("127.0.0.1"), 0});
  v1::ConnectRequest connect;
  connect.set_address("/ip4/127.0.0.1/tcp/" + std::to_string(silent.local_endpoint().port()) +
                      "/p2p/" + other_->peer_id().to_string());
  std::promise<grpc::Status> stalled;
  std::thread caller([&] {
    v1::ConnectResponse response;
    stalled.set_value(
        stub_->Connect(context(std::chrono::milliseconds(1500)).get(), connect, &response));
  });
  // While that call waits, the network thread keeps answering.
  for (int i = 0; i < 20; ++i) {
    v1::GetStatusResponse status;
    auto answered = stub_->GetStatus(context().get(), {}, &status);
    ASSERT_TRUE(answered.ok()) << answered.error_message();
  }
  auto result = stalled.get_future();
  ASSERT_EQ(result.wait_for(kWaitLimit), std::future_status::ready);
  caller.join();
  EXPECT_EQ(result.get().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(ControlServerTest, WatchPeersSeesConnectIdentifyAndDisconnect) {
  start(default_config());
  grpc::ClientContext watch_context;
  watch_context.set_deadline(in(std::chrono::milliseconds(20000)));
  v1::WatchPeersRequest request;
  auto reader = stub_->WatchPeers(&watch_context, request);
  // The initial metadata arrives once the watch is registered.
  reader->WaitForInitialMetadata();

  auto address = p2p::Multiaddr::parse(host_address_);
  ASSERT_TRUE(address);
  asio::post(io_, [&] {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          auto connected = co_await other_->connect(*address);
          EXPECT_TRUE(connected);
        },
        p2p::net::report_exception);
  });
  v1::PeerEvent event;
  std::vector<v1::PeerEvent::Type> seen;
  while (reader->Read(&event)) {
    EXPECT_EQ(event.peer().peer_id(), other_->peer_id().to_string());
    EXPECT_GT(event.time_unix_ms(), 0);
    seen.push_back(event.type());
    if (event.type() == v1::PeerEvent::TYPE_CONNECTED) {
      EXPECT_EQ(event.peer().direction(), v1::DIRECTION_INBOUND);
    }
    if (event.type() == v1::PeerEvent::TYPE_IDENTIFIED) {
      EXPECT_FALSE(event.peer().protocols().empty());
      on_network_thread([&] { other_->disconnect(host_->peer_id()); });
    }
    if (event.type() == v1::PeerEvent::TYPE_DISCONNECTED) {
      EXPECT_FALSE(event.reason().empty());
      break;
    }
  }
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen.front(), v1::PeerEvent::TYPE_CONNECTED);
  EXPECT_EQ(seen.back(), v1::PeerEvent::TYPE_DISCONNECTED);
  watch_context.TryCancel();
  reader->Finish();
}

TEST_F(ControlServerTest, WatchPeersCanStartWithTheCurrentPeers) {
  start(default_config());
  v1::ConnectRequest connect;
  connect.set_address(other_address_);
  v1::ConnectResponse connected;
  ASSERT_TRUE(stub_->Connect(context().get(), connect, &connected).ok());
  grpc::ClientContext watch_context;
  watch_context.set_deadline(in(std::chrono::milliseconds(20000)));
  v1::WatchPeersRequest request;
  request.set_include_current(true);
  auto reader = stub_->WatchPeers(&watch_context, request);
  v1::PeerEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.type(), v1::PeerEvent::TYPE_CONNECTED);
  EXPECT_EQ(event.peer().peer_id(), other_->peer_id().to_string());
  watch_context.TryCancel();
  reader->Finish();
}

TEST_F(ControlServerTest, ANonLoopbackEndpointRequiresTheToken) {
  auto config = default_config();
  config.endpoint.bind_address = "127.0.0.1:0";
  config.endpoint.socket_path.reset();
  config.endpoint.requires_token = true;
  config.token = "0123456789abcdef";
  start(std::move(config));
  EXPECT_EQ(server_->endpoint().rfind("127.0.0.1:", 0), 0u) << server_->endpoint();

  v1::GetStatusResponse status;
  auto without = stub_->GetStatus(context().get(), {}, &status);
  EXPECT_EQ(without.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto wrong_context = context();
  wrong_context->AddMetadata("authorization", "Bearer 0123456789abcdeX");
  EXPECT_EQ(stub_->GetStatus(wrong_context.get(), {}, &status).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto right_context = context();
  right_context->AddMetadata("authorization", "Bearer 0123456789abcdef");
  auto right = stub_->GetStatus(right_context.get(), {}, &status);
  EXPECT_TRUE(right.ok()) << right.error_message();
  // Even a shutdown needs it.
  v1::ShutdownResponse shut;
  EXPECT_EQ(stub_->Shutdown(context().get(), {}, &shut).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(shutdown_requests_.load(), 0);
}

TEST_F(ControlServerTest, ATokenIsRequiredWhenTheEndpointAsksForOne) {
  auto config = default_config();
  config.endpoint.requires_token = true;
  auto server = ControlServer::start(io_, *host_, std::move(config));
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().message.find("token"), std::string::npos);
}

TEST_F(ControlServerTest, ShutdownAnswersThenAsksTheNodeToStop) {
  start(default_config());
  v1::ShutdownResponse response;
  auto call = stub_->Shutdown(context().get(), {}, &response);
  ASSERT_TRUE(call.ok()) << call.error_message();
  on_network_thread([] {});
  EXPECT_EQ(shutdown_requests_.load(), 1);
}

TEST_F(ControlServerTest, StopEndsCallsInFlightAndWatchStreams) {
  start(default_config());
  asio::io_context silent_io;
  asio::ip::tcp::acceptor silent(silent_io, {asio::ip::make_address("127.0.0.1"), 0});
  v1::ConnectRequest connect;
  connect.set_address("/ip4/127.0.0.1/tcp/" + std::to_string(silent.local_endpoint().port()) +
                      "/p2p/" + other_->peer_id().to_string());
  std::promise<grpc::Status> pending;
  std::thread caller([&] {
    v1::ConnectResponse response;
    pending.set_value(
        stub_->Connect(context(std::chrono::milliseconds(20000)).get(), connect, &response));
  });
  grpc::ClientContext watch_context;
  watch_context.set_deadline(in(std::chrono::milliseconds(20000)));
  auto reader = stub_->WatchPeers(&watch_context, v1::WatchPeersRequest{});
  reader->WaitForInitialMetadata();
  // Let the connect reach the network thread (if it has not, it is refused: same outcome).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop_server();
  auto result = pending.get_future();
  ASSERT_EQ(result.wait_for(kWaitLimit), std::future_status::ready);
  caller.join();
  auto status = result.get();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  v1::PeerEvent event;
  while (reader->Read(&event)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(ControlServerTest, CallsWaitingOnTheNetworkAreCappedInNumber) {
  start(default_config());
  asio::io_context silent_io;
  asio::ip::tcp::acceptor silent(silent_io, {asio::ip::make_address("127.0.0.1"), 0},
                                 /*reuse_address=*/true);
  silent.listen(1024);
  v1::ConnectRequest connect;
  connect.set_address("/ip4/127.0.0.1/tcp/" + std::to_string(silent.local_endpoint().port()) +
                      "/p2p/" + other_->peer_id().to_string());
  // More Connects to a peer that never answers than the node takes at once: the surplus is
  // refused at once, the rest end at their deadline.
  constexpr std::size_t kCalls = kMaxPendingNetworkCalls + 24;
  std::atomic<std::size_t> exhausted{0};
  std::atomic<std::size_t> deadline_exceeded{0};
  std::atomic<std::size_t> other{0};
  std::vector<std::thread> callers;
  for (std::size_t i = 0; i < kCalls; ++i) {
    callers.emplace_back([&] {
      v1::ConnectResponse response;
      auto status =
          stub_->Connect(context(std::chrono::milliseconds(5000)).get(), connect, &response);
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        exhausted.fetch_add(1);
      } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        deadline_exceeded.fetch_add(1);
      } else {
        other.fetch_add(1);
      }
    });
  }
  for (auto& caller : callers)
    caller.join();
  EXPECT_EQ(other.load(), 0u);
  EXPECT_GE(exhausted.load(), kCalls - kMaxPendingNetworkCalls);
  EXPECT_EQ(exhausted.load() + deadline_exceeded.load(), kCalls);
  // Afterwards the node takes calls again.
  v1::GetStatusResponse status;
  EXPECT_TRUE(stub_->GetStatus(context().get(), {}, &status).ok());
  v1::PingRequest ping;
  ping.set_peer_id(other_->peer_id().to_string());
  v1::PingResponse pinged;
  EXPECT_EQ(stub_->Ping(context().get(), ping, &pinged).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlServerTest, ManyClientsWhilePeersComeAndGo) {
  start(default_config());
  constexpr int kClients = 16;
  constexpr int kCallsPerClient = 100;
  std::atomic<int> failures{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      for (int call = 0; call < kCallsPerClient; ++call) {
        v1::ListPeersResponse peers;
        auto status = stub_->ListPeers(context().get(), {}, &peers);
        (status.ok() ? answered : failures).fetch_add(1);
      }
    });
  }
  // Meanwhile the peer connects and disconnects, changing what the calls read.
  for (int round = 0; round < 5; ++round) {
    v1::ConnectRequest connect;
    connect.set_address(other_address_);
    v1::ConnectResponse connected;
    auto status = stub_->Connect(context().get(), connect, &connected);
    EXPECT_TRUE(status.ok()) << status.error_message();
    v1::DisconnectRequest disconnect;
    disconnect.set_peer_id(other_->peer_id().to_string());
    v1::DisconnectResponse disconnected;
    status = stub_->Disconnect(context().get(), disconnect, &disconnected);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  for (auto& client : clients)
    client.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(answered.load(), kClients * kCallsPerClient);
}

}  // namespace
}  // namespace an::rpc
