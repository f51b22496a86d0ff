// The p2pd control protocol server: accept loops, one coroutine per control connection, the
// request handlers and the byte pipes between control sockets and libp2p streams. Network
// thread only (see p2pd_server.h).
#include "node/p2pd_server.h"

#include <array>
#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <string_view>
#include <variant>

#include "daemon/platform.h"
#include "p2p/crypto/keys.h"
#include "p2p/multiformats/varint.h"
#include "p2p/net/async.h"
#include "p2p/net/byte_stream.h"
#include "p2pd.pb.h"

namespace an::node {
namespace {

namespace pb = ::p2pd::pb;
using p2p::Bytes;
using p2p::ByteView;
using p2p::net::ByteStream;
using p2p::net::use_tuple;

// multiaddr code of /unix (a path protocol: the rest of the address is the path).
constexpr std::uint64_t kProtocolUnix = 400;
constexpr std::size_t kPipeBufferSize = 64 * 1024;
constexpr auto kHandlerConnectTimeout = std::chrono::seconds(10);
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

// A connected local socket (TCP or unix) as a ByteStream.
template <class Socket>
class SocketStream final : public ByteStream {
 public:
  explicit SocketStream(Socket socket) : socket_(std::move(socket)) {}

  asio::awaitable<Expected<void>> write_all(ByteView bytes) override {
    auto [ec, written] =
        co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), use_tuple);
    (void)written;
    if (ec) co_return fail("control socket: " + ec.message(), ec);
    co_return Expected<void>{};
  }
  asio::awaitable<Expected<void>> close_write() override {
    std::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
    if (ec) co_return fail("control socket: " + ec.message(), ec);
    co_return Expected<void>{};
  }
  void abort() override {
    std::error_code ignored;
    socket_.close(ignored);
  }

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override {
    auto [ec, count] =
        co_await socket_.async_read_some(asio::buffer(buffer.data(), buffer.size()), use_tuple);
    if (ec == asio::error::eof) co_return std::size_t{0};
    if (ec) co_return fail("control socket: " + ec.message(), ec);
    co_return count;
  }

 private:
  Socket socket_;
};

using TcpStream = SocketStream<asio::ip::tcp::socket>;
using UnixStream = SocketStream<asio::local::stream_protocol::socket>;

// A control or handler address: TCP or a unix socket path.
struct LocalAddress {
  bool unix_socket = false;
  std::string path;
  asio::ip::tcp::endpoint endpoint;
};

// js-multiaddr writes a /unix path percent-encoded ("/unix/%2Ftmp%2Fd.sock"); go writes it as is.
std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      auto hex = std::string(text.substr(i + 1, 2));
      char* end = nullptr;
      long value = std::strtol(hex.c_str(), &end, 16);
      if (end == hex.c_str() + 2) {
        out.push_back(static_cast<char>(value));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

Expected<LocalAddress> unix_address(std::string_view path_value) {
  LocalAddress address;
  address.unix_socket = true;
  address.path = percent_decode(path_value);
  if (address.path.empty() || address.path == "/") return fail("/unix address without a path");
  if (address.path.find('\0') != std::string::npos) return fail("invalid /unix path");
  if (address.path.front() != '/') address.path.insert(address.path.begin(), '/');
  // sun_path holds 108 bytes with the terminating NUL on Linux, 104 on macOS; 100 fits both.
  if (address.path.size() > 100) return fail("unix socket path too long: " + address.path);
  return address;
}

Expected<LocalAddress> parse_local_address(std::string_view text) {
  if (text.rfind("/unix/", 0) == 0) return unix_address(text.substr(5));
  auto multiaddr = p2p::Multiaddr::parse(text);
  if (!multiaddr)
    return fail("invalid address \"" + std::string(text) + "\": " + multiaddr.error().message);
  const auto& parts = multiaddr->components();
  if (parts.size() != 2 ||
      (parts[0].code != p2p::kProtocolIp4 && parts[0].code != p2p::kProtocolIp6) ||
      parts[1].code != p2p::kProtocolTcp) {
    return fail("unsupported address \"" + std::string(text) +
                "\" (expected /ip4|ip6/ADDR/tcp/PORT or /unix/PATH)");
  }
  std::error_code ec;
  auto ip = asio::ip::make_address(parts[0].value, ec);
  if (ec) return fail("invalid IP address in \"" + std::string(text) + "\"");
  unsigned long port = std::strtoul(parts[1].value.c_str(), nullptr, 10);
  if (port > 65535) return fail("invalid port in \"" + std::string(text) + "\"");
  LocalAddress address;
  address.endpoint = asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(port));
  return address;
}

// A handler address as clients send it: a binary multiaddr, or (older clients) a text
// multiaddr or a bare unix socket path.
Expected<LocalAddress> parse_handler_address(const std::string& field) {
  if (field.empty()) return fail("stream handler address is empty");
  if (field.front() == '/') {
    if (auto text = parse_local_address(field)) return text;
    return unix_address(field);
  }
  ByteView bytes(reinterpret_cast<const std::uint8_t*>(field.data()), field.size());
  ByteView rest = bytes;
  auto code = p2p::read_varint(rest);
  if (!code) return fail("invalid stream handler address");
  if (*code == kProtocolUnix) {
    auto length = p2p::read_varint(rest);
    if (!length || *length != rest.size()) return fail("invalid /unix stream handler address");
    return unix_address(std::string_view(reinterpret_cast<const char*>(rest.data()), rest.size()));
  }
  auto multiaddr = p2p::Multiaddr::from_bytes(bytes);
  if (!multiaddr) return fail("invalid stream handler address: " + multiaddr.error().message);
  return parse_local_address(multiaddr->to_string());
}

