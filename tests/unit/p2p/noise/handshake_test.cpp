// The libp2p Noise handshake end to end in memory: matching sessions, peer IDs, transport
// traffic, payload checks (signature, expected peer, key types, extensions) and hostile input
// (truncation, bit flips, order, low-order keys, random bytes).
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>

#include "fuzz/harness/harness.h"
#include "p2p/crypto/key.h"
#include "p2p/noise/noise.h"
#include "p2p/noise/symmetric_state.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::noise {
namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

struct Node {
  PrivateKey identity;
  X25519KeyPair static_key;
  PeerId peer() const { return identity.peer_id(); }
};

Node make_node(KeyType type = KeyType::kEd25519) {
  auto identity = PrivateKey::generate(type);
  auto static_key = X25519KeyPair::generate();
  EXPECT_TRUE(identity && static_key);
  return Node{*identity, *static_key};
}

Handshake make_handshake(const Node& node, Role role,
                         std::optional<PeerId> expected_remote = std::nullopt,
                         std::vector<std::string> muxers = {}) {
  HandshakeOptions options;
  options.role = role;
  options.identity = &node.identity;
  options.static_key = &node.static_key;
  options.expected_remote = std::move(expected_remote);
  options.stream_muxers = std::move(muxers);
  auto handshake = Handshake::create(options);
  EXPECT_TRUE(handshake) << handshake.error().message;
  return std::move(*handshake);
}

// Runs the three messages; `tamper` may change message i (0-based) on the wire. Returns the
// first error, if any.
std::optional<Error> run(Handshake& initiator, Handshake& responder,
                         const std::function<void(std::size_t, Bytes&)>& tamper = {}) {
  for (std::size_t i = 0; i < 3; ++i) {
    Handshake& writer = i % 2 == 0 ? initiator : responder;
    Handshake& reader = i % 2 == 0 ? responder : initiator;
    auto message = writer.write_message();
    if (!message) return message.error();
    if (tamper) tamper(i, *message);
    if (auto read = reader.read_message(*message); !read) return read.error();
  }
  return std::nullopt;
}

TEST(NoiseHandshake, FullHandshakeAndTransport) {
  const Node dialer = make_node();
  const Node listener = make_node();
  Handshake initiator = make_handshake(dialer, Role::kInitiator, listener.peer(), {"/yamux/1.0.0"});
  Handshake responder =
      make_handshake(listener, Role::kResponder, std::nullopt, {"/yamux/1.0.0", "/mplex/6.7.0"});
  EXPECT_TRUE(initiator.my_turn_to_write());
  EXPECT_FALSE(responder.my_turn_to_write());
  auto error = run(initiator, responder);
  ASSERT_FALSE(error) << error->message;
  ASSERT_TRUE(initiator.is_complete() && responder.is_complete());
  EXPECT_EQ(initiator.remote_peer(), listener.peer());
  EXPECT_EQ(responder.remote_peer(), dialer.peer());

  auto dialer_session = initiator.finish();
  auto listener_session = responder.finish();
  ASSERT_TRUE(dialer_session && listener_session);
  EXPECT_FALSE(initiator.finish()) << "the session is handed out once";
  EXPECT_EQ(dialer_session->handshake_hash, listener_session->handshake_hash);
  EXPECT_EQ(dialer_session->handshake_hash.size(), 32u);
  EXPECT_EQ(dialer_session->remote_peer, listener.peer());
  EXPECT_EQ(listener_session->remote_peer, dialer.peer());
  EXPECT_EQ(dialer_session->remote_identity_key, listener.identity.public_key().protobuf());
  EXPECT_EQ(dialer_session->remote_stream_muxers,
            (std::vector<std::string>{"/yamux/1.0.0", "/mplex/6.7.0"}));
  EXPECT_EQ(listener_session->remote_stream_muxers, std::vector<std::string>{"/yamux/1.0.0"});

  std::mt19937 random(42);
  Bytes buffer(kMaxCiphertext);
  for (int i = 0; i < 1000; ++i) {
    const bool dialer_sends = random() % 2 == 0;
    CipherState& send = dialer_sends ? dialer_session->send : listener_session->send;
    CipherState& receive = dialer_sends ? listener_session->receive : dialer_session->receive;
    // Mostly small messages, some up to the maximum.
    const std::size_t size = random() % 4 == 0 ? random() % (kMaxPlaintext + 1) : random() % 2000;
    Bytes plaintext(size);
    for (auto& byte : plaintext)
      byte = static_cast<std::uint8_t>(random());
    auto written = send.encrypt(plaintext, buffer.data());
    ASSERT_TRUE(written) << written.error().message;
    ASSERT_EQ(*written, size + kTagSize);
    auto opened = receive.decrypt(ByteView(buffer).first(*written), buffer.data());
    ASSERT_TRUE(opened) << "message " << i << ": " << opened.error().message;
    ASSERT_EQ(Bytes(buffer.begin(), buffer.begin() + *opened), plaintext) << "message " << i;
  }
  auto largest = dialer_session->send.encrypt(Bytes(kMaxPlaintext, 3));
  ASSERT_TRUE(largest);
  EXPECT_EQ(largest->size(), 65535u);
  EXPECT_TRUE(listener_session->receive.decrypt(*largest));
  EXPECT_FALSE(dialer_session->send.encrypt(Bytes(kMaxPlaintext + 1, 3)));
}

