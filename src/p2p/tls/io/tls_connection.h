// The /tls/1.0.0 security protocol (libp2p tls spec) on OpenSSL: TLS 1.3 only, both sides
// present a libp2p certificate (the server requires the client's), OpenSSL's chain verification
// replaced by the libp2p check, ALPN "libp2p" preceded by our muxers (go-libp2p's early muxer
// negotiation), no SNI. The TLS engine runs over any ByteStream through a BIO of ours: a TCP
// socket is read directly into OpenSSL's record buffer, other transports (a relayed stream)
// through a buffer filled by coroutines. Network thread only; one reader and one writer at a
// time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/net/secure_connection.h"
#include "p2p/tls/certificate.h"

struct ssl_st;      // OpenSSL's SSL
struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace an::p2p::tls {

inline constexpr std::string_view kTlsProtocolId = "/tls/1.0.0";
// The ALPN value of libp2p TLS; a peer that selects it did not pick a muxer.
inline constexpr std::string_view kTlsAlpn = "libp2p";

class TlsConnection;

struct TlsSecured {
  std::unique_ptr<TlsConnection> connection;
  // The muxer agreed through ALPN, when both sides listed one.
  std::optional<std::string> early_muxer;
};

// Runs the handshake over `transport` (client = the dialer). `host_key` is used before the first
// suspension only: our certificate is made once per host key and process and then reused.
// `expected_peer` (dialer side) must be the peer the certificate names, or the handshake is
// aborted before we authenticate ourselves. `muxers` are offered in ALPN before "libp2p". The
// handshake has no timeout of its own: the caller bounds it (with_timeout).
asio::awaitable<Expected<TlsSecured>> secure_tls(std::unique_ptr<net::ByteStream> transport,
                                                 bool is_client, const TlsHostKey& host_key,
                                                 SignedKeyVerifier verifier,
                                                 std::optional<PeerId> expected_peer,
                                                 std::vector<std::string> muxers);

class TlsConnection final : public net::SecureConnection {
 public:
  struct Setup {
    std::unique_ptr<net::ByteStream> transport;
    asio::any_io_executor executor;
    ssl_ctx_st* context = nullptr;
    bool is_client = false;
    SignedKeyVerifier verifier;
    std::optional<PeerId> expected_peer;
    std::vector<std::string> muxers;
  };
  // Check ok() before the handshake: creating the OpenSSL objects may fail.
  explicit TlsConnection(Setup setup);
  ~TlsConnection() override;
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  const Expected<void>& ok() const { return created_; }
  // Drives the TLS handshake to its end; the connection is usable only after it succeeded.
  asio::awaitable<Expected<void>> handshake();
  // The ALPN protocol selected, when it is one of our muxers.
  const std::optional<std::string>& early_muxer() const { return early_muxer_; }

  // The next decrypted bytes, without copying: valid until the next read. Empty at EOF (the
  // peer's close_notify).
  asio::awaitable<Expected<ByteView>> read_view() override;
  asio::awaitable<Expected<void>> write_all(ByteView plaintext) override;
  // Sends close_notify, then half-closes the transport; reading goes on (TLS 1.3 half-close).
  asio::awaitable<Expected<void>> close_write() override;
  void abort() override;
  void release_write_buffer() override;
  void release_read_buffer() override;

  const PeerId& remote_peer() const override { return *remote_peer_; }
  std::string_view protocol() const override { return kTlsProtocolId; }
  const asio::any_io_executor& executor() const override { return executor_; }
  net::ByteStream& transport() override { return *transport_; }

  // OpenSSL's entry points into a connection (BIO, certificate check, ALPN): the .cpp only.
  struct Callbacks;

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override;

 private:
  // Called by OpenSSL through our BIO.
  int bio_read(std::uint8_t* out, std::size_t size, bool& retry);
  void bio_write(const std::uint8_t* data, std::size_t size);
  // Waits until the BIO has something new to give OpenSSL (bytes or EOF).
  asio::awaitable<Expected<void>> wait_for_input();
  // Sends whatever OpenSSL wrote to the BIO.
  asio::awaitable<Expected<void>> flush();
  // The reason of a failed OpenSSL call, clearest first: our certificate check, the
  // transport, then OpenSSL's error queue.
  std::string failure_reason(const char* what, int ssl_error);

  std::unique_ptr<net::ByteStream> transport_;
  // The transport when it is a TCP socket: OpenSSL reads it directly.
  net::TcpByteStream* tcp_ = nullptr;
  asio::any_io_executor executor_;
  ssl_st* ssl_ = nullptr;
  Expected<void> created_;
  bool is_client_;
  SignedKeyVerifier verifier_;
  std::optional<PeerId> expected_peer_;
  std::vector<std::string> muxers_;
  std::optional<PeerId> remote_peer_;
  std::optional<std::string> early_muxer_;
  std::string verify_error_;

  // Ciphertext not yet given to OpenSSL: read ahead by the negotiation, or (transports other
  // than TCP) read by wait_for_input. [inbox_begin_, inbox_end_) is pending.
  std::unique_ptr<std::uint8_t[]> inbox_;
  std::size_t inbox_capacity_ = 0;
  std::size_t inbox_begin_ = 0;
  std::size_t inbox_end_ = 0;
  bool transport_eof_ = false;
  std::error_code transport_error_;
  // A read into inbox_ is suspended: the buffer must stay.
  bool reading_ = false;
  // A failure met while reading ahead, reported by the next read (the bytes before it first).
  std::optional<Error> pending_read_error_;
  bool pending_eof_ = false;

  // Decrypted bytes: [plain_begin_, plain_end_) not yet read.
  std::unique_ptr<std::uint8_t[]> plain_;
  std::size_t plain_capacity_ = 0;
  std::size_t plain_begin_ = 0;
  std::size_t plain_end_ = 0;

  // Records OpenSSL wrote, and the batch being sent (OpenSSL may write while a send is
  // suspended, e.g. an alert from the reader).
  Bytes outbox_;
  Bytes sending_;
  bool writing_ = false;
};

}  // namespace an::p2p::tls
