// CipherState and framing: the nonce layout, nonce exhaustion, size limits, tag checks, in-place
// use, and the frame reader fed byte by byte.
#include <gtest/gtest.h>

#include <random>

#include "p2p/noise/cipher_state.h"
#include "p2p/noise/framing.h"
#include "p2p/noise/noise.h"

namespace an::p2p::noise {
namespace {

CipherKey test_key(std::uint8_t fill) {
  CipherKey key{};
  key.fill(fill);
  return key;
}

std::pair<CipherState, CipherState> keyed_pair() {
  std::pair<CipherState, CipherState> states;
  EXPECT_TRUE(states.first.initialize_key(test_key(7)));
  EXPECT_TRUE(states.second.initialize_key(test_key(7)));
  return states;
}

TEST(NoiseCipherState, RoundTripAdvancesTheNonce) {
  auto [send, receive] = keyed_pair();
  const Bytes plaintext = {'h', 'e', 'l', 'l', 'o'};
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(send.nonce(), i);
    auto ciphertext = send.encrypt(plaintext);
    ASSERT_TRUE(ciphertext);
    EXPECT_EQ(ciphertext->size(), plaintext.size() + kTagSize);
    auto decrypted = receive.decrypt(*ciphertext);
    ASSERT_TRUE(decrypted) << decrypted.error().message;
    EXPECT_EQ(*decrypted, plaintext);
  }
}

TEST(NoiseCipherState, EachNonceGivesADifferentCiphertext) {
  auto [send, receive] = keyed_pair();
  auto first = send.encrypt(Bytes(8, 0));
  auto second = send.encrypt(Bytes(8, 0));
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first, *second);
  // Out of order is a failure: the receiver expects nonce 0 first.
  EXPECT_FALSE(receive.decrypt(*second));
  EXPECT_EQ(receive.nonce(), 0u) << "a failed decryption must not advance the nonce";
  EXPECT_TRUE(receive.decrypt(*first));
}

TEST(NoiseCipherState, InPlaceEncryptAndDecrypt) {
  auto [send, receive] = keyed_pair();
  Bytes buffer(100 + kTagSize);
  for (std::size_t i = 0; i < 100; ++i)
    buffer[i] = static_cast<std::uint8_t>(i);
  const Bytes original(buffer.begin(), buffer.begin() + 100);
  auto written = send.encrypt(ByteView(buffer).first(100), buffer.data());
  ASSERT_TRUE(written);
  EXPECT_EQ(*written, 100 + kTagSize);
  EXPECT_NE(Bytes(buffer.begin(), buffer.begin() + 100), original);
  auto opened = receive.decrypt(buffer, buffer.data());
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, 100u);
  EXPECT_EQ(Bytes(buffer.begin(), buffer.begin() + 100), original);
}

TEST(NoiseCipherState, WrongTagIsRejectedAndOutputWiped) {
  auto [send, receive] = keyed_pair();
  auto ciphertext = send.encrypt(Bytes(32, 0xaa));
  ASSERT_TRUE(ciphertext);
  for (std::size_t byte :
       {std::size_t{0}, std::size_t{31}, std::size_t{32}, ciphertext->size() - 1}) {
    Bytes corrupted = *ciphertext;
    corrupted[byte] ^= 0x01;
    Bytes out(32, 0x55);
    auto opened = receive.decrypt(corrupted, out.data());
    ASSERT_FALSE(opened);
    EXPECT_NE(opened.error().message.find("authentication tag"), std::string::npos)
        << opened.error().message;
    EXPECT_EQ(out, Bytes(32, 0)) << "unauthenticated plaintext must not be left behind";
  }
  EXPECT_FALSE(receive.decrypt(Bytes(kTagSize - 1, 0)));
  EXPECT_FALSE(receive.decrypt(Bytes{}));
  EXPECT_TRUE(receive.decrypt(*ciphertext));
}

TEST(NoiseCipherState, SizeLimits) {
  auto [send, receive] = keyed_pair();
  auto largest = send.encrypt(Bytes(kMaxPlaintext, 1));
  ASSERT_TRUE(largest);
  EXPECT_EQ(largest->size(), kMaxCiphertext);
  auto opened = receive.decrypt(*largest);
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->size(), kMaxPlaintext);

  auto too_large = send.encrypt(Bytes(kMaxPlaintext + 1, 1));
  ASSERT_FALSE(too_large);
  EXPECT_NE(too_large.error().message.find("65519"), std::string::npos);
  EXPECT_FALSE(receive.decrypt(Bytes(kMaxCiphertext + 1, 1)));
}

