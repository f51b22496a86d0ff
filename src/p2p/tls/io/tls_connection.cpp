#include "p2p/tls/io/tls_connection.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "p2p/net/async.h"

namespace an::p2p::tls {

using net::ByteStream;
using net::TcpByteStream;
using net::use_tuple;
namespace {

// OpenSSL reads the socket ahead into a buffer this large: several records per system call.
constexpr std::size_t kReadAheadSize = 256 * 1024;
// Decrypted bytes handed out per read_view, gathered from the records already received.
constexpr std::size_t kPlainBufferSize = 64 * 1024;
// Ciphertext read per call from transports other than TCP.
constexpr std::size_t kInboxSize = 64 * 1024;
// Plaintext encrypted per transport write.
constexpr std::size_t kWriteChunk = 256 * 1024;
// Host keys whose certificate and context are kept (tests and benchmarks make many hosts).
constexpr std::size_t kMaxCachedCredentials = 64;

std::unique_ptr<std::uint8_t[]> allocate(std::size_t size) {
  return std::unique_ptr<std::uint8_t[]>(new std::uint8_t[size]);
}

struct ContextDeleter {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};
using ContextHandle = std::unique_ptr<SSL_CTX, ContextDeleter>;

// Our certificate in an OpenSSL context, made once per host key.
struct Credentials {
  HostCertificate certificate;
  ContextHandle context;
};

}  // namespace

// The static functions OpenSSL calls; they reach the connection through the SSL's app data.
struct TlsConnection::Callbacks {
  static TlsConnection* connection_of(SSL* ssl) {
    return static_cast<TlsConnection*>(SSL_get_app_data(ssl));
  }

  static int bio_write(BIO* bio, const char* data, int size) {
    auto* self = static_cast<TlsConnection*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (size <= 0) return 0;
    self->bio_write(reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size));
    return size;
  }

  static int bio_read(BIO* bio, char* out, int size) {
    auto* self = static_cast<TlsConnection*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (size <= 0) return 0;
    bool retry = false;
    int got =
        self->bio_read(reinterpret_cast<std::uint8_t*>(out), static_cast<std::size_t>(size), retry);
    if (retry) BIO_set_retry_read(bio);
    return got;
  }

  static long bio_control(BIO*, int command, long, void*) {
    // OpenSSL flushes after each handshake flight; our writes are flushed by the coroutines.
    return command == BIO_CTRL_FLUSH ? 1 : 0;
  }

  static int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  static BIO_METHOD* bio_method() {
    static BIO_METHOD* method = [] {
      BIO_METHOD* created =
          BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "libp2p transport");
      if (created != nullptr) {
        BIO_meth_set_write(created, bio_write);
        BIO_meth_set_read(created, bio_read);
        BIO_meth_set_ctrl(created, bio_control);
        BIO_meth_set_create(created, bio_create);
      }
      return created;
    }();
    return method;
  }

  // Replaces OpenSSL's chain verification with the libp2p check (and, on the dialer, the
  // expected peer ID), so that a wrong peer is refused inside the handshake.
  static int verify_chain(X509_STORE_CTX* store, void*) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    TlsConnection* self = ssl != nullptr ? connection_of(ssl) : nullptr;
    if (self == nullptr) return 0;
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_untrusted(store);
    std::vector<X509*> certificates;
    if (chain != nullptr) {
      for (int i = 0; i < sk_X509_num(chain); ++i)
        certificates.push_back(sk_X509_value(chain, i));
    } else if (X509* leaf = X509_STORE_CTX_get0_cert(store); leaf != nullptr) {
      certificates.push_back(leaf);
    }
    auto peer = verify_certificate_chain(certificates, self->verifier_);
    if (!peer) {
      self->verify_error_ = peer.error().message;
      X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      return 0;
    }
    if (self->expected_peer_ && *peer != *self->expected_peer_) {
      self->verify_error_ = "peer ID mismatch: dialled " + self->expected_peer_->to_string() +
                            " but reached " + peer->to_string();
      X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      return 0;
    }
    self->remote_peer_ = std::move(*peer);
    return 1;
  }

  // Server side: the client's first muxer that we also offer (the dialer's preference, as go
  // does), else "libp2p"; a client listing neither gets no ALPN answer.
  static int select_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_length,
                         const unsigned char* offered, unsigned int offered_length, void*) {
    TlsConnection* self = connection_of(ssl);
    if (self == nullptr) return SSL_TLSEXT_ERR_NOACK;
    std::optional<std::pair<const unsigned char*, unsigned char>> libp2p;
    for (unsigned int i = 0; i < offered_length;) {
      unsigned char length = offered[i];
      if (length == 0 || i + 1 + length > offered_length) break;
      std::string_view name(reinterpret_cast<const char*>(offered + i + 1), length);
      if (std::find(self->muxers_.begin(), self->muxers_.end(), name) != self->muxers_.end()) {
        *out = offered + i + 1;
        *out_length = length;
        return SSL_TLSEXT_ERR_OK;
      }
      if (name == kTlsAlpn && !libp2p) libp2p.emplace(offered + i + 1, length);
      i += 1 + length;
    }
    if (!libp2p) return SSL_TLSEXT_ERR_NOACK;
    *out = libp2p->first;
    *out_length = libp2p->second;
    return SSL_TLSEXT_ERR_OK;
  }
};