TEST(NoiseHandshake, SessionsOfDifferentHandshakesDiffer) {
  const Node a = make_node();
  const Node b = make_node();
  Bytes hashes[2];
  for (auto& hash : hashes) {
    Handshake initiator = make_handshake(a, Role::kInitiator);
    Handshake responder = make_handshake(b, Role::kResponder);
    ASSERT_FALSE(run(initiator, responder));
    hash = initiator.finish()->handshake_hash;
  }
  EXPECT_NE(hashes[0], hashes[1]) << "fresh ephemeral keys make every session unique";
}

TEST(NoiseHandshake, ExpectedRemoteMismatchNamesBothPeers) {
  const Node dialer = make_node();
  const Node listener = make_node();
  const Node someone_else = make_node();
  Handshake initiator = make_handshake(dialer, Role::kInitiator, someone_else.peer());
  Handshake responder = make_handshake(listener, Role::kResponder);
  auto error = run(initiator, responder);
  ASSERT_TRUE(error);
  EXPECT_TRUE(contains(error->message, someone_else.peer().to_string())) << error->message;
  EXPECT_TRUE(contains(error->message, listener.peer().to_string())) << error->message;
  EXPECT_TRUE(initiator.has_failed());
  EXPECT_FALSE(initiator.is_complete());
  EXPECT_FALSE(initiator.my_turn_to_write());
  EXPECT_FALSE(initiator.write_message());
  EXPECT_FALSE(initiator.finish());
}

TEST(NoiseHandshake, OptionsAreChecked) {
  const Node node = make_node();
  HandshakeOptions options;
  options.static_key = &node.static_key;
  EXPECT_FALSE(Handshake::create(options));
  options.identity = &node.identity;
  options.static_key = nullptr;
  EXPECT_FALSE(Handshake::create(options));
  options.static_key = &node.static_key;
  options.fixed_ephemeral_private = Bytes(31, 1);
  EXPECT_FALSE(Handshake::create(options));
}

// A raw Noise peer lets the tests put any payload in messages 2 and 3.
detail::XXHandshakeState raw_peer(Role role, const X25519KeyPair& static_key) {
  auto state = detail::XXHandshakeState::create(role, static_key, {});
  EXPECT_TRUE(state);
  return std::move(*state);
}

// Drives a libp2p initiator against a raw responder sending `payload` in message 2.
Expected<void> initiator_reads_payload(const Node& dialer, const X25519KeyPair& responder_static,
                                       ByteView payload) {
  Handshake initiator = make_handshake(dialer, Role::kInitiator);
  detail::XXHandshakeState responder = raw_peer(Role::kResponder, responder_static);
  auto first = initiator.write_message();
  Bytes ignored;
  EXPECT_TRUE(first && responder.read_message(*first, ignored));
  Bytes second;
  EXPECT_TRUE(responder.write_message(payload, second));
  return initiator.read_message(second);
}

