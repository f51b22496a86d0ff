// The control API client and the commands that use it (id, peers, connect, ping, find, status,
// stop), against a fake node: a child process holding the data directory's lock, a node.status
// naming an endpoint, and an in-process gRPC server playing the node's control API.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agentnetwork/v1/node.grpc.pb.h"
#include "app/cli.h"
#include "app/commands.h"
#include "daemon/control.h"
#include "daemon/status_file.h"
#include "rpc/control_client.h"
#include "support/temp_dir.h"

namespace an::app {
namespace {

namespace v1 = ::agentnetwork::v1;
using daemon::DataPaths;
using rpc::CallStatus;
using rpc::ClientErrc;
using rpc::ControlClient;

constexpr const char* kPeerA = "12D3KooWRe9TefuDd37q6b5Fs62xhChhA39zrpw9L7Zst2qPW9SW";
constexpr const char* kPeerB = "12D3KooWMuz9QGCXvq3ZHYZFXU3EjtuNzXBzFkZpLoyXrcpgwEYt";

// A child process that holds the data directory's lock like a node does, until released
// (closing the pipe) or signalled. Made before any gRPC server of the test exists.
class FakeNodeProcess {
 public:
  explicit FakeNodeProcess(const DataPaths& paths) {
    int to_child[2];
    int from_child[2];
    EXPECT_EQ(::pipe(to_child), 0);
    EXPECT_EQ(::pipe(from_child), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(from_child[0]);
      auto lock = daemon::FileLock::try_acquire(paths.lock_file);
      if (!lock || !lock->has_value()) ::_exit(3);
      if (!daemon::write_pid_file(paths.pid_file, ::getpid())) ::_exit(4);
      char ready = 'r';
      (void)!::write(from_child[1], &ready, 1);
      char byte;
      (void)!::read(to_child[0], &byte, 1);  // returns at EOF, when released
      ::_exit(0);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    release_fd_.store(to_child[1]);
    char ready = 0;
    EXPECT_EQ(::read(from_child[0], &ready, 1), 1);
    ::close(from_child[0]);
  }

  ~FakeNodeProcess() {
    release();
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  // Lets the child exit, as a node does after Shutdown. Any thread.
  void release() {
    int fd = release_fd_.exchange(-1);
    if (fd >= 0) ::close(fd);
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::atomic<int> release_fd_{-1};
};

v1::Peer make_peer(const std::string& id, const std::string& address, v1::Direction direction) {
  v1::Peer peer;
  peer.set_peer_id(id);
  peer.set_address(address);
  peer.set_direction(direction);
  peer.set_agent_version("agentnetwork/0.1.0");
  peer.set_protocol_version("ipfs/0.1.0");
  peer.add_protocols("/ipfs/ping/1.0.0");
  peer.add_listen_addrs(address);
  peer.set_connected_at_unix_ms(1700000000123);
  peer.set_stream_count(2);
  return peer;
}

// The node's control API as the tests want it to answer.
class FakeApi final : public v1::Node::Service {
 public:
  grpc::Status GetStatus(grpc::ServerContext* context, const v1::GetStatusRequest*,
                         v1::GetStatusResponse* response) override {
    record(context);
    if (status_delay.count() > 0) std::this_thread::sleep_for(status_delay);
    response->set_peer_id(kPeerA);
    response->set_version("0.1.0");
    response->set_agent_version("agentnetwork/0.1.0");
    response->set_role("relay");
    response->set_start_time_unix_ms(1700000000000);
    response->set_uptime_ms(3723000);  // 1h2m3s
    response->add_listen_addrs(std::string("/ip4/127.0.0.1/tcp/4001/p2p/") + kPeerA);
    response->add_protocols("/ipfs/id/1.0.0");
    response->add_protocols("/ipfs/ping/1.0.0");
    response->set_peer_count(7);
    return get_status_result;
  }

  grpc::Status ListPeers(grpc::ServerContext* context, const v1::ListPeersRequest*,
                         v1::ListPeersResponse* response) override {
    record(context);
    // Deliberately unsorted: the CLI sorts.
    *response->add_peers() = make_peer(kPeerB, "/ip4/127.0.0.1/tcp/4002", v1::DIRECTION_OUTBOUND);
    *response->add_peers() = make_peer(kPeerA, "/ip4/127.0.0.1/tcp/4003", v1::DIRECTION_INBOUND);
    return grpc::Status::OK;
  }

  grpc::Status Connect(grpc::ServerContext* context, const v1::ConnectRequest* request,
                       v1::ConnectResponse* response) override {
    record(context);
    {
      std::lock_guard lock(mutex);
      connected_addresses.push_back(request->address());
    }
    if (!connect_result.ok()) return connect_result;
    auto address = request->address();
    auto p2p = address.rfind("/p2p/");
    *response->mutable_peer() =
        make_peer(address.substr(p2p + 5), address.substr(0, p2p), v1::DIRECTION_OUTBOUND);
    return grpc::Status::OK;
  }

  grpc::Status Ping(grpc::ServerContext* context, const v1::PingRequest* request,
                    v1::PingResponse* response) override {
    record(context);
    grpc::Status result = grpc::Status::OK;
    {
      std::lock_guard lock(mutex);
      pinged.emplace_back(request->peer_id(), request->count());
      if (!ping_results.empty()) {
        result = ping_results.front();
        ping_results.pop_front();
      }
    }
    if (result.ok()) response->add_rtt_ns(1'500'000);
    return result;
  }

  grpc::Status FindPeer(grpc::ServerContext* context, const v1::FindPeerRequest* request,
                        v1::FindPeerResponse* response) override {
    record(context);
    if (!find_result.ok()) return find_result;
    response->set_peer_id(request->peer_id());
    response->add_addresses("/ip4/127.0.0.1/tcp/4002");
    response->set_connected(true);
    return grpc::Status::OK;
  }

  grpc::Status Shutdown(grpc::ServerContext* context, const v1::ShutdownRequest*,
                        v1::ShutdownResponse*) override {
    record(context);
    ++shutdown_calls;
    if (shutdown_result.ok() && on_shutdown) on_shutdown();
    return shutdown_result;
  }

  grpc::Status WatchPeers(grpc::ServerContext* context, const v1::WatchPeersRequest* request,
                          grpc::ServerWriter<v1::PeerEvent>* writer) override {
    record(context);
    if (!request->include_current()) return grpc::Status::OK;
    for (int i = 0; i < 100 && !context->IsCancelled(); ++i) {
      v1::PeerEvent event;
      event.set_type(v1::PeerEvent::TYPE_CONNECTED);
      *event.mutable_peer() = make_peer(kPeerB, "/ip4/127.0.0.1/tcp/4002", v1::DIRECTION_INBOUND);
      if (!writer->Write(event)) break;
    }
    return grpc::Status::OK;
  }

  std::vector<std::string> authorizations() {
    std::lock_guard lock(mutex);
    return authorization_seen;
  }

  // Set before the calls.
  grpc::Status get_status_result = grpc::Status::OK;
  std::chrono::milliseconds status_delay{0};
  grpc::Status connect_result = grpc::Status::OK;
  std::deque<grpc::Status> ping_results;
  grpc::Status find_result = grpc::Status::OK;
  grpc::Status shutdown_result = grpc::Status::OK;
  std::function<void()> on_shutdown;

  // Seen by the fake.
  std::mutex mutex;
  std::vector<std::string> connected_addresses;
  std::vector<std::pair<std::string, std::uint32_t>> pinged;
  std::atomic<int> shutdown_calls{0};

 private:
  void record(grpc::ServerContext* context) {
    std::string value;
    auto found = context->client_metadata().find("authorization");
    if (found != context->client_metadata().end()) {
      value.assign(found->second.data(), found->second.size());
    }
    std::lock_guard lock(mutex);
    authorization_seen.push_back(value);
  }

  std::vector<std::string> authorization_seen;
};

// What a command printed and returned.
struct Run {
  int rc = -1;
  std::string out;
  std::string err;
};

Run run_command(int (*command)(const Words&), const Words& words) {
  Run run;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  run.rc = command(words);
  run.out = ::testing::internal::GetCapturedStdout();
  run.err = ::testing::internal::GetCapturedStderr();
  return run;
}

// The whole command line, through the dispatcher.
Run run_cli_words(std::vector<std::string> words) {
  words.insert(words.begin(), "agentnetwork");
  std::vector<char*> argv;
  for (auto& word : words)
    argv.push_back(word.data());
  argv.push_back(nullptr);
  Run run;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  run.rc = run_cli(static_cast<int>(words.size()), argv.data());
  run.out = ::testing::internal::GetCapturedStdout();
  run.err = ::testing::internal::GetCapturedStderr();
  return run;
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class ApiCommandsTest : public ::testing::Test {
 protected:
  Words with_data(Words words) const {
    words.insert(words.end(), {"-data", paths_.data_dir.string()});
    return words;
  }

  // A fake node process, and node.status naming `endpoint` as its control API.
  void start_fake_node(const std::string& endpoint) {
    node_ = std::make_unique<FakeNodeProcess>(paths_);
    daemon::NodeStatus status;
    status.running = true;
    status.pid = node_->pid();
    status.start_time = std::chrono::system_clock::now();
    status.node_id = kPeerA;
    status.version = "0.1.0";
    status.role = "normal";
    status.listen_addrs = {std::string("/ip4/127.0.0.1/tcp/4001/p2p/") + kPeerA};
    status.peer_count = 1;
    status.data_dir = paths_.data_dir.string();
    status.log_file = paths_.log_file.string();
    status.pid_file = paths_.pid_file.string();
    status.grpc = endpoint;
    ASSERT_TRUE(daemon::write_status_file(paths_.status_file, status));
  }

  // The fake node with the fake API on a socket in the data directory.
  void start_fake_node_with_api() {
    start_fake_node("unix:" + socket_path());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket_path(), grpc::InsecureServerCredentials());
    builder.RegisterService(&api_);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr);
  }

  std::string socket_path() const { return (paths_.data_dir / "fake-api.sock").string(); }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_.reset();
    node_.reset();
  }

  test::TempDir temp_;
  DataPaths paths_{temp_.path()};
  std::unique_ptr<FakeNodeProcess> node_;
  FakeApi api_;
  std::unique_ptr<grpc::Server> server_;
};

// ---- checked before anything is asked -------------------------------------------------------

TEST_F(ApiCommandsTest, BadArgumentsAreUsageErrorsEvenWithoutANode) {
  struct Case {
    int (*command)(const Words&);
    Words words;
    const char* needle;
  };
  const Case cases[] = {
      {command_connect, {}, "needs a MULTIADDR"},
      {command_connect, {"/ip4/1.2.3/tcp/1/p2p/x"}, "/ip4/1.2.3/tcp/1/p2p/x"},
      {command_connect, {"/ip4/127.0.0.1/tcp/4001"}, "/p2p/"},
      {command_connect, {"not-an-address"}, "not-an-address"},
      {command_connect, {"/ip4/127.0.0.1/tcp/1/p2p/" + std::string(kPeerA), "extra"}, "extra"},
      {command_ping, {}, "needs a PEER"},
      {command_ping, {"12D3KooWnotapeer"}, "12D3KooWnotapeer"},
      {command_ping, {"/ip4/127.0.0.1/tcp/4001"}, "/p2p/"},
      {command_ping, {kPeerA, "-n", "0"}, "-n \"0\""},
      {command_ping, {kPeerA, "-n", "101"}, "-n \"101\""},
      {command_ping, {kPeerA, "-n", "two"}, "-n \"two\""},
      {command_find, {}, "needs a PEER"},
      {command_find, {"nobody"}, "nobody"},
      // find takes a peer ID only, not an address
      {command_find, {"/ip4/127.0.0.1/tcp/1/p2p/" + std::string(kPeerA)}, "/ip4/127.0.0.1"},
      {command_id, {"-frobnicate"}, "-frobnicate"},
      {command_peers, {"extra"}, "extra"},
  };
  for (const auto& c : cases) {
    auto run = run_command(c.command, with_data(c.words));
    EXPECT_EQ(run.rc, kExitUsage) << c.needle << "\n" << run.err;
    EXPECT_TRUE(run.err.starts_with("error: ")) << run.err;
    EXPECT_TRUE(contains(run.err, c.needle)) << "expected " << c.needle << " in " << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    EXPECT_EQ(run.out, "");
  }
  // Nothing was created in the data directory by rejected commands.
  EXPECT_TRUE(std::filesystem::is_empty(paths_.data_dir));
}

TEST_F(ApiCommandsTest, EveryCommandSaysNotRunningWithExitCode3) {
  const std::pair<int (*)(const Words&), Words> commands[] = {
      {command_id, {}},
      {command_id, {"-json"}},
      {command_peers, {}},
      {command_connect, {"/ip4/127.0.0.1/tcp/4001/p2p/" + std::string(kPeerA)}},
      {command_ping, {kPeerA, "-n", "1"}},
      {command_find, {kPeerA}},
  };
  for (const auto& [command, words] : commands) {
    auto run = run_command(command, with_data(words));
    EXPECT_EQ(run.rc, kExitNotRunning) << run.err;
    EXPECT_TRUE(contains(run.err, "error: node is not running")) << run.err;
    EXPECT_EQ(run.out, "");
  }
}

TEST_F(ApiCommandsTest, HelpListsTheApiCommands) {
  auto overview = run_cli_words({"help"});
  EXPECT_EQ(overview.rc, kExitOk);
  for (const char* name : {"id", "peers", "connect", "ping", "find"}) {
    EXPECT_TRUE(contains(overview.out, "\n  " + std::string(name) + " ")) << overview.out;
    // The dispatcher knows the command: "COMMAND -h" prints its help.
    auto help = run_cli_words({name, "-h"});
    EXPECT_EQ(help.rc, kExitOk) << name << ": " << help.err;
    EXPECT_EQ(help.out, command_help(spec_of(name)));
    EXPECT_TRUE(contains(help.out, "control API")) << help.out;
  }
  EXPECT_TRUE(contains(command_help(spec_of("ping")), "-n N"));
  EXPECT_TRUE(contains(command_help(spec_of("stop")), "Shutdown"));
}

// ---- the client's view of the data directory ------------------------------------------------

TEST_F(ApiCommandsTest, ClientErrorsBeforeAnyCall) {
  auto none = ControlClient::open(paths_);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, ClientErrc::kNotRunning);
  EXPECT_FALSE(rpc::call_status(none.error()).has_value());