namespace {

Expected<std::shared_ptr<const Credentials>> make_credentials(const TlsHostKey& host_key) {
  auto certificate = generate_certificate(host_key);
  if (!certificate) return tl::unexpected(certificate.error());
  ContextHandle context(SSL_CTX_new(TLS_method()));
  auto broken = [](const char* what) { return fail("tls: " + openssl::failure(what)); };
  if (!context) return broken("creating the TLS context");
  SSL_CTX* ctx = context.get();
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return broken("restricting the context to TLS 1.3");
  }
  if (SSL_CTX_use_certificate(ctx, certificate->certificate.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, certificate->private_key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return broken("installing the certificate");
  }
  // Mutual authentication: the server requires a client certificate; both sides check the
  // other's with the libp2p rules only.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, TlsConnection::Callbacks::verify_chain, nullptr);
  SSL_CTX_set_alpn_select_cb(ctx, TlsConnection::Callbacks::select_alpn, nullptr);
  // No resumption (go-libp2p disables session tickets too): each connection authenticates.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, kReadAheadSize);
  auto credentials = std::make_shared<Credentials>();
  credentials->certificate = std::move(*certificate);
  credentials->context = std::move(context);
  return std::shared_ptr<const Credentials>(std::move(credentials));
}

// One certificate per host key for the process's lifetime, as go-libp2p makes one per host.
Expected<std::shared_ptr<const Credentials>> credentials_for(const TlsHostKey& host_key) {
  static std::mutex mutex;
  static std::map<Bytes, std::shared_ptr<const Credentials>> cache;
  static std::deque<Bytes> order;
  {
    std::lock_guard lock(mutex);
    auto found = cache.find(host_key.public_key_protobuf);
    if (found != cache.end()) return found->second;
  }
  auto made = make_credentials(host_key);
  if (!made) return made;
  std::lock_guard lock(mutex);
  auto [entry, inserted] = cache.emplace(host_key.public_key_protobuf, *made);
  if (inserted) {
    order.push_back(host_key.public_key_protobuf);
    if (order.size() > kMaxCachedCredentials) {
      cache.erase(order.front());
      order.pop_front();
    }
  }
  return entry->second;
}

Bytes alpn_list(const std::vector<std::string>& muxers) {
  Bytes wire;
  auto add = [&](std::string_view name) {
    if (name.empty() || name.size() > 255) return;
    wire.push_back(static_cast<std::uint8_t>(name.size()));
    wire.insert(wire.end(), name.begin(), name.end());
  };
  for (const auto& muxer : muxers)
    add(muxer);
  add(kTlsAlpn);
  return wire;
}

}  // namespace