TEST(NoiseCipherState, NonceExhaustionIsAnError) {
  auto [send, receive] = keyed_pair();
  send.set_nonce(kMaxNonce - 1);
  receive.set_nonce(kMaxNonce - 1);
  auto last = send.encrypt(Bytes{1, 2, 3});
  ASSERT_TRUE(last);
  EXPECT_TRUE(receive.decrypt(*last));
  EXPECT_EQ(send.nonce(), kMaxNonce);
  auto refused = send.encrypt(Bytes{1, 2, 3});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("exhausted"), std::string::npos);
  EXPECT_FALSE(receive.decrypt(*last));
}

TEST(NoiseCipherState, NonceIsLittleEndianAfterFourZeroBytes) {
  // Encrypting at nonce 1 with one state must equal the state that reached nonce 1 by use,
  // and differ from a state whose counter has the bytes in the other order.
  auto [first, second] = keyed_pair();
  ASSERT_TRUE(first.encrypt(Bytes{}));
  second.set_nonce(1);
  auto a = first.encrypt(Bytes(16, 9));
  auto b = second.encrypt(Bytes(16, 9));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  CipherState big_endian;
  ASSERT_TRUE(big_endian.initialize_key(test_key(7)));
  big_endian.set_nonce(std::uint64_t{1} << 56);
  auto c = big_endian.encrypt(Bytes(16, 9));
  ASSERT_TRUE(c);
  EXPECT_NE(*a, *c);
}

TEST(NoiseCipherState, KeylessStateRefusesTransportUse) {
  CipherState keyless;
  EXPECT_FALSE(keyless.has_key());
  EXPECT_FALSE(keyless.encrypt(Bytes{1}));
  EXPECT_FALSE(keyless.decrypt(Bytes(20, 0)));
  CipherState moved_to;
  auto [keyed, unused] = keyed_pair();
  moved_to = std::move(keyed);
  EXPECT_TRUE(moved_to.has_key());
  EXPECT_FALSE(keyed.has_key());  // NOLINT(bugprone-use-after-move): documented moved-from state
  EXPECT_FALSE(keyed.encrypt(Bytes{1}));
}

TEST(NoiseFraming, HeaderIsBigEndian) {
  auto header = encode_frame_header(0x1234);
  ASSERT_TRUE(header);
  EXPECT_EQ((*header)[0], 0x12);
  EXPECT_EQ((*header)[1], 0x34);
  EXPECT_TRUE(encode_frame_header(kMaxMessage));
  EXPECT_FALSE(encode_frame_header(kMaxMessage + 1));
  Bytes out;
  EXPECT_FALSE(append_frame(Bytes(kMaxMessage + 1), out));
  EXPECT_TRUE(out.empty());
}

TEST(NoiseFraming, ReaderYieldsFramesFedByteByByte) {
  Bytes stream;
  const std::vector<std::size_t> sizes = {0, 1, 300, kMaxMessage, 2};
  for (std::size_t size : sizes) {
    ASSERT_TRUE(append_frame(Bytes(size, static_cast<std::uint8_t>(size)), stream));
  }
  FrameReader reader;
  std::vector<Bytes> frames;
  std::mt19937 random(1);
  for (std::size_t offset = 0; offset < stream.size();) {
    const std::size_t chunk = std::min<std::size_t>(stream.size() - offset, 1 + random() % 3000);
    reader.feed(ByteView(stream).subspan(offset, chunk));
    offset += chunk;
    while (auto frame = reader.next_frame())
      frames.emplace_back(frame->begin(), frame->end());
  }
  ASSERT_EQ(frames.size(), sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(frames[i], Bytes(sizes[i], static_cast<std::uint8_t>(sizes[i])));
  }
  EXPECT_EQ(reader.buffered(), 0u);
  reader.feed(Bytes{0x00});
  EXPECT_FALSE(reader.next_frame());
  EXPECT_EQ(reader.buffered(), 1u);
}

TEST(NoiseFraming, EncryptedFramesSplitLargeWrites) {
  auto [send, receive] = keyed_pair();
  Bytes plaintext(kMaxPlaintext * 2 + 10);
  for (std::size_t i = 0; i < plaintext.size(); ++i)
    plaintext[i] = static_cast<std::uint8_t>(i * 7);
  Bytes wire;
  ASSERT_TRUE(append_encrypted_frames(send, plaintext, wire));
  ASSERT_TRUE(append_encrypted_frames(send, {}, wire));
  FrameReader reader;
  reader.feed(wire);
  Bytes received;
  std::size_t frame_count = 0;
  while (auto frame = reader.next_frame()) {
    ++frame_count;
    auto opened = receive.decrypt(*frame, frame->data());  // in place, in the reader's buffer
    ASSERT_TRUE(opened) << opened.error().message;
    received.insert(received.end(), frame->begin(), frame->begin() + *opened);
  }
  EXPECT_EQ(frame_count, 4u);
  EXPECT_EQ(received, plaintext);
}

}  // namespace
}  // namespace an::p2p::noise