TEST(NoiseHandshake, SignatureCoversPrefixAndStaticKey) {
  const Node dialer = make_node();
  const Node listener = make_node();
  detail::XXHandshakeState raw_initiator = raw_peer(Role::kInitiator, dialer.static_key);
  Handshake responder = make_handshake(listener, Role::kResponder);
  Bytes first;
  ASSERT_TRUE(raw_initiator.write_message({}, first));
  ASSERT_TRUE(responder.read_message(first));
  auto second = responder.write_message();
  ASSERT_TRUE(second);
  Bytes payload_bytes;
  ASSERT_TRUE(raw_initiator.read_message(*second, payload_bytes));
  auto payload = decode_payload(payload_bytes);
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->identity_key, listener.identity.public_key().protobuf());
  Bytes signed_message = {'n', 'o', 'i', 's', 'e', '-', 'l', 'i', 'b', 'p', '2', 'p',
                          '-', 's', 't', 'a', 't', 'i', 'c', '-', 'k', 'e', 'y', ':'};
  const auto& static_public = *raw_initiator.remote_static();
  EXPECT_EQ(static_public, listener.static_key.public_key());
  signed_message.insert(signed_message.end(), static_public.begin(), static_public.end());
  EXPECT_TRUE(listener.identity.public_key().verify(signed_message, payload->identity_sig));
}

TEST(NoiseHandshake, WrongSignatureIsRejected) {
  const Node dialer = make_node();
  const Node listener = make_node();
  auto other_static = X25519KeyPair::generate();
  ASSERT_TRUE(other_static);
  // Signed over a different static key than the one the handshake carries.
  auto payload = make_payload(listener.identity, other_static->public_key(), {});
  ASSERT_TRUE(payload);
  auto read = initiator_reads_payload(dialer, listener.static_key, encode_payload(*payload));
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().message, "not a valid signature")) << read.error().message;

  // A corrupted signature over the right key.
  payload = make_payload(listener.identity, listener.static_key.public_key(), {});
  ASSERT_TRUE(payload);
  payload->identity_sig[10] ^= 0x40;
  read = initiator_reads_payload(dialer, listener.static_key, encode_payload(*payload));
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().message, "not a valid signature")) << read.error().message;

  payload->identity_sig.clear();
  read = initiator_reads_payload(dialer, listener.static_key, encode_payload(*payload));
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().message, "no identity_sig")) << read.error().message;
}

TEST(NoiseHandshake, IdentityKeysOfDifferentTypes) {
  const std::pair<KeyType, KeyType> pairs[] = {{KeyType::kRsa, KeyType::kSecp256k1},
                                               {KeyType::kEcdsa, KeyType::kEd25519},
                                               {KeyType::kSecp256k1, KeyType::kEcdsa}};
  for (const auto& [dialer_type, listener_type] : pairs) {
    const Node dialer = make_node(dialer_type);
    const Node listener = make_node(listener_type);
    Handshake initiator = make_handshake(dialer, Role::kInitiator, listener.peer());
    Handshake responder = make_handshake(listener, Role::kResponder);
    auto error = run(initiator, responder);
    ASSERT_FALSE(error) << error->message;
    auto dialer_session = initiator.finish();
    auto listener_session = responder.finish();
    ASSERT_TRUE(dialer_session && listener_session);
    EXPECT_EQ(dialer_session->remote_peer, listener.peer());
    EXPECT_EQ(listener_session->remote_peer, dialer.peer());
    EXPECT_EQ(dialer_session->remote_identity_key, listener.identity.public_key().protobuf());
    EXPECT_EQ(listener_session->remote_identity_key, dialer.identity.public_key().protobuf());
  }
  // An RSA peer ID is a hash of the key: the dialer still checks that it is the expected one.
  const Node rsa = make_node(KeyType::kRsa);
  const Node other = make_node(KeyType::kRsa);
  const Node dialer = make_node(KeyType::kSecp256k1);
  Handshake initiator = make_handshake(dialer, Role::kInitiator, other.peer());
  Handshake responder = make_handshake(rsa, Role::kResponder);
  auto error = run(initiator, responder);
  ASSERT_TRUE(error);
  EXPECT_TRUE(contains(error->message, rsa.peer().to_string())) << error->message;
}