asio::awaitable<Expected<TlsSecured>> secure_tls(std::unique_ptr<ByteStream> transport,
                                                 bool is_client, const TlsHostKey& host_key,
                                                 SignedKeyVerifier verifier,
                                                 std::optional<PeerId> expected_peer,
                                                 std::vector<std::string> muxers) {
  auto credentials = credentials_for(host_key);
  if (!credentials) co_return tl::unexpected(credentials.error());
  TlsConnection::Setup setup;
  setup.transport = std::move(transport);
  setup.executor = co_await asio::this_coro::executor;
  setup.context = (*credentials)->context.get();
  setup.is_client = is_client;
  setup.verifier = std::move(verifier);
  setup.expected_peer = std::move(expected_peer);
  setup.muxers = std::move(muxers);
  auto connection = std::make_unique<TlsConnection>(std::move(setup));
  if (!connection->ok()) co_return tl::unexpected(connection->ok().error());
  if (auto done = co_await connection->handshake(); !done) {
    co_return tl::unexpected(done.error());
  }
  std::optional<std::string> muxer = connection->early_muxer();
  co_return TlsSecured{std::move(connection), std::move(muxer)};
}

TlsConnection::TlsConnection(Setup setup)
    : transport_(std::move(setup.transport)),
      tcp_(dynamic_cast<TcpByteStream*>(transport_.get())),
      executor_(std::move(setup.executor)),
      is_client_(setup.is_client),
      verifier_(std::move(setup.verifier)),
      expected_peer_(std::move(setup.expected_peer)),
      muxers_(std::move(setup.muxers)) {
  // Ciphertext a negotiation read ahead belongs to us now.
  Bytes early = transport_->take_unread();
  if (!early.empty()) {
    inbox_capacity_ = std::max(kInboxSize, early.size());
    inbox_ = allocate(inbox_capacity_);
    std::memcpy(inbox_.get(), early.data(), early.size());
    inbox_end_ = early.size();
  }
  if (tcp_ != nullptr) {
    std::error_code ignored;
    tcp_->socket().non_blocking(true, ignored);
  }
  ERR_clear_error();
  BIO_METHOD* method = Callbacks::bio_method();
  ssl_ = setup.context != nullptr ? SSL_new(setup.context) : nullptr;
  BIO* bio = method != nullptr && ssl_ != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) {
    created_ = fail("tls: " + openssl::failure("creating the TLS session"));
    return;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_app_data(ssl_, this);
  if (is_client_) {
    Bytes alpn = alpn_list(muxers_);
    // SSL_set_alpn_protos returns 0 on success.
    if (SSL_set_alpn_protos(ssl_, alpn.data(), static_cast<unsigned int>(alpn.size())) != 0) {
      created_ = fail("tls: " + openssl::failure("setting ALPN"));
      return;
    }
    SSL_set_connect_state(ssl_);
  } else {
    SSL_set_accept_state(ssl_);
  }
}

TlsConnection::~TlsConnection() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

int TlsConnection::bio_read(std::uint8_t* out, std::size_t size, bool& retry) {
  if (inbox_begin_ < inbox_end_) {
    std::size_t count = std::min(size, inbox_end_ - inbox_begin_);
    std::memcpy(out, inbox_.get() + inbox_begin_, count);
    inbox_begin_ += count;
    if (inbox_begin_ == inbox_end_) inbox_begin_ = inbox_end_ = 0;
    return static_cast<int>(count);
  }
  if (transport_eof_) return 0;
  if (transport_error_) return -1;
  if (tcp_ == nullptr) {
    retry = true;
    return -1;
  }
  // The socket is non-blocking (see the constructor): read_some returns what is there or
  // would_block, on every platform.
  std::error_code ec;
  const std::size_t got = tcp_->socket().read_some(asio::buffer(out, size), ec);
  if (!ec) return static_cast<int>(got);
  if (ec == asio::error::eof) {
    transport_eof_ = true;
    return 0;
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again ||
      ec == asio::error::interrupted) {
    retry = true;
    return -1;
  }
  transport_error_ = ec;
  return -1;
}

void TlsConnection::bio_write(const std::uint8_t* data, std::size_t size) {
  outbox_.insert(outbox_.end(), data, data + size);
}