std::string as_string(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

Bytes as_bytes(const std::string& text) {
  return Bytes(text.begin(), text.end());
}

std::vector<std::string> protocol_list(
    const google::protobuf::RepeatedPtrField<std::string>& field) {
  return std::vector<std::string>(field.begin(), field.end());
}

Expected<p2p::PeerId> parse_peer_field(const std::string& field) {
  if (field.empty()) return fail("peer ID is missing");
  auto peer = p2p::PeerId::from_multihash(as_bytes(field));
  if (!peer) return fail("invalid peer ID: " + peer.error().message);
  return peer;
}

// The multihash of a binary CID: CIDv0 is a bare sha2-256 multihash; CIDv1 is
// <version 1><codec><multihash>.
Expected<Bytes> cid_multihash(const std::string& field) {
  if (field.empty()) return fail("CID is missing");
  Bytes bytes = as_bytes(field);
  if (bytes.size() == 34 && bytes[0] == 0x12 && bytes[1] == 0x20) return bytes;
  ByteView rest(bytes);
  auto version = p2p::read_varint(rest);
  if (!version || *version != 1) return fail("invalid CID (expected CIDv0 or CIDv1 bytes)");
  auto codec = p2p::read_varint(rest);
  if (!codec || rest.empty()) return fail("invalid CID");
  return Bytes(rest.begin(), rest.end());
}

std::chrono::steady_clock::time_point deadline_from(bool has_timeout, std::int64_t seconds) {
  auto timeout =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(kP2pdDefaultTimeout);
  // Bounded so that a huge value cannot overflow the clock.
  if (has_timeout && seconds > 0 && seconds < 24 * 3600) timeout = std::chrono::seconds(seconds);
  return std::chrono::steady_clock::now() + timeout;
}

std::chrono::steady_clock::duration remaining(std::chrono::steady_clock::time_point deadline) {
  auto left = deadline - std::chrono::steady_clock::now();
  return left > std::chrono::steady_clock::duration::zero() ? left
                                                            : std::chrono::steady_clock::duration{};
}

pb::Response ok_response() {
  pb::Response response;
  response.set_type(pb::Response::OK);
  return response;
}

pb::Response error_response(const std::string& message) {
  pb::Response response;
  response.set_type(pb::Response::ERROR);
  response.mutable_error()->set_msg(message);
  return response;
}

void fill_peer_info(pb::PeerInfo& info, const p2p::PeerId& peer,
                    const std::vector<p2p::Multiaddr>& addresses) {
  info.set_id(as_string(peer.bytes()));
  for (const auto& address : addresses)
    info.add_addrs(as_string(address.to_bytes()));
}

Bytes delimit(const google::protobuf::MessageLite& message) {
  std::string body = message.SerializeAsString();
  Bytes framed = p2p::encode_varint(body.size());
  framed.insert(framed.end(), body.begin(), body.end());
  return framed;
}

asio::awaitable<Expected<void>> write_message(ByteStream& stream,
                                              const google::protobuf::MessageLite& message) {
  Bytes framed = delimit(message);
  co_return co_await stream.write_all(framed);
}

// One varint-delimited message. nullopt: the peer closed the connection between messages.
struct TooLarge {
  std::uint64_t size = 0;
};
using ReadOutcome = std::variant<std::optional<Bytes>, TooLarge>;

asio::awaitable<Expected<ReadOutcome>> read_message(ByteStream& stream) {
  Bytes prefix;
  std::uint64_t length = 0;
  for (;;) {
    std::uint8_t byte = 0;
    // Byte by byte: nothing past the message may be consumed, as the connection may become a
    // raw stream pipe right after it.
    auto count = co_await stream.read_some(std::span<std::uint8_t>(&byte, 1));
    if (!count) co_return tl::unexpected(count.error());
    if (*count == 0) {
      if (prefix.empty()) co_return ReadOutcome{std::optional<Bytes>{}};
      co_return fail("connection closed inside a length prefix");
    }
    prefix.push_back(byte);
    if ((byte & 0x80) == 0) break;
    if (prefix.size() >= 10) co_return fail("invalid length prefix");
  }
  auto decoded = p2p::decode_varint(prefix);
  if (!decoded) co_return fail("invalid length prefix: " + decoded.error().message);
  length = *decoded;
  if (length > kP2pdMaxMessageSize) co_return ReadOutcome{TooLarge{length}};
  Bytes body(static_cast<std::size_t>(length));
  if (!body.empty()) {
    if (auto read = co_await p2p::net::read_exact(stream, body); !read) {
      co_return tl::unexpected(read.error());
    }
  }
  co_return ReadOutcome{std::optional<Bytes>{std::move(body)}};
}

// Copies `from` to `to` until EOF, which is passed on as a half-close. An error on either side
// aborts both, which also ends the pump of the other direction.
asio::awaitable<void> pump(std::shared_ptr<ByteStream> from, std::shared_ptr<ByteStream> to) {
  Bytes buffer(kPipeBufferSize);
  for (;;) {
    auto count = co_await from->read_some(buffer);
    if (!count) break;
    if (*count == 0) {
      co_await to->close_write();
      co_return;
    }
    auto written = co_await to->write_all(ByteView(buffer.data(), *count));
    if (!written) break;
  }
  from->abort();
  to->abort();
}

asio::awaitable<void> pipe_both_ways(std::shared_ptr<ByteStream> local,
                                     std::shared_ptr<p2p::net::Stream> remote) {
  using namespace asio::experimental::awaitable_operators;
  co_await (pump(local, remote) && pump(remote, local));
  // Both directions saw EOF: the libp2p stream is closed both ways; the socket is closed here.
  local->abort();
}

// The messages of one SUBSCRIBE connection not yet written to its client, oldest first.
struct SubscriptionQueue {
  explicit SubscriptionQueue(const asio::any_io_executor& executor) : ready(executor) {}
  std::deque<Bytes> frames;
  std::size_t bytes = 0;
  bool closed = false;
  p2p::net::Signal ready;

  // Drops the message when the client is that far behind (see kP2pdSubscriptionQueueMessages).
  void push(Bytes frame) {
    if (closed || frames.size() >= kP2pdSubscriptionQueueMessages ||
        bytes + frame.size() > kP2pdSubscriptionQueueBytes) {
      return;
    }
    bytes += frame.size();
    frames.push_back(std::move(frame));
    ready.notify();
  }
};

// PUBSUB.md's PSMessage, with the author's signature (checked by the router: StrictSign) and key
// (when not inlined in the author's ID) as go's daemon passes them on.
Bytes ps_message_frame(const p2p::pubsub::ReceivedMessage& message) {
  pb::PSMessage ps;
  ps.set_from(as_string(message.author.bytes()));
  ps.set_data(as_string(message.data));
  ps.set_seqno(as_string(message.seqno));
  ps.add_topicids(message.topic);
  ps.set_signature(as_string(message.signature));
  if (!message.key.empty()) ps.set_key(as_string(message.key));
  return delimit(ps);
}

asio::awaitable<void> write_subscription(std::shared_ptr<ByteStream> client,
                                         std::shared_ptr<SubscriptionQueue> queue) {
  for (;;) {
    while (!queue->frames.empty()) {
      Bytes frame = std::move(queue->frames.front());
      queue->frames.pop_front();
      queue->bytes -= frame.size();
      if (auto written = co_await client->write_all(frame); !written) {
        client->abort();  // ends the reading side too
        co_return;
      }
    }
    if (queue->closed) co_return;
    co_await queue->ready.wait();
  }
}

// Reads until the client closes its side; what it sends meanwhile is ignored, as by go's daemon.
asio::awaitable<void> read_until_closed(std::shared_ptr<ByteStream> client) {
  std::array<std::uint8_t, 512> ignored{};
  for (;;) {
    auto count = co_await client->read_some(ignored);
    if (!count || *count == 0) co_return;
  }
}

}  // namespace