TEST(NoiseHandshake, ABadSignatureByASecp256k1KeyIsRefused) {
  const Node dialer = make_node();
  const Node listener = make_node();
  HandshakePayload payload;
  // The secp256k1 public key of the libp2p/specs peer-ids test vectors.
  payload.identity_key = {0x08, 0x02, 0x12, 0x21, 0x03, 0x77, 0x77, 0xe9, 0x94, 0xe4,
                          0x52, 0xc2, 0x16, 0x04, 0xf9, 0x1d, 0xe0, 0x93, 0xce, 0x41,
                          0x5f, 0x54, 0x32, 0xf7, 0x01, 0xdd, 0x8c, 0xd1, 0xa7, 0xa6,
                          0xfe, 0xa0, 0xe6, 0x30, 0xbf, 0xca, 0x99};
  payload.identity_sig = Bytes(70, 1);
  auto read = initiator_reads_payload(dialer, listener.static_key, encode_payload(payload));
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().message, "not a valid signature")) << read.error().message;
}

TEST(NoiseHandshake, UnknownPayloadFieldsAreIgnored) {
  const Node dialer = make_node();
  const Node listener = make_node();
  auto payload =
      make_payload(listener.identity, listener.static_key.public_key(), {"/yamux/1.0.0"});
  ASSERT_TRUE(payload);
  Bytes encoded = encode_payload(*payload);
  pb::Writer writer(encoded);
  writer.bytes_field(3, Bytes{1, 2, 3});  // the legacy early-data field
  writer.varint_field(99, 12345);
  EXPECT_TRUE(initiator_reads_payload(dialer, listener.static_key, encoded));
  EXPECT_FALSE(initiator_reads_payload(dialer, listener.static_key, Bytes{0xff, 0xff}));
}

TEST(NoiseHandshake, MessagesOutOfOrderAreRejected) {
  const Node a = make_node();
  const Node b = make_node();
  Handshake initiator = make_handshake(a, Role::kInitiator);
  auto early = initiator.read_message(Bytes(200, 1));
  ASSERT_FALSE(early);
  EXPECT_TRUE(contains(early.error().message, "out of order")) << early.error().message;
  EXPECT_TRUE(initiator.has_failed());
  EXPECT_FALSE(initiator.write_message());

  Handshake responder = make_handshake(b, Role::kResponder);
  auto write_first = responder.write_message();
  ASSERT_FALSE(write_first);
  EXPECT_TRUE(contains(write_first.error().message, "peer's turn")) << write_first.error().message;

  // A complete handshake takes no more messages.
  Handshake i2 = make_handshake(a, Role::kInitiator);
  Handshake r2 = make_handshake(b, Role::kResponder);
  ASSERT_FALSE(run(i2, r2));
  EXPECT_FALSE(i2.read_message(Bytes(64, 0)));
  EXPECT_FALSE(r2.write_message());
}