asio::awaitable<Expected<void>> TlsConnection::wait_for_input() {
  if (tcp_ != nullptr && inbox_begin_ == inbox_end_) {
    auto [ec] = co_await tcp_->socket().async_wait(asio::ip::tcp::socket::wait_read, use_tuple);
    if (ec) co_return fail("tls: read: " + ec.message(), ec);
    co_return Expected<void>{};
  }
  if (inbox_begin_ < inbox_end_ || transport_eof_ || transport_error_) {
    co_return Expected<void>{};
  }
  // Wait before taking a buffer, so that a quiet connection holds none.
  auto readable = co_await transport_->wait_readable();
  if (!readable) co_return tl::unexpected(readable.error());
  if (!inbox_) {
    inbox_capacity_ = kInboxSize;
    inbox_ = allocate(inbox_capacity_);
  }
  inbox_begin_ = inbox_end_ = 0;
  reading_ = true;
  auto got = co_await transport_->read_some(std::span(inbox_.get(), inbox_capacity_));
  reading_ = false;
  if (!got) {
    transport_error_ =
        got.error().code ? got.error().code : std::make_error_code(std::errc::connection_aborted);
    co_return tl::unexpected(got.error());
  }
  if (*got == 0) transport_eof_ = true;
  inbox_end_ = *got;
  co_return Expected<void>{};
}

asio::awaitable<Expected<void>> TlsConnection::flush() {
  while (!outbox_.empty()) {
    std::swap(outbox_, sending_);
    writing_ = true;
    auto written = co_await transport_->write_all(sending_);
    writing_ = false;
    sending_.clear();
    if (!written) co_return written;
  }
  co_return Expected<void>{};
}

std::string TlsConnection::failure_reason(const char* what, int ssl_error) {
  std::string prefix = std::string("tls ") + what + ": ";
  if (!verify_error_.empty()) {
    ERR_clear_error();
    return prefix + verify_error_;
  }
  unsigned long code = ERR_peek_error();
  if (transport_error_) {
    ERR_clear_error();
    return prefix + "transport: " + transport_error_.message();
  }
  if (transport_eof_ && (ssl_error == SSL_ERROR_SYSCALL ||
                         ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    ERR_clear_error();
    return prefix + "the peer closed the connection" +
           (remote_peer_ ? " without close_notify" : " during the handshake");
  }
  return prefix + openssl::failure("TLS");
}

asio::awaitable<Expected<void>> TlsConnection::handshake() {
  for (;;) {
    ERR_clear_error();
    int result = SSL_do_handshake(ssl_);
    int error = result == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, result);
    std::optional<std::string> failure;
    if (error != SSL_ERROR_NONE && error != SSL_ERROR_WANT_READ) {
      failure = failure_reason("handshake", error);
    }
    // Our flight, or the alert that tells the peer why we stop.
    auto flushed = co_await flush();
    if (failure) co_return fail(*failure);
    if (!flushed) co_return fail("tls handshake: " + flushed.error().message, flushed.error().code);
    if (result == 1) break;
    auto input = co_await wait_for_input();
    if (!input) co_return fail("tls handshake: " + input.error().message, input.error().code);
  }
  if (!remote_peer_) co_return fail("tls handshake: finished without a verified peer certificate");
  const unsigned char* selected = nullptr;
  unsigned int selected_length = 0;
  SSL_get0_alpn_selected(ssl_, &selected, &selected_length);
  std::string_view protocol(reinterpret_cast<const char*>(selected), selected_length);
  if (selected_length > 0 && std::find(muxers_.begin(), muxers_.end(), protocol) != muxers_.end()) {
    early_muxer_ = std::string(protocol);
  }
  co_return Expected<void>{};
}