struct P2pdServer::State : std::enable_shared_from_this<P2pdServer::State> {
  State(p2p::net::Host& host_ref, P2pdServerConfig server_config)
      : host(host_ref), config(std::move(server_config)) {}

  p2p::net::Host& host;
  P2pdServerConfig config;
  std::unique_ptr<asio::ip::tcp::acceptor> tcp_acceptor;
  std::unique_ptr<asio::local::stream_protocol::acceptor> unix_acceptor;
  std::string unix_path;
  std::string listen_text;
  // Control connections and handler connections, aborted at stop.
  std::map<std::uint64_t, std::weak_ptr<ByteStream>> sockets;
  std::uint64_t next_socket = 0;
  std::size_t control_clients = 0;
  // Registered stream handlers: protocol → the client's handler address.
  std::map<std::string, LocalAddress> handlers;
  bool stopped = false;

  std::uint64_t track(const std::shared_ptr<ByteStream>& socket) {
    sockets[next_socket] = socket;
    return next_socket++;
  }

  enum class After { kContinue, kClose };

  // `self` keeps the state alive from the spawn on: a coroutine starts only when first resumed,
  // and the server may be destroyed before that.
  asio::awaitable<void> accept_tcp(std::shared_ptr<State> self);
  asio::awaitable<void> accept_unix(std::shared_ptr<State> self);
  void adopt(std::shared_ptr<ByteStream> client);
  asio::awaitable<void> serve_client(std::shared_ptr<State> self,
                                     std::shared_ptr<ByteStream> client);
  asio::awaitable<After> handle(std::shared_ptr<ByteStream> client, const pb::Request& request);
  asio::awaitable<Expected<void>> ensure_connected(const p2p::PeerId& peer,
                                                   std::vector<p2p::Multiaddr> addresses,
                                                   std::chrono::steady_clock::time_point deadline);
  asio::awaitable<pb::Response> connect(const pb::Request& request);
  asio::awaitable<After> stream_open(std::shared_ptr<ByteStream> client,
                                     const pb::Request& request);
  pb::Response stream_handler(const pb::Request& request);
  asio::awaitable<void> serve_inbound(std::shared_ptr<p2p::net::Stream> stream);
  asio::awaitable<Expected<std::shared_ptr<ByteStream>>> dial_handler(LocalAddress address);
  asio::awaitable<After> dht(std::shared_ptr<ByteStream> client, const pb::Request& request);
  pb::Response connmanager(const pb::Request& request);
  asio::awaitable<After> pubsub(std::shared_ptr<ByteStream> client, const pb::Request& request);
  asio::awaitable<After> pubsub_subscribe(std::shared_ptr<ByteStream> client, std::string topic);
};