  node_ = std::make_unique<FakeNodeProcess>(paths_);
  auto starting = ControlClient::open(paths_);  // locked, but no node.status yet
  ASSERT_FALSE(starting.has_value());
  EXPECT_EQ(starting.error().code, ClientErrc::kNotReady);
  node_.reset();

  start_fake_node("");  // a node without the control API
  auto no_endpoint = ControlClient::open(paths_);
  ASSERT_FALSE(no_endpoint.has_value());
  EXPECT_EQ(no_endpoint.error().code, ClientErrc::kNoEndpoint);
  EXPECT_EQ(no_endpoint.error().message,
            "the node does not serve the control API (node.status has no endpoint)");
  auto run = run_command(command_peers, with_data({}));
  EXPECT_EQ(run.rc, kExitFailure);
  EXPECT_EQ(run.err, "error: " + no_endpoint.error().message + "\n");
}

TEST_F(ApiCommandsTest, UnreachableEndpointIsUnavailable) {
  start_fake_node("unix:" + socket_path());  // nobody listens there
  auto client = ControlClient::open(paths_);
  ASSERT_TRUE(client.has_value()) << client.error().message;
  EXPECT_EQ(client->target(), "unix:" + socket_path());
  EXPECT_EQ(client->node_pid(), node_->pid());
  auto status = client->get_status(std::chrono::seconds(5));
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(rpc::call_status(status.error()), CallStatus::kUnavailable);
  EXPECT_TRUE(status.error().message.starts_with("UNAVAILABLE")) << status.error().message;

  auto run = run_command(command_id, with_data({}));
  EXPECT_EQ(run.rc, kExitFailure);
  EXPECT_TRUE(contains(run.err, "error: UNAVAILABLE")) << run.err;
}

TEST_F(ApiCommandsTest, SendsTheTokenWhenTheFileExists) {
  start_fake_node_with_api();
  {
    auto client = ControlClient::open(paths_);
    ASSERT_TRUE(client.has_value()) << client.error().message;
    ASSERT_TRUE(client->get_status());
  }
  {
    std::ofstream(paths_.api_token) << "c0ffee-token\n";
    std::filesystem::permissions(
        paths_.api_token, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    auto client = ControlClient::open(paths_);
    ASSERT_TRUE(client.has_value()) << client.error().message;
    ASSERT_TRUE(client->list_peers());
  }
  EXPECT_EQ(api_.authorizations(), (std::vector<std::string>{"", "Bearer c0ffee-token"}));
}

TEST_F(ApiCommandsTest, CallErrorsCarryTheStatusNameAndTheNodesMessage) {
  start_fake_node_with_api();
  api_.find_result = grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                  "finding peers through the DHT is not supported yet");
  api_.status_delay = std::chrono::milliseconds(1000);
  auto client = ControlClient::open(paths_);
  ASSERT_TRUE(client.has_value()) << client.error().message;

  auto found = client->find_peer(kPeerB);
  ASSERT_FALSE(found.has_value());
  EXPECT_EQ(found.error().code, CallStatus::kUnimplemented);
  EXPECT_EQ(found.error().message,
            "UNIMPLEMENTED: finding peers through the DHT is not supported yet");

  auto late = client->get_status(std::chrono::milliseconds(200));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(rpc::call_status(late.error()), CallStatus::kDeadlineExceeded);
  EXPECT_TRUE(contains(late.error().message, "within 0.2s")) << late.error().message;
}

TEST_F(ApiCommandsTest, WatchPeersStopsWhenTheCallbackSaysSo) {
  start_fake_node_with_api();
  auto client = ControlClient::open(paths_);
  ASSERT_TRUE(client.has_value()) << client.error().message;
  int events = 0;
  auto watched = client->watch_peers(
      true,
      [&](const v1::PeerEvent& event) {
        EXPECT_EQ(event.peer().peer_id(), kPeerB);
        return ++events < 3;
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(watched.has_value()) << watched.error().message;
  EXPECT_EQ(events, 3);
  // A stream the node ends at once is a success with no events.
  events = 0;
  EXPECT_TRUE(client->watch_peers(
      false, [&](const v1::PeerEvent&) { return ++events > 0; }, std::chrono::seconds(10)));
  EXPECT_EQ(events, 0);
}

// ---- the commands against the fake API ------------------------------------------------------

TEST_F(ApiCommandsTest, IdPrintsThePeerIdOrJson) {
  start_fake_node_with_api();
  auto run = run_command(command_id, with_data({}));
  EXPECT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_EQ(run.out, std::string(kPeerA) + "\n");

  run = run_command(command_id, with_data({"-json"}));
  ASSERT_EQ(run.rc, kExitOk) << run.err;
  auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["peer_id"], kPeerA);
  EXPECT_EQ(json["agent_version"], "agentnetwork/0.1.0");
  EXPECT_EQ(json["listen_addrs"].size(), 1u);
  EXPECT_EQ(json["protocols"], nlohmann::json::array({"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"}));
  EXPECT_EQ(json.size(), 4u);
}

TEST_F(ApiCommandsTest, PeersTableIsSortedWithACount) {
  start_fake_node_with_api();
  auto run = run_command(command_peers, with_data({}));
  ASSERT_EQ(run.rc, kExitOk) << run.err;
  std::vector<std::string> lines;
  std::istringstream in(run.out);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << run.out;
  EXPECT_TRUE(lines[0].starts_with("PEER ID")) << lines[0];
  for (const char* column : {"DIRECTION", "ADDRESS", "AGENT"})
    EXPECT_TRUE(contains(lines[0], column)) << lines[0];
  // kPeerB ("...Muz9") sorts before kPeerA ("...Re9T").
  EXPECT_TRUE(lines[1].starts_with(kPeerB)) << run.out;
  EXPECT_TRUE(contains(lines[1], "outbound")) << lines[1];
  EXPECT_TRUE(contains(lines[1], "/ip4/127.0.0.1/tcp/4002")) << lines[1];
  EXPECT_TRUE(contains(lines[1], "agentnetwork/0.1.0")) << lines[1];
  EXPECT_TRUE(lines[2].starts_with(kPeerA)) << run.out;
  EXPECT_TRUE(contains(lines[2], "inbound")) << lines[2];
  EXPECT_EQ(lines[3], "2 peers connected");
  // The columns line up.
  EXPECT_EQ(lines[0].find("DIRECTION"), lines[1].find("outbound"));
  EXPECT_EQ(lines[0].find("ADDRESS"), lines[2].find("/ip4/"));
}

TEST_F(ApiCommandsTest, PeersJsonHasEveryField) {
  start_fake_node_with_api();
  auto run = run_command(command_peers, with_data({"-json"}));
  ASSERT_EQ(run.rc, kExitOk) << run.err;
  auto json = nlohmann::json::parse(run.out);
  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0]["peer_id"], kPeerB);
  EXPECT_EQ(json[1]["peer_id"], kPeerA);
  const auto& peer = json[0];
  EXPECT_EQ(peer["address"], "/ip4/127.0.0.1/tcp/4002");
  EXPECT_EQ(peer["direction"], "outbound");
  EXPECT_EQ(peer["agent_version"], "agentnetwork/0.1.0");
  EXPECT_EQ(peer["protocol_version"], "ipfs/0.1.0");
  EXPECT_EQ(peer["protocols"], nlohmann::json::array({"/ipfs/ping/1.0.0"}));
  EXPECT_EQ(peer["listen_addrs"], nlohmann::json::array({"/ip4/127.0.0.1/tcp/4002"}));
  EXPECT_EQ(peer["connected_at_unix_ms"], 1700000000123);
  EXPECT_EQ(peer["stream_count"], 2);
  // Every field of the proto's Peer, nothing else.
  EXPECT_EQ(peer.size(), static_cast<std::size_t>(v1::Peer::descriptor()->field_count()));
}

TEST_F(ApiCommandsTest, ConnectPrintsThePeerAndMapsInvalidArgumentToUsage) {
  start_fake_node_with_api();
  const std::string address = "/ip4/127.0.0.1/tcp/4002/p2p/" + std::string(kPeerB);
  auto run = run_command(command_connect, with_data({address}));
  EXPECT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_EQ(run.out, "connected to " + std::string(kPeerB) + " (/ip4/127.0.0.1/tcp/4002)\n");

  api_.connect_result = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no such transport");
  run = run_command(command_connect, with_data({address}));
  EXPECT_EQ(run.rc, kExitUsage);
  EXPECT_EQ(run.err, "error: INVALID_ARGUMENT: no such transport\n");

  api_.connect_result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "peer ID mismatch");
  run = run_command(command_connect, with_data({address}));
  EXPECT_EQ(run.rc, kExitFailure);
  EXPECT_EQ(run.err, "error: UNAVAILABLE: peer ID mismatch\n");
}