asio::awaitable<Expected<ByteView>> TlsConnection::read_view() {
  for (;;) {
    if (plain_begin_ < plain_end_) {
      ByteView view(plain_.get() + plain_begin_, plain_end_ - plain_begin_);
      plain_begin_ = plain_end_;
      co_return view;
    }
    if (pending_read_error_) co_return tl::unexpected(*pending_read_error_);
    if (pending_eof_) co_return ByteView{};
    if (!plain_) {
      plain_capacity_ = kPlainBufferSize;
      plain_ = allocate(plain_capacity_);
    }
    ERR_clear_error();
    std::size_t got = 0;
    int result = SSL_read_ex(ssl_, plain_.get(), plain_capacity_, &got);
    if (result == 1) {
      // Records already received go out in the same view.
      std::size_t total = got;
      while (total < plain_capacity_ && SSL_has_pending(ssl_)) {
        std::size_t more = 0;
        ERR_clear_error();
        int again = SSL_read_ex(ssl_, plain_.get() + total, plain_capacity_ - total, &more);
        if (again == 1) {
          total += more;
          continue;
        }
        int error = SSL_get_error(ssl_, again);
        if (error == SSL_ERROR_ZERO_RETURN) {
          pending_eof_ = true;
        } else if (error != SSL_ERROR_WANT_READ) {
          pending_read_error_ = Error{failure_reason("read", error), transport_error_};
        }
        break;
      }
      plain_begin_ = 0;
      plain_end_ = total;
      continue;
    }
    int error = SSL_get_error(ssl_, result);
    if (error == SSL_ERROR_ZERO_RETURN) co_return ByteView{};
    if (error != SSL_ERROR_WANT_READ)
      co_return fail(failure_reason("read", error), transport_error_);
    auto input = co_await wait_for_input();
    if (!input) co_return tl::unexpected(input.error());
  }
}

asio::awaitable<Expected<std::size_t>> TlsConnection::read_some_from_source(
    std::span<std::uint8_t> buffer) {
  if (plain_begin_ == plain_end_) {
    auto view = co_await read_view();
    if (!view) co_return tl::unexpected(view.error());
    if (view->empty()) co_return std::size_t{0};
    // Serve it from the buffer it lives in.
    plain_begin_ = static_cast<std::size_t>(view->data() - plain_.get());
  }
  std::size_t count = std::min(buffer.size(), plain_end_ - plain_begin_);
  std::memcpy(buffer.data(), plain_.get() + plain_begin_, count);
  plain_begin_ += count;
  co_return count;
}

asio::awaitable<Expected<void>> TlsConnection::write_all(ByteView plaintext) {
  while (!plaintext.empty()) {
    std::size_t chunk = std::min(plaintext.size(), kWriteChunk);
    std::size_t written = 0;
    ERR_clear_error();
    int result = SSL_write_ex(ssl_, plaintext.data(), chunk, &written);
    if (result != 1) {
      int error = SSL_get_error(ssl_, result);
      co_return fail(failure_reason("write", error), transport_error_);
    }
    plaintext = plaintext.subspan(written);
    auto flushed = co_await flush();
    if (!flushed) co_return flushed;
  }
  co_return Expected<void>{};
}

asio::awaitable<Expected<void>> TlsConnection::close_write() {
  ERR_clear_error();
  // 0 means "close_notify sent, the peer's not received yet": reading goes on.
  if (SSL_shutdown(ssl_) < 0) {
    co_return fail(failure_reason("close", SSL_get_error(ssl_, -1)), transport_error_);
  }
  auto flushed = co_await flush();
  if (!flushed) co_return flushed;
  co_return co_await transport_->close_write();
}

void TlsConnection::abort() {
  transport_->abort();
}

void TlsConnection::release_read_buffer() {
  if (reading_ || plain_begin_ != plain_end_) return;
  plain_.reset();
  plain_capacity_ = plain_begin_ = plain_end_ = 0;
  if (inbox_begin_ == inbox_end_) {
    inbox_.reset();
    inbox_capacity_ = inbox_begin_ = inbox_end_ = 0;
  }
  // OpenSSL's record buffers, when nothing is pending in them.
  SSL_free_buffers(ssl_);
}

void TlsConnection::release_write_buffer() {
  if (writing_) return;
  if (outbox_.empty()) outbox_ = Bytes{};
  sending_ = Bytes{};
  SSL_free_buffers(ssl_);
}

}  // namespace an::p2p::tls