TEST(NoiseHandshake, TruncatedAndOversizedMessagesAreRejected) {
  const Node a = make_node();
  const Node b = make_node();
  for (std::size_t index = 0; index < 3; ++index) {
    // The length of the genuine message first.
    std::size_t length = 0;
    {
      Handshake initiator = make_handshake(a, Role::kInitiator);
      Handshake responder = make_handshake(b, Role::kResponder);
      ASSERT_FALSE(run(initiator, responder, [&](std::size_t i, Bytes& message) {
        if (i == index) length = message.size();
      }));
    }
    for (std::size_t cut = 0; cut < length; cut += (index == 0 ? 1 : 7)) {
      Handshake initiator = make_handshake(a, Role::kInitiator);
      Handshake responder = make_handshake(b, Role::kResponder);
      auto error = run(initiator, responder, [&](std::size_t i, Bytes& message) {
        if (i == index) message.resize(cut);
      });
      ASSERT_TRUE(error) << "message " << index + 1 << " cut to " << cut << " bytes";
    }
    Handshake initiator = make_handshake(a, Role::kInitiator);
    Handshake responder = make_handshake(b, Role::kResponder);
    auto error = run(initiator, responder, [&](std::size_t i, Bytes& message) {
      if (i == index) message.resize(kMaxHandshakeMessage + 1, 0);
    });
    ASSERT_TRUE(error);
    EXPECT_TRUE(contains(error->message, "65535")) << error->message;
  }
}

TEST(NoiseHandshake, FlippedBitInAnyMessageFails) {
  const Node a = make_node();
  const Node b = make_node();
  for (std::size_t index = 0; index < 3; ++index) {
    for (std::size_t byte = 0;; ++byte) {
      bool flipped = false;
      Handshake initiator = make_handshake(a, Role::kInitiator);
      Handshake responder = make_handshake(b, Role::kResponder);
      auto error = run(initiator, responder, [&](std::size_t i, Bytes& message) {
        if (i != index || byte >= message.size()) return;
        message[byte] ^= static_cast<std::uint8_t>(1u << (byte % 8));
        flipped = true;
      });
      if (!flipped) break;
      // A flip in message 1 (cleartext e) surfaces when the initiator reads message 2.
      EXPECT_TRUE(error) << "message " << index + 1 << " byte " << byte;
    }
  }
}

TEST(NoiseHandshake, AllZeroRemoteEphemeralIsRejected) {
  const Node a = make_node();
  const Node b = make_node();
  // In message 1: the responder's first DH (ee) refuses it.
  {
    Handshake initiator = make_handshake(a, Role::kInitiator);
    Handshake responder = make_handshake(b, Role::kResponder);
    auto error = run(initiator, responder, [](std::size_t i, Bytes& message) {
      if (i == 0) std::fill(message.begin(), message.end(), 0);
    });
    ASSERT_TRUE(error);
    EXPECT_TRUE(contains(error->message, "low-order")) << error->message;
    EXPECT_TRUE(responder.has_failed());
  }
  // In message 2: the initiator's ee refuses it.
  {
    Handshake initiator = make_handshake(a, Role::kInitiator);
    Handshake responder = make_handshake(b, Role::kResponder);
    auto error = run(initiator, responder, [](std::size_t i, Bytes& message) {
      if (i == 1) std::fill(message.begin(), message.begin() + 32, 0);
    });
    ASSERT_TRUE(error);
    EXPECT_TRUE(contains(error->message, "low-order")) << error->message;
    EXPECT_TRUE(initiator.has_failed());
  }
}

const std::string_view kProtocolName = detail::kNoiseProtocolName;

