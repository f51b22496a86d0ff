// The pure Noise layer against the cacophony test vectors (haskell-cryptography/cacophony,
// vectors/cacophony.txt, entry Noise_XX_25519_ChaChaPoly_SHA256): byte for byte, handshake and
// transport messages, plus the Noise HKDF and the protocol name handling.
#include <gtest/gtest.h>

#include "support/hex.h"

#include <string>
#include <string_view>

#include "p2p/noise/handshake_state.h"
#include "p2p/noise/symmetric_state.h"

namespace an::p2p::noise {
namespace {

using test::from_hex;

constexpr std::string_view kPrologue = "4a6f686e2047616c74";
constexpr std::string_view kInitiatorStatic =
    "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
constexpr std::string_view kInitiatorEphemeral =
    "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
constexpr std::string_view kResponderStatic =
    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
constexpr std::string_view kResponderEphemeral =
    "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
constexpr std::string_view kHandshakeHash =
    "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e";

struct VectorMessage {
  std::string_view payload;
  std::string_view ciphertext;
};

// Messages 1-3 are the handshake, 4-6 transport messages (responder, initiator, responder).
constexpr VectorMessage kMessages[] = {
    {"4c756477696720766f6e204d69736573",
     "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69"
     "736573"},
    {"4d757272617920526f746862617264",
     "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2"
     "b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c"
     "412f8a0db50f8814c7194e83f23dbd8d162c9326ad"},
    {"462e20412e20486179656b",
     "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be08"
     "65b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030"},
    {"4361726c204d656e676572", "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df"},
    {"4a65616e2d426170746973746520536179",
     "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5"},
    {"457567656e2042f6686d20766f6e2042617765726b",
     "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"},
};

X25519KeyPair key(std::string_view hex) {
  auto pair = X25519KeyPair::from_private(from_hex(hex));
  EXPECT_TRUE(pair.has_value());
  return *pair;
}

TEST(NoiseVectors, CacophonyXX25519ChaChaPolySha256) {
  const Bytes prologue = from_hex(kPrologue);
  auto initiator = detail::XXHandshakeState::create(Role::kInitiator, key(kInitiatorStatic),
                                                    prologue, key(kInitiatorEphemeral));
  auto responder = detail::XXHandshakeState::create(Role::kResponder, key(kResponderStatic),
                                                    prologue, key(kResponderEphemeral));
  ASSERT_TRUE(initiator && responder);

  for (std::size_t i = 0; i < 3; ++i) {
    detail::XXHandshakeState& writer = i % 2 == 0 ? *initiator : *responder;
    detail::XXHandshakeState& reader = i % 2 == 0 ? *responder : *initiator;
    ASSERT_TRUE(writer.my_turn_to_write());
    Bytes message;
    ASSERT_TRUE(writer.write_message(from_hex(kMessages[i].payload), message)) << i;
    EXPECT_EQ(message, from_hex(kMessages[i].ciphertext)) << "handshake message " << i + 1;
    Bytes payload;
    auto read = reader.read_message(message, payload);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(payload, from_hex(kMessages[i].payload));
  }
  ASSERT_TRUE(initiator->is_complete() && responder->is_complete());
  EXPECT_EQ(Bytes(initiator->handshake_hash().begin(), initiator->handshake_hash().end()),
            from_hex(kHandshakeHash));
  EXPECT_EQ(initiator->handshake_hash(), responder->handshake_hash());
  EXPECT_EQ(*initiator->remote_static(), key(kResponderStatic).public_key());
  EXPECT_EQ(*responder->remote_static(), key(kInitiatorStatic).public_key());

  auto initiator_session = initiator->split();
  auto responder_session = responder->split();
  ASSERT_TRUE(initiator_session && responder_session);
  EXPECT_FALSE(initiator->split()) << "the transport keys can be taken only once";
  for (std::size_t i = 3; i < std::size(kMessages); ++i) {
    // The vectors keep alternating after the handshake: the responder sends message 4.
    detail::TransportStates& writer = i % 2 == 0 ? *initiator_session : *responder_session;
    detail::TransportStates& reader = i % 2 == 0 ? *responder_session : *initiator_session;
    auto ciphertext = writer.send.encrypt(from_hex(kMessages[i].payload));
    ASSERT_TRUE(ciphertext);
    EXPECT_EQ(*ciphertext, from_hex(kMessages[i].ciphertext)) << "transport message " << i + 1;
    auto plaintext = reader.receive.decrypt(*ciphertext);
    ASSERT_TRUE(plaintext);
    EXPECT_EQ(*plaintext, from_hex(kMessages[i].payload));
  }
}

TEST(NoiseVectors, ProtocolNameOfExactlyHashLengthIsUsedAsIs) {
  // "Noise_XX_25519_ChaChaPoly_SHA256" is 32 bytes: h starts as the name itself, not its hash.
  ASSERT_EQ(detail::kNoiseProtocolName.size(), detail::kHashSize);
  auto state = detail::SymmetricState::initialize(detail::kNoiseProtocolName);
  ASSERT_TRUE(state);
  EXPECT_EQ(std::string(state->handshake_hash().begin(), state->handshake_hash().end()),
            detail::kNoiseProtocolName);
  auto longer = detail::SymmetricState::initialize("Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s");
  ASSERT_TRUE(longer);
  const std::string_view name = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
  auto hashed =
      detail::sha256(ByteView(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()));
  ASSERT_TRUE(hashed);
  EXPECT_EQ(longer->handshake_hash(), *hashed);
}

TEST(NoiseVectors, HkdfMatchesRfc5869WithEmptyInfo) {
  // RFC 5869 test case 3 (SHA-256, empty salt and info) gives OKM = T(1) | T(2); Noise's HKDF
  // is that construction with the chaining key as salt.
  const Bytes ikm(22, 0x0b);
  auto outputs = detail::hkdf2({}, ikm);
  ASSERT_TRUE(outputs);
  Bytes okm(outputs->first.begin(), outputs->first.end());
  okm.insert(okm.end(), outputs->second.begin(), outputs->second.end());
  okm.resize(42);
  EXPECT_EQ(okm, from_hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d2013"
                          "95faa4b61a96c8"));
}

}  // namespace
}  // namespace an::p2p::noise