TEST_F(ApiCommandsTest, PingContinuesAfterAFailureAndSummarizes) {
  start_fake_node_with_api();
  api_.ping_results = {grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream reset")};
  auto run = run_command(command_ping, with_data({kPeerB, "-n", "2"}));
  EXPECT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_EQ(run.err, "error: UNAVAILABLE: stream reset\n");
  EXPECT_EQ(run.out, "PONG from " + std::string(kPeerB) +
                         ": time=1.500 ms\n"
                         "2 pings, 1 ok, min/avg/max = 1.500/1.500/1.500 ms\n");
  std::lock_guard lock(api_.mutex);
  ASSERT_EQ(api_.pinged.size(), 2u);
  for (const auto& [peer, count] : api_.pinged) {
    EXPECT_EQ(peer, kPeerB);
    EXPECT_EQ(count, 1u);  // one call per ping
  }
}

TEST_F(ApiCommandsTest, PingOfAnAddressConnectsFirstAndFailsWhenNoPingSucceeds) {
  start_fake_node_with_api();
  api_.ping_results = {grpc::Status(grpc::StatusCode::NOT_FOUND, "not connected")};
  const std::string address = "/ip4/127.0.0.1/tcp/4002/p2p/" + std::string(kPeerB);
  auto run = run_command(command_ping, with_data({address, "-n", "1"}));
  EXPECT_EQ(run.rc, kExitFailure);
  EXPECT_EQ(run.out, "1 ping, 0 ok\n");
  EXPECT_EQ(run.err, "error: NOT_FOUND: not connected\n");
  std::lock_guard lock(api_.mutex);
  EXPECT_EQ(api_.connected_addresses, std::vector<std::string>{address});
  ASSERT_EQ(api_.pinged.size(), 1u);
  EXPECT_EQ(api_.pinged[0].first, kPeerB);
}

TEST_F(ApiCommandsTest, FindShowsAddressesOrTheNodesRefusal) {
  start_fake_node_with_api();
  auto run = run_command(command_find, with_data({kPeerB}));
  EXPECT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_TRUE(contains(run.out, kPeerB)) << run.out;
  EXPECT_TRUE(contains(run.out, "Connected:   yes")) << run.out;
  EXPECT_TRUE(contains(run.out, "  - /ip4/127.0.0.1/tcp/4002\n")) << run.out;

  api_.find_result = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "the DHT is not supported yet");
  run = run_command(command_find, with_data({kPeerB}));
  EXPECT_EQ(run.rc, kExitFailure);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "error: UNIMPLEMENTED: the DHT is not supported yet\n");
}