TEST(NoiseHandshake, AllZeroRemoteStaticIsRejected) {
  const Node a = make_node();
  const Node b = make_node();
  const Bytes zero_key(32, 0);
  // A responder that sends an encrypted all-zero static key: the initiator's es fails.
  {
    Handshake initiator = make_handshake(a, Role::kInitiator);
    auto first = initiator.write_message();
    ASSERT_TRUE(first);
    auto hostile = detail::SymmetricState::initialize(kProtocolName);
    auto ephemeral = X25519KeyPair::generate();
    ASSERT_TRUE(hostile && ephemeral);
    ASSERT_TRUE(hostile->mix_hash({}));
    ASSERT_TRUE(hostile->mix_hash(ByteView(*first).first(32)));
    ASSERT_TRUE(hostile->mix_hash({}));  // the empty payload of message 1
    Bytes second(ephemeral->public_key().begin(), ephemeral->public_key().end());
    ASSERT_TRUE(hostile->mix_hash(ephemeral->public_key()));
    auto ee = ephemeral->agree(ByteView(*first).first(32));
    ASSERT_TRUE(ee && hostile->mix_key(*ee));
    ASSERT_TRUE(hostile->encrypt_and_hash(zero_key, second));
    second.resize(second.size() + 32, 0x5a);  // the payload cannot be made without es
    auto read = initiator.read_message(second);
    ASSERT_FALSE(read);
    EXPECT_TRUE(contains(read.error().message, "low-order")) << read.error().message;
    EXPECT_TRUE(contains(read.error().message, "es")) << read.error().message;
  }
  // An initiator that sends an encrypted all-zero static key: the responder's se fails.
  {
    Handshake responder = make_handshake(b, Role::kResponder);
    auto hostile = detail::SymmetricState::initialize(kProtocolName);
    auto ephemeral = X25519KeyPair::generate();
    ASSERT_TRUE(hostile && ephemeral);
    ASSERT_TRUE(hostile->mix_hash({}));
    Bytes first(ephemeral->public_key().begin(), ephemeral->public_key().end());
    ASSERT_TRUE(hostile->mix_hash(ephemeral->public_key()));
    ASSERT_TRUE(hostile->encrypt_and_hash({}, first));
    ASSERT_TRUE(responder.read_message(first));
    auto second = responder.write_message();
    ASSERT_TRUE(second);
    const ByteView responder_ephemeral = ByteView(*second).first(32);
    ASSERT_TRUE(hostile->mix_hash(responder_ephemeral));
    auto ee = ephemeral->agree(responder_ephemeral);
    ASSERT_TRUE(ee && hostile->mix_key(*ee));
    Bytes responder_static;
    ASSERT_TRUE(hostile->decrypt_and_hash(ByteView(*second).subspan(32, 48), responder_static));
    auto es = ephemeral->agree(responder_static);
    ASSERT_TRUE(es && hostile->mix_key(*es));
    Bytes payload;
    ASSERT_TRUE(hostile->decrypt_and_hash(ByteView(*second).subspan(80), payload));
    Bytes third;
    ASSERT_TRUE(hostile->encrypt_and_hash(zero_key, third));
    third.resize(third.size() + 32, 0x5a);
    auto read = responder.read_message(third);
    ASSERT_FALSE(read);
    EXPECT_TRUE(contains(read.error().message, "low-order")) << read.error().message;
    EXPECT_TRUE(contains(read.error().message, "se")) << read.error().message;
  }
}

TEST(NoiseHandshake, RandomMessagesNeverCrash) {
  const Node a = make_node();
  const Node b = make_node();
  std::mt19937 random(7);
  for (int round = 0; round < 300; ++round) {
    const bool as_initiator = round % 2 == 0;
    Handshake handshake =
        make_handshake(as_initiator ? a : b, as_initiator ? Role::kInitiator : Role::kResponder);
    if (as_initiator) {
      ASSERT_TRUE(handshake.write_message());
    }
    for (int message = 0; message < 3 && !handshake.has_failed(); ++message) {
      Bytes junk(random() % 300);
      for (auto& byte : junk)
        byte = static_cast<std::uint8_t>(random());
      (void)handshake.read_message(junk);
      if (handshake.my_turn_to_write()) (void)handshake.write_message();
    }
    // Only a responder can get past one message of junk (message 1 is a bare key).
    EXPECT_FALSE(handshake.is_complete());
  }
}

TEST(NoiseFuzz, RandomInputsNeverCrash) {
  std::mt19937 random(99);
  for (int round = 0; round < 2000; ++round) {
    Bytes input(random() % 600);
    for (auto& byte : input)
      byte = static_cast<std::uint8_t>(random());
    // Plausible frame lengths now and then, so that the handshake code is reached.
    if (input.size() > 3 && round % 3 == 0) {
      input[1] = 0;
      input[2] = static_cast<std::uint8_t>(32 + random() % 64);
    }
    fuzz::noise(input.data(), input.size());
  }
  fuzz::noise(nullptr, 0);
}

}  // namespace
}  // namespace an::p2p::noise