void P2pdServer::State::adopt(std::shared_ptr<ByteStream> client) {
  if (stopped || control_clients >= kP2pdMaxClients) {
    client->abort();
    return;
  }
  ++control_clients;  // counted here: accepts can outrun the coroutines' start
  asio::co_spawn(host.io_context(), serve_client(shared_from_this(), std::move(client)),
                 p2p::net::report_exception);
}

asio::awaitable<void> P2pdServer::State::accept_tcp([[maybe_unused]] std::shared_ptr<State> self) {
  while (!stopped) {
    auto [ec, socket] = co_await tcp_acceptor->async_accept(use_tuple);
    if (stopped) co_return;
    if (ec) {
      // Out of descriptors and the like: wait instead of spinning.
      asio::steady_timer pause(host.io_context(), kAcceptRetryDelay);
      co_await pause.async_wait(use_tuple);
      continue;
    }
    adopt(std::make_shared<TcpStream>(std::move(socket)));
  }
}

asio::awaitable<void> P2pdServer::State::accept_unix([[maybe_unused]] std::shared_ptr<State> self) {
  while (!stopped) {
    auto [ec, socket] = co_await unix_acceptor->async_accept(use_tuple);
    if (stopped) co_return;
    if (ec) {
      asio::steady_timer pause(host.io_context(), kAcceptRetryDelay);
      co_await pause.async_wait(use_tuple);
      continue;
    }
    adopt(std::make_shared<UnixStream>(std::move(socket)));
  }
}

asio::awaitable<void> P2pdServer::State::serve_client([[maybe_unused]] std::shared_ptr<State> self,
                                                      std::shared_ptr<ByteStream> client) {
  auto id = track(client);
  for (;;) {
    auto message = co_await read_message(*client);
    if (stopped || !message) break;
    if (auto* too_large = std::get_if<TooLarge>(&*message)) {
      auto error = error_response("request of " + std::to_string(too_large->size) +
                                  " bytes is larger than the limit of " +
                                  std::to_string(kP2pdMaxMessageSize));
      co_await write_message(*client, error);
      break;
    }
    auto& body = std::get<std::optional<Bytes>>(*message);
    if (!body) break;  // the client is done
    pb::Request request;
    if (!request.ParsePartialFromArray(body->data(), static_cast<int>(body->size()))) {
      auto error = error_response("malformed request");
      co_await write_message(*client, error);
      break;
    }
    if (!request.has_type()) {
      auto error = error_response("unknown request type");
      if (auto written = co_await write_message(*client, error); !written) break;
      continue;
    }
    auto after = co_await handle(client, request);
    if (after == After::kClose || stopped) break;
  }
  --control_clients;
  sockets.erase(id);
  client->abort();
}

asio::awaitable<P2pdServer::State::After> P2pdServer::State::handle(
    std::shared_ptr<ByteStream> client, const pb::Request& request) {
  pb::Response response;
  switch (request.type()) {
    case pb::Request::IDENTIFY: {
      response = ok_response();
      auto* identify = response.mutable_identify();
      identify->set_id(as_string(host.peer_id().bytes()));
      for (const auto& address : host.advertised_addresses())
        identify->add_addrs(as_string(address.to_bytes()));
      break;
    }
    case pb::Request::CONNECT:
      response = co_await connect(request);
      break;
    case pb::Request::DISCONNECT: {
      auto peer = parse_peer_field(request.disconnect().peer());
      if (!peer) {
        response = error_response(peer.error().message);
        break;
      }
      host.disconnect(*peer);
      response = ok_response();
      break;
    }
    case pb::Request::LIST_PEERS: {
      response = ok_response();
      for (const auto& peer : host.connected_peers()) {
        std::vector<p2p::Multiaddr> addresses;
        if (auto connection = host.connection_to(peer)) {
          addresses.push_back(connection->remote_address());
        }
        fill_peer_info(*response.add_peers(), peer, addresses);
      }
      break;
    }
    case pb::Request::STREAM_OPEN:
      co_return co_await stream_open(client, request);
    case pb::Request::STREAM_HANDLER:
      response = stream_handler(request);
      break;
    case pb::Request::DHT:
      co_return co_await dht(client, request);
    case pb::Request::CONNMANAGER:
      response = connmanager(request);
      break;
    case pb::Request::PUBSUB:
      co_return co_await pubsub(client, request);
    case pb::Request::PEERSTORE:
      response = error_response("peerstore requests are not supported yet");
      break;
    default:
      response = error_response("unknown request type");
      break;
  }
  auto written = co_await write_message(*client, response);
  co_return written ? After::kContinue : After::kClose;
}