TEST_F(ApiCommandsTest, StatusIsLiveFromTheApi) {
  start_fake_node_with_api();
  auto run = run_command(command_status, with_data({"-json"}));
  ASSERT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_EQ(run.err, "");
  auto json = nlohmann::json::parse(run.out);
  // With -json the peers come from ListPeers and the count matches them.
  EXPECT_EQ(json["peer_count"], 2);
  ASSERT_EQ(json["peers"].size(), 2u);
  EXPECT_EQ(json["peers"][0]["peer_id"], kPeerB);
  EXPECT_EQ(json["peers"][0]["direction"], "outbound");
  EXPECT_EQ(json["uptime"], "1h2m3s");
  EXPECT_EQ(json["start_time"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(json["role"], "relay");
  EXPECT_EQ(json["pid"], node_->pid());
  // The same keys as node.status.
  for (const char* key : {"running", "pid", "start_time", "uptime", "node_id", "version", "role",
                          "listen_addrs", "peer_count", "data_dir", "log_file", "pid_file"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }

  ::setenv("LC_ALL", "C", 1);
  run = run_command(command_status, with_data({}));
  ::unsetenv("LC_ALL");
  ASSERT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_TRUE(contains(run.out, "Peers:       7\n")) << run.out;
  EXPECT_TRUE(contains(run.out, "Uptime:      1h2m3s\n")) << run.out;
}

TEST_F(ApiCommandsTest, StatusFallsBackToTheStatusFile) {
  start_fake_node_with_api();
  api_.get_status_result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down");
  auto run = run_command(command_status, with_data({"-json"}));
  ASSERT_EQ(run.rc, kExitOk) << run.err;
  auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["peer_count"], 1);  // as written in node.status
  EXPECT_EQ(json["role"], "normal");
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_TRUE(contains(run.err, "UNAVAILABLE: shutting down")) << run.err;
  EXPECT_TRUE(contains(run.err, "node.status")) << run.err;
}

TEST_F(ApiCommandsTest, StopAsksThroughShutdownFirst) {
  start_fake_node_with_api();
  api_.on_shutdown = [this] { node_->release(); };
  const auto pid = node_->pid();
  auto run = run_command(command_stop, with_data({"-timeout", "10"}));
  EXPECT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_EQ(api_.shutdown_calls.load(), 1);
  EXPECT_EQ(run.out, "Stopping node (PID " + std::to_string(pid) + ")...\nNode stopped\n");
  EXPECT_FALSE(daemon::process_exists(pid));
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
  auto running = daemon::running_node_pid(paths_);
  ASSERT_TRUE(running.has_value());
  EXPECT_FALSE(running->has_value());
}

TEST_F(ApiCommandsTest, StopFallsBackToSignalsWhenShutdownFails) {
  start_fake_node_with_api();
  api_.shutdown_result = grpc::Status(grpc::StatusCode::INTERNAL, "broken");
  const auto pid = node_->pid();
  auto run = run_command(command_stop, with_data({"-timeout", "10"}));
  EXPECT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_EQ(api_.shutdown_calls.load(), 1);
  EXPECT_TRUE(contains(run.out, "INTERNAL: broken")) << run.out;
  EXPECT_TRUE(contains(run.out, "SIGTERM")) << run.out;
  EXPECT_TRUE(run.out.ends_with("Node stopped\n")) << run.out;
  // One "Stopping" line, not one per path.
  EXPECT_EQ(run.out.find("Stopping node"), run.out.rfind("Stopping node")) << run.out;
  EXPECT_FALSE(daemon::process_exists(pid));
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
}

TEST_F(ApiCommandsTest, StopUsesSignalsWhenTheNodeOutlivesItsShutdown) {
  start_fake_node_with_api();  // Shutdown answers OK, but the fake node keeps running
  const auto pid = node_->pid();
  auto run = run_command(command_stop, with_data({"-timeout", "0.3"}));
  EXPECT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_EQ(api_.shutdown_calls.load(), 1);
  EXPECT_TRUE(contains(run.out, "still running after 0.3s; sending SIGTERM")) << run.out;
  // SIGTERM ends the fake node at once, but the remaining time is zero: either outcome is fine.
  EXPECT_TRUE(run.out.ends_with("Node stopped\n") ||
              run.out.ends_with("Node killed (SIGKILL) after the timeout\n"))
      << run.out;
  EXPECT_FALSE(daemon::process_exists(pid));
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
}

TEST_F(ApiCommandsTest, StopWithoutAnApiUsesSignals) {
  start_fake_node("");
  const auto pid = node_->pid();
  auto run = run_command(command_stop, with_data({"-timeout", "10"}));
  EXPECT_EQ(run.rc, kExitOk) << run.err;
  EXPECT_TRUE(contains(run.out, "no endpoint")) << run.out;
  EXPECT_TRUE(run.out.ends_with("Node stopped\n")) << run.out;
  EXPECT_FALSE(daemon::process_exists(pid));
}

}  // namespace
}  // namespace an::app