asio::awaitable<Expected<void>> P2pdServer::State::ensure_connected(
    const p2p::PeerId& peer, std::vector<p2p::Multiaddr> addresses,
    std::chrono::steady_clock::time_point deadline) {
  if (peer == host.peer_id()) co_return fail("cannot connect to this node itself");
  if (host.connection_to(peer)) co_return Expected<void>{};
  if (addresses.empty()) {
    if (const auto* info = host.peer_info(peer)) addresses = info->addresses;
  }
  std::string last_error = "no address known for the peer";
  for (const auto& address : addresses) {
    auto full = address.peer_id_component() ? address : address.with_peer_id(peer);
    auto connected = co_await p2p::net::with_timeout(host.connect(full), remaining(deadline),
                                                     "connect to " + full.to_string());
    if (connected) co_return Expected<void>{};
    last_error = connected.error().message;
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  if (config.dht != nullptr && std::chrono::steady_clock::now() < deadline) {
    // The lookup connects to the peer once it is found.
    auto found = co_await config.dht->find_peer(peer, deadline);
    if (found && host.connection_to(peer)) co_return Expected<void>{};
    if (found) {
      for (const auto& address : found->addresses) {
        auto full = address.with_peer_id(peer);
        auto connected = co_await p2p::net::with_timeout(host.connect(full), remaining(deadline),
                                                         "connect to " + full.to_string());
        if (connected) co_return Expected<void>{};
        last_error = connected.error().message;
      }
    } else {
      last_error = found.error().message;
    }
  }
  co_return fail("cannot connect to " + peer.to_string() + ": " + last_error);
}

asio::awaitable<pb::Response> P2pdServer::State::connect(const pb::Request& request) {
  if (!request.has_connect()) co_return error_response("CONNECT without a connect request");
  const auto& connect_request = request.connect();
  auto peer = parse_peer_field(connect_request.peer());
  if (!peer) co_return error_response(peer.error().message);
  std::vector<p2p::Multiaddr> addresses;
  for (const auto& bytes : connect_request.addrs()) {
    auto address = p2p::Multiaddr::from_bytes(as_bytes(bytes));
    if (!address) co_return error_response("invalid address: " + address.error().message);
    addresses.push_back(std::move(*address));
  }
  auto deadline = deadline_from(connect_request.has_timeout(), connect_request.timeout());
  auto connected = co_await ensure_connected(*peer, std::move(addresses), deadline);
  if (!connected) co_return error_response(connected.error().message);
  co_return ok_response();
}

asio::awaitable<P2pdServer::State::After> P2pdServer::State::stream_open(
    std::shared_ptr<ByteStream> client, const pb::Request& request) {
  auto refuse = [&](const std::string& message) -> asio::awaitable<After> {
    auto error = error_response(message);
    auto written = co_await write_message(*client, error);
    co_return written ? After::kContinue : After::kClose;
  };
  if (!request.has_streamopen()) co_return co_await refuse("STREAM_OPEN without a request");
  const auto& open = request.streamopen();
  auto peer = parse_peer_field(open.peer());
  if (!peer) co_return co_await refuse(peer.error().message);
  if (open.proto().empty()) co_return co_await refuse("STREAM_OPEN without protocols");
  auto protocols = protocol_list(open.proto());
  auto deadline = deadline_from(open.has_timeout(), open.timeout());
  auto connected = co_await ensure_connected(*peer, {}, deadline);
  if (!connected) co_return co_await refuse(connected.error().message);
  auto stream = co_await p2p::net::with_timeout(host.new_stream(*peer, std::move(protocols)),
                                                remaining(deadline), "open stream");
  if (!stream) co_return co_await refuse(stream.error().message);
  auto response = ok_response();
  auto* info = response.mutable_streaminfo();
  info->set_peer(as_string(peer->bytes()));
  info->set_addr(as_string((*stream)->connection().remote_address().to_bytes()));
  info->set_proto((*stream)->protocol());
  if (auto written = co_await write_message(*client, response); !written) {
    (*stream)->abort();
    co_return After::kClose;
  }
  co_await pipe_both_ways(client, *stream);
  co_return After::kClose;
}

pb::Response P2pdServer::State::stream_handler(const pb::Request& request) {
  if (!request.has_streamhandler()) return error_response("STREAM_HANDLER without a request");
  const auto& handler = request.streamhandler();
  auto address = parse_handler_address(handler.addr());
  if (!address) return error_response(address.error().message);
  if (handler.proto().empty()) return error_response("STREAM_HANDLER without protocols");
  std::weak_ptr<State> weak = weak_from_this();
  for (const auto& protocol : handler.proto()) {
    if (protocol.empty()) return error_response("empty protocol name");
  }
  for (const auto& protocol : handler.proto()) {
    // A later registration of the same protocol replaces the earlier one (CONTROL.md).
    handlers[protocol] = *address;
    host.set_handler(protocol,
                     [weak](std::shared_ptr<p2p::net::Stream> stream) -> asio::awaitable<void> {
                       auto state = weak.lock();
                       if (!state || state->stopped) {
                         stream->abort();
                         co_return;
                       }
                       co_await state->serve_inbound(std::move(stream));
                     });
  }
  return ok_response();
}

asio::awaitable<Expected<std::shared_ptr<ByteStream>>> P2pdServer::State::dial_handler(
    LocalAddress address) {
  auto executor = co_await asio::this_coro::executor;
  if (address.unix_socket) {
    asio::local::stream_protocol::socket socket(executor);
    auto [ec] = co_await socket.async_connect(asio::local::stream_protocol::endpoint(address.path),
                                              use_tuple);
    if (ec) co_return fail("stream handler " + address.path + ": " + ec.message(), ec);
    co_return std::shared_ptr<ByteStream>(std::make_shared<UnixStream>(std::move(socket)));
  }
  asio::ip::tcp::socket socket(executor);
  auto [ec] = co_await socket.async_connect(address.endpoint, use_tuple);
  if (ec) co_return fail("stream handler: " + ec.message(), ec);
  co_return std::shared_ptr<ByteStream>(std::make_shared<TcpStream>(std::move(socket)));
}

asio::awaitable<void> P2pdServer::State::serve_inbound(std::shared_ptr<p2p::net::Stream> stream) {
  auto self = shared_from_this();
  auto found = handlers.find(stream->protocol());
  if (found == handlers.end()) {
    stream->abort();
    co_return;
  }
  auto client = co_await p2p::net::with_timeout(dial_handler(found->second), kHandlerConnectTimeout,
                                                "stream handler");
  if (!client || stopped) {
    if (client) (*client)->abort();
    stream->abort();
    co_return;
  }
  auto id = track(*client);
  pb::StreamInfo info;
  info.set_peer(as_string(stream->remote_peer().bytes()));
  info.set_addr(as_string(stream->connection().remote_address().to_bytes()));
  info.set_proto(stream->protocol());
  if (auto written = co_await write_message(**client, info); written) {
    co_await pipe_both_ways(*client, stream);
  } else {
    stream->abort();
  }
  sockets.erase(id);
  (*client)->abort();
}

asio::awaitable<P2pdServer::State::After> P2pdServer::State::dht(std::shared_ptr<ByteStream> client,
                                                                 const pb::Request& request) {
  auto send = [&](const google::protobuf::MessageLite& message) -> asio::awaitable<bool> {
    auto written = co_await write_message(*client, message);
    co_return written.has_value();
  };
  auto refuse = [&](const std::string& message) -> asio::awaitable<After> {
    auto error = error_response(message);
    auto written = co_await write_message(*client, error);
    co_return written ? After::kContinue : After::kClose;
  };
  // The streaming form of DHT.md: a Response carrying BEGIN, bare DHTResponse VALUEs, END.
  auto begin = [&]() -> asio::awaitable<bool> {
    auto response = ok_response();
    response.mutable_dht()->set_type(pb::DHTResponse::BEGIN);
    co_return co_await send(response);
  };
  auto end = [&]() -> asio::awaitable<After> {
    pb::DHTResponse last;
    last.set_type(pb::DHTResponse::END);
    co_return co_await send(last) ? After::kContinue : After::kClose;
  };
  auto single_value = [&](const Bytes& value) -> asio::awaitable<After> {
    auto response = ok_response();
    response.mutable_dht()->set_type(pb::DHTResponse::VALUE);
    response.mutable_dht()->set_value(as_string(value));
    co_return co_await send(response) ? After::kContinue : After::kClose;
  };

  if (!request.has_dht()) co_return co_await refuse("DHT without a DHT request");
  if (config.dht == nullptr) {
    co_return co_await refuse("the DHT is not enabled (start with -dht, -dhtServer or -dhtClient)");
  }
  auto& dht_ref = *config.dht;
  const auto& dht_request = request.dht();
  auto deadline = deadline_from(dht_request.has_timeout(), dht_request.timeout());
  switch (dht_request.type()) {
    case pb::DHTRequest::FIND_PEER: {
      auto peer = parse_peer_field(dht_request.peer());
      if (!peer) co_return co_await refuse(peer.error().message);
      auto found = co_await dht_ref.find_peer(*peer, deadline);
      if (!found) co_return co_await refuse(found.error().message);
      auto response = ok_response();
      response.mutable_dht()->set_type(pb::DHTResponse::VALUE);
      fill_peer_info(*response.mutable_dht()->mutable_peer(), *peer, found->addresses);
      co_return co_await send(response) ? After::kContinue : After::kClose;
    }
    case pb::DHTRequest::FIND_PEERS_CONNECTED_TO_PEER:
      co_return co_await refuse("FIND_PEERS_CONNECTED_TO_PEER is not supported yet");
    case pb::DHTRequest::FIND_PROVIDERS: {
      auto key = cid_multihash(dht_request.cid());
      if (!key) co_return co_await refuse(key.error().message);
      std::size_t count = dht_request.count() > 0 ? static_cast<std::size_t>(dht_request.count())
                                                  : kP2pdDefaultProviderCount;
      auto providers = co_await dht_ref.find_providers(std::move(*key), count, deadline);
      if (!providers) co_return co_await refuse(providers.error().message);
      if (!co_await begin()) co_return After::kClose;
      for (const auto& provider : *providers) {
        pb::DHTResponse value;
        value.set_type(pb::DHTResponse::VALUE);
        fill_peer_info(*value.mutable_peer(), provider.id, provider.addresses);
        if (!co_await send(value)) co_return After::kClose;
      }
      co_return co_await end();
    }
    case pb::DHTRequest::GET_CLOSEST_PEERS: {
      if (dht_request.key().empty()) co_return co_await refuse("key is missing");
      auto outcome = co_await dht_ref.closest_peers(as_bytes(dht_request.key()), deadline);
      if (!outcome) co_return co_await refuse(outcome.error().message);
      if (!co_await begin()) co_return After::kClose;
      for (const auto& peer : outcome->closest) {
        pb::DHTResponse value;
        value.set_type(pb::DHTResponse::VALUE);
        value.set_value(as_string(peer.bytes()));
        if (!co_await send(value)) co_return After::kClose;
      }
      co_return co_await end();
    }
    case pb::DHTRequest::GET_PUBLIC_KEY: {
      auto peer = parse_peer_field(dht_request.peer());
      if (!peer) co_return co_await refuse(peer.error().message);
      // An Ed25519 peer ID carries its key: no lookup needed, as go's peerstore answers.
      if (peer->has_inline_public_key()) {
        if (auto inline_key = peer->ed25519_public_key()) {
          co_return co_await single_value(p2p::encode_public_key(*inline_key));
        }
      }
      auto key = co_await dht_ref.get_public_key(*peer, deadline);
      if (!key) co_return co_await refuse(key.error().message);
      co_return co_await single_value(*key);
    }
    case pb::DHTRequest::GET_VALUE: {
      if (dht_request.key().empty()) co_return co_await refuse("key is missing");
      auto value = co_await dht_ref.get_value(as_bytes(dht_request.key()), deadline);
      if (!value) co_return co_await refuse(value.error().message);
      co_return co_await single_value(*value);
    }
    case pb::DHTRequest::SEARCH_VALUE: {
      if (dht_request.key().empty()) co_return co_await refuse("key is missing");
      // The best record only: our lookups select before they answer. Nothing found is an
      // empty stream, as in go's daemon.
      auto value = co_await dht_ref.get_value(as_bytes(dht_request.key()), deadline);
      if (!co_await begin()) co_return After::kClose;
      if (value) {
        pb::DHTResponse found;
        found.set_type(pb::DHTResponse::VALUE);
        found.set_value(as_string(*value));
        if (!co_await send(found)) co_return After::kClose;
      }
      co_return co_await end();
    }
    case pb::DHTRequest::PUT_VALUE: {
      if (dht_request.key().empty()) co_return co_await refuse("key is missing");
      auto stored = co_await dht_ref.put_value(as_bytes(dht_request.key()),
                                               as_bytes(dht_request.value()), deadline);
      if (!stored) co_return co_await refuse(stored.error().message);
      auto response = ok_response();
      co_return co_await send(response) ? After::kContinue : After::kClose;
    }
    case pb::DHTRequest::PROVIDE: {
      auto key = cid_multihash(dht_request.cid());
      if (!key) co_return co_await refuse(key.error().message);
      auto provided = co_await dht_ref.provide(std::move(*key), deadline);
      if (!provided) co_return co_await refuse(provided.error().message);
      auto response = ok_response();
      co_return co_await send(response) ? After::kContinue : After::kClose;
    }
    default:
      co_return co_await refuse("unknown DHT request type");
  }
}

pb::Response P2pdServer::State::connmanager(const pb::Request& request) {
  if (!request.has_connmanager()) return error_response("CONNMANAGER without a request");
  if (config.connection_manager == nullptr) {
    return error_response("the connection manager is not enabled");
  }
  auto& manager = *config.connection_manager;
  const auto& connmgr_request = request.connmanager();
  switch (connmgr_request.type()) {
    case pb::ConnManagerRequest::TAG_PEER:
    case pb::ConnManagerRequest::UNTAG_PEER: {
      auto peer = parse_peer_field(connmgr_request.peer());
      if (!peer) return error_response(peer.error().message);
      if (connmgr_request.tag().empty()) return error_response("tag is missing");
      if (connmgr_request.type() == pb::ConnManagerRequest::TAG_PEER) {
        manager.set_tag(*peer, connmgr_request.tag(), connmgr_request.weight());
      } else {
        manager.remove_tag(*peer, connmgr_request.tag());
      }
      return ok_response();
    }
    case pb::ConnManagerRequest::TRIM:
      for (const auto& peer : manager.select_for_trim(std::chrono::steady_clock::now()))
        host.disconnect(peer);
      return ok_response();
    default:
      return error_response("unknown CONNMANAGER request type");
  }
}

asio::awaitable<P2pdServer::State::After> P2pdServer::State::pubsub(
    std::shared_ptr<ByteStream> client, const pb::Request& request) {
  auto answer = [&](const pb::Response& response) -> asio::awaitable<After> {
    auto written = co_await write_message(*client, response);
    co_return written ? After::kContinue : After::kClose;
  };
  // The error texts are go-libp2p-daemon's.
  if (config.pubsub == nullptr) {
    const auto refused = error_response("PubSub not enabled");
    co_return co_await answer(refused);
  }
  if (!request.has_pubsub()) {
    const auto refused = error_response("Malformed request; missing parameters");
    co_return co_await answer(refused);
  }
  const auto& ps_request = request.pubsub();
  auto& service = *config.pubsub;
  const bool needs_topic = ps_request.type() != pb::PSRequest::GET_TOPICS;
  if (needs_topic && !ps_request.has_topic()) {
    const auto refused = error_response("Malformed request; missing topic parameter");
    co_return co_await answer(refused);
  }
  switch (ps_request.type()) {
    case pb::PSRequest::GET_TOPICS: {
      // The PSResponse is there even when empty: js daemon clients require it.
      auto response = ok_response();
      auto* topics = response.mutable_pubsub();
      for (const auto& topic : service.topics())
        topics->add_topics(topic);
      co_return co_await answer(response);
    }
    case pb::PSRequest::LIST_PEERS: {
      // An empty topic lists every peer that speaks pubsub with us, as in go. The js daemon
      // client takes a response without `topics` as invalid; go's daemon leaves it empty, which
      // the client reads as an empty list, so the topic is not echoed.
      auto response = ok_response();
      auto* peers = response.mutable_pubsub();
      for (const auto& peer : service.topic_peers(ps_request.topic()))
        peers->add_peerids(as_string(peer.bytes()));
      co_return co_await answer(response);
    }
    case pb::PSRequest::PUBLISH: {
      auto published = service.publish(ps_request.topic(), as_bytes(ps_request.data()));
      const auto response = published ? ok_response() : error_response(published.error().message);
      co_return co_await answer(response);
    }
    case pb::PSRequest::SUBSCRIBE:
      co_return co_await pubsub_subscribe(std::move(client), ps_request.topic());
    default: {
      const auto refused = error_response("Unexpected request");
      co_return co_await answer(refused);
    }
  }
}

// After the OK the connection carries only PSMessages, until the client closes it.
asio::awaitable<P2pdServer::State::After> P2pdServer::State::pubsub_subscribe(
    std::shared_ptr<ByteStream> client, std::string topic) {
  auto queue = std::make_shared<SubscriptionQueue>(co_await asio::this_coro::executor);
  auto subscription = config.pubsub->subscribe(
      std::move(topic), [queue](const p2p::pubsub::ReceivedMessage& message) {
        queue->push(ps_message_frame(message));
      });
  if (!subscription) {
    const auto refused = error_response(subscription.error().message);
    auto written = co_await write_message(*client, refused);
    co_return written ? After::kContinue : After::kClose;
  }
  const auto subscribed = ok_response();
  if (auto written = co_await write_message(*client, subscribed); !written) {
    co_return After::kClose;
  }
  {
    using namespace asio::experimental::awaitable_operators;
    co_await (read_until_closed(client) || write_subscription(client, queue));
  }
  queue->closed = true;
  (*subscription)->cancel();
  co_return After::kClose;
}

Expected<std::unique_ptr<P2pdServer>> P2pdServer::start(p2p::net::Host& host,
                                                        P2pdServerConfig config) {
  auto address = parse_local_address(config.listen);
  if (!address) return fail("p2pd listen address: " + address.error().message);
  auto state = std::make_shared<State>(host, std::move(config));
  auto& io = host.io_context();
  try {
    if (address->unix_socket) {
      namespace fs = std::filesystem;
      std::error_code ec;
      auto status = fs::symlink_status(address->path, ec);
      if (!ec && fs::exists(status)) {
        if (!fs::is_socket(status)) {
          return fail("p2pd listen address: " + address->path + " exists and is not a socket");
        }
        asio::local::stream_protocol::socket probe(io);
        probe.connect(asio::local::stream_protocol::endpoint(address->path), ec);
        if (!ec) return fail("p2pd listen address: " + address->path + " is in use");
        fs::remove(address->path, ec);  // a stale socket of a process that is gone
      }
      auto acceptor = std::make_unique<asio::local::stream_protocol::acceptor>(io);
      acceptor->open();
      // Only the owner may connect: the socket drives the node.
      {
        daemon::PrivateCreationScope private_socket;
        acceptor->bind(asio::local::stream_protocol::endpoint(address->path), ec);
      }
      if (ec) return fail("p2pd listen address " + address->path + ": " + ec.message(), ec);
      (void)daemon::make_private(address->path);
      acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        fs::remove(address->path, ec);
        return fail("p2pd listen address " + address->path + ": " + ec.message(), ec);
      }
      state->unix_path = address->path;
      state->listen_text = "/unix" + address->path;
      state->unix_acceptor = std::move(acceptor);
      asio::co_spawn(io, state->accept_unix(state), p2p::net::report_exception);
    } else {
      std::error_code ec;
      auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io);
      acceptor->open(address->endpoint.protocol(), ec);
      if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) acceptor->bind(address->endpoint, ec);
      if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) return fail("p2pd listen address " + config.listen + ": " + ec.message(), ec);
      auto bound = acceptor->local_endpoint();
      state->listen_text = std::string(bound.address().is_v6() ? "/ip6/" : "/ip4/") +
                           bound.address().to_string() + "/tcp/" + std::to_string(bound.port());
      state->tcp_acceptor = std::move(acceptor);
      asio::co_spawn(io, state->accept_tcp(state), p2p::net::report_exception);
    }
  } catch (const std::exception& e) {
    return fail(std::string("p2pd listen address: ") + e.what());
  }
  return std::unique_ptr<P2pdServer>(new P2pdServer(std::move(state)));
}

P2pdServer::~P2pdServer() {
  stop();
}

const std::string& P2pdServer::listen_address() const {
  return state_->listen_text;
}

void P2pdServer::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  std::error_code ignored;
  if (state_->tcp_acceptor) state_->tcp_acceptor->close(ignored);
  if (state_->unix_acceptor) state_->unix_acceptor->close(ignored);
  auto sockets = std::move(state_->sockets);
  for (auto& [id, weak] : sockets) {
    if (auto socket = weak.lock()) socket->abort();
  }
  if (!state_->unix_path.empty()) std::filesystem::remove(state_->unix_path, ignored);
}

}  // namespace an::node
