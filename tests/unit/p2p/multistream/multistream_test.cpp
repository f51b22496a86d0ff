// multistream-select 1.0: message framing, the spec's transcripts, pipelined and byte-by-byte
// input, "na" and "ls" paths, limits, malformed messages and leftover application data.
#include "p2p/multistream/multistream.h"
#include "fuzz/harness/harness.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <random>
#include <string>

namespace an::p2p::multistream {
namespace {

Bytes message(std::string_view text) {
  auto encoded = encode_message(text);
  EXPECT_TRUE(encoded.has_value()) << text;
  return encoded ? *encoded : Bytes{};
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

Bytes raw(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

Bytes output_of(Initiator& initiator) {
  Bytes out;
  initiator.take_output(out);
  return out;
}

Bytes output_of(Responder& responder) {
  Bytes out;
  responder.take_output(out);
  return out;
}

Initiator make_initiator(std::vector<std::string> protocols, InitiatorMode mode) {
  auto initiator = Initiator::create(std::move(protocols), mode);
  EXPECT_TRUE(initiator.has_value()) << initiator.error().message;
  return std::move(*initiator);
}

// ---- Messages ----

TEST(MultistreamMessage, EncodesLengthTextAndNewline) {
  // The spec's hex: "na" is 0x036e610a and "ls" is 0x036c730a.
  EXPECT_EQ(message("na"), (Bytes{0x03, 'n', 'a', '\n'}));
  EXPECT_EQ(message("ls"), (Bytes{0x03, 'l', 's', '\n'}));
  EXPECT_EQ(message(kProtocolId), concat({{0x13}, raw("/multistream/1.0.0\n")}));
}

TEST(MultistreamMessage, EncodeRefusesNewlinesAndOversizedText) {
  EXPECT_FALSE(encode_message("/a\n/b").has_value());
  EXPECT_TRUE(encode_message(std::string(kMaxMessageLength - 1, 'x')).has_value());
  auto too_long = encode_message(std::string(kMaxMessageLength, 'x'));
  ASSERT_FALSE(too_long.has_value());
  EXPECT_NE(too_long.error().message.find("1024-byte limit"), std::string::npos);
}

TEST(MultistreamMessage, ReaderYieldsPipelinedMessagesAndKeepsTheRest) {
  MessageReader reader;
  reader.feed(concat({message("/multistream/1.0.0"), message("/ipfs/id/1.0.0"), raw("tail")}));
  auto first = reader.next();
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ(**first, "/multistream/1.0.0");
  auto second = reader.next();
  ASSERT_TRUE(second && second->has_value());
  EXPECT_EQ(**second, "/ipfs/id/1.0.0");
  // "tail" reads as a length prefix of 't' (116) bytes: incomplete, not an error.
  auto third = reader.next();
  ASSERT_TRUE(third.has_value());
  EXPECT_FALSE(third->has_value());
  EXPECT_EQ(reader.take_remaining(), raw("tail"));
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(MultistreamMessage, ReaderAssemblesMessagesSplitAtEveryByte) {
  const Bytes stream = concat({message("/multistream/1.0.0"), message("na"), message("")});
  MessageReader reader;
  std::vector<std::string> seen;
  for (std::uint8_t byte : stream) {
    reader.feed(Bytes{byte});
    while (true) {
      auto next = reader.next();
      ASSERT_TRUE(next.has_value()) << next.error().message;
      if (!next->has_value()) break;
      seen.push_back(**next);
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"/multistream/1.0.0", "na", ""}));
}

TEST(MultistreamMessage, ReaderAcceptsTheLargestMessageInPieces) {
  const std::string text(kMaxMessageLength - 1, 'p');
  const Bytes encoded = message(text);
  ASSERT_EQ(encoded[0], 0x80);  // 1024 as a two-byte varint: 0x80 0x08
  ASSERT_EQ(encoded[1], 0x08);
  MessageReader reader;
  reader.feed(ByteView(encoded).first(1));
  auto pending = reader.next();
  ASSERT_TRUE(pending.has_value());
  EXPECT_FALSE(pending->has_value());
  reader.feed(ByteView(encoded).subspan(1));
  auto whole = reader.next();
  ASSERT_TRUE(whole && whole->has_value());
  EXPECT_EQ(**whole, text);
}

TEST(MultistreamMessage, ReaderRejectsMalformedMessages) {
  const auto error_for = [](const Bytes& bytes) -> std::string {
    MessageReader reader;
    reader.feed(bytes);
    auto next = reader.next();
    return next ? std::string() : next.error().message;
  };
  // 1025 bytes announced (0x81 0x08): over the limit, refused before the body arrives.
  EXPECT_NE(error_for({0x81, 0x08}).find("exceeds the 1024-byte limit"), std::string::npos);
  // A prefix still running after two bytes announces at least 16384 bytes.
  EXPECT_NE(error_for({0xff, 0xff}).find("exceeds"), std::string::npos);
  EXPECT_NE(error_for({0x00}).find("empty message"), std::string::npos);
  EXPECT_NE(error_for({0x03, 'a', 'b', 'c'}).find("newline"), std::string::npos);
  // Non-minimal varint for 3: one number, one encoding.
  EXPECT_NE(error_for({0x83, 0x00, 'n', 'a', '\n'}).find("bad message length"), std::string::npos);
}

// ---- Transcripts ----

// The spec's example with today's header: the first proposal is refused, the second accepted,
// and the accepted protocol's traffic follows in the same reads.
TEST(MultistreamTranscript, SpecExampleNaThenAcceptWithTraffic) {
  Responder responder({"/ipfs-dht/0.2.3"});
  EXPECT_EQ(output_of(responder), message("/multistream/1.0.0"));

  ASSERT_TRUE(responder
                  .receive(concat({message("/multistream/1.0.0"),
                                   message("/some-protocol-that-is-not-available")}))
                  .has_value());
  EXPECT_EQ(output_of(responder), message("na"));
  EXPECT_FALSE(responder.done());

  ASSERT_TRUE(responder.receive(concat({message("/ipfs-dht/0.2.3"), raw("<dht-traffic>")})));
  EXPECT_EQ(output_of(responder), message("/ipfs-dht/0.2.3"));
  EXPECT_TRUE(responder.done());
  EXPECT_EQ(responder.selected_protocol(), "/ipfs-dht/0.2.3");
  EXPECT_EQ(responder.take_leftover(), raw("<dht-traffic>"));

  // Later traffic is the application's too, kept until taken.
  ASSERT_TRUE(responder.receive(raw("more")));
  EXPECT_EQ(responder.take_leftover(), raw("more"));
}

TEST(MultistreamTranscript, InitiatorSideOfTheSpecExample) {
  auto initiator = make_initiator({"/some-protocol-that-is-not-available", "/ipfs-dht/0.2.3"},
                                  InitiatorMode::kOptimistic);
  EXPECT_EQ(output_of(initiator), concat({message("/multistream/1.0.0"),
                                          message("/some-protocol-that-is-not-available")}));
  ASSERT_TRUE(initiator.receive(concat({message("/multistream/1.0.0"), message("na")})));
  EXPECT_EQ(output_of(initiator), message("/ipfs-dht/0.2.3"));
  ASSERT_TRUE(initiator.receive(concat({message("/ipfs-dht/0.2.3"), raw("<dht-response-0>")})));
  EXPECT_TRUE(initiator.done());
  EXPECT_EQ(initiator.selected_protocol(), "/ipfs-dht/0.2.3");
  EXPECT_EQ(initiator.take_leftover(), raw("<dht-response-0>"));
  EXPECT_TRUE(output_of(initiator).empty());
}

// ---- Initiator ----

TEST(MultistreamInitiator, WaitForHeaderProposesOnlyAfterTheHeader) {
  auto initiator = make_initiator({"/a/1"}, InitiatorMode::kWaitForHeader);
  EXPECT_EQ(output_of(initiator), message("/multistream/1.0.0"));
  ASSERT_TRUE(initiator.receive(message("/multistream/1.0.0")));
  EXPECT_EQ(output_of(initiator), message("/a/1"));
  ASSERT_TRUE(initiator.receive(message("/a/1")));
  EXPECT_TRUE(initiator.done());
}

TEST(MultistreamInitiator, FailsWhenEveryProtocolIsRefused) {
  auto initiator = make_initiator({"/a/1", "/b/1"}, InitiatorMode::kOptimistic);
  (void)output_of(initiator);
  auto result = initiator.receive(concat({message("/multistream/1.0.0"), message("na")}));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(output_of(initiator), message("/b/1"));
  result = initiator.receive(message("na"));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message, "multistream: peer supports none of: /a/1, /b/1");
  EXPECT_FALSE(initiator.done());
  EXPECT_TRUE(initiator.selected_protocol().empty());
  // The failure is final.
  auto again = initiator.receive(message("/b/1"));
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().message, result.error().message);
  EXPECT_TRUE(initiator.take_leftover().empty());
}

TEST(MultistreamInitiator, LazySingleProtocolRefusedIsAnError) {
  auto initiator = make_initiator({"/only/1"}, InitiatorMode::kOptimistic);
  auto result = initiator.receive(concat({message("/multistream/1.0.0"), message("na")}));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("none of: /only/1"), std::string::npos);
}

TEST(MultistreamInitiator, RejectsAnotherMultistreamVersion) {
  auto initiator = make_initiator({"/a/1"}, InitiatorMode::kOptimistic);
  auto result = initiator.receive(message("/multistream/2.0.0"));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("\"/multistream/2.0.0\""), std::string::npos);
}

TEST(MultistreamInitiator, RejectsAnAnswerThatIsNeitherEchoNorNa) {
  auto initiator = make_initiator({"/a/1"}, InitiatorMode::kOptimistic);
  auto result = initiator.receive(concat({message("/multistream/1.0.0"), message("/b/1")}));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("answered \"/b/1\" to the proposal \"/a/1\""),
            std::string::npos);
}

TEST(MultistreamInitiator, EscapesPeerTextInErrors) {
  auto initiator = make_initiator({"/a/1"}, InitiatorMode::kOptimistic);
  auto result = initiator.receive(message(std::string("\x01\x7f\"", 3) + std::string(100, 'z')));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("\\x01\\x7f\\x22zz"), std::string::npos);
  EXPECT_NE(result.error().message.find("..."), std::string::npos);
}

TEST(MultistreamInitiator, CreateValidatesTheProtocols) {
  EXPECT_FALSE(Initiator::create({}).has_value());
  EXPECT_FALSE(Initiator::create({""}).has_value());
  EXPECT_FALSE(Initiator::create({"na"}).has_value());
  EXPECT_FALSE(Initiator::create({"ls"}).has_value());
  EXPECT_FALSE(Initiator::create({"/a\n"}).has_value());
  EXPECT_FALSE(Initiator::create({std::string(kMaxMessageLength, 'x')}).has_value());
  std::vector<std::string> many;
  for (std::size_t i = 0; i < kMaxProposals; ++i)
    many.push_back("/p/" + std::to_string(i));
  EXPECT_TRUE(Initiator::create(many).has_value());
  many.push_back("/one-too-many");
  auto too_many = Initiator::create(many);
  ASSERT_FALSE(too_many.has_value());
  EXPECT_NE(too_many.error().message.find("limit of 32"), std::string::npos);
}

TEST(MultistreamInitiator, ResponseSplitAtEveryByteBoundary) {
  const Bytes response =
      concat({message("/multistream/1.0.0"), message("na"), message("/b/1"), raw("app")});
  for (std::size_t split = 0; split <= response.size(); ++split) {
    auto initiator = make_initiator({"/a/1", "/b/1"}, InitiatorMode::kOptimistic);
    ASSERT_TRUE(initiator.receive(ByteView(response).first(split))) << split;
    ASSERT_TRUE(initiator.receive(ByteView(response).subspan(split))) << split;
    ASSERT_TRUE(initiator.done()) << split;
    EXPECT_EQ(initiator.selected_protocol(), "/b/1");
    EXPECT_EQ(initiator.take_leftover(), raw("app")) << split;
    EXPECT_EQ(output_of(initiator),
              concat({message("/multistream/1.0.0"), message("/a/1"), message("/b/1")}));
  }
}

// ---- Responder ----

TEST(MultistreamResponder, HeaderAndProposalInOneRead) {
  Responder responder({"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"});
  ASSERT_TRUE(
      responder.receive(concat({message("/multistream/1.0.0"), message("/ipfs/ping/1.0.0")})));
  EXPECT_EQ(output_of(responder),
            concat({message("/multistream/1.0.0"), message("/ipfs/ping/1.0.0")}));
  EXPECT_TRUE(responder.done());
  EXPECT_EQ(responder.selected_protocol(), "/ipfs/ping/1.0.0");
  EXPECT_TRUE(responder.take_leftover().empty());
}

TEST(MultistreamResponder, ListsItsProtocolsThenAccepts) {
  Responder responder({"/a", "/bc"});
  (void)output_of(responder);
  ASSERT_TRUE(responder.receive(concat({message("/multistream/1.0.0"), message("ls")})));
  // One message: each protocol as a nested message, then a final '\n' (js-libp2p, rust-libp2p).
  const Bytes expected_list = {0x0a, 0x03, '/', 'a', '\n', 0x04, '/', 'b', 'c', '\n', '\n'};
  EXPECT_EQ(output_of(responder), expected_list);
  EXPECT_FALSE(responder.done());

  // The nested entries read back with the same framing.
  MessageReader outer;
  outer.feed(expected_list);
  auto body = outer.next();
  ASSERT_TRUE(body && body->has_value());
  MessageReader inner;
  inner.feed(raw(**body));
  auto first = inner.next();
  auto second = inner.next();
  ASSERT_TRUE(first && first->has_value() && second && second->has_value());
  EXPECT_EQ(**first, "/a");
  EXPECT_EQ(**second, "/bc");

  ASSERT_TRUE(responder.receive(message("/bc")));
  EXPECT_TRUE(responder.done());
  EXPECT_EQ(output_of(responder), message("/bc"));
}

TEST(MultistreamResponder, ListAnswerStaysWithinTheMessageLimit) {
  std::vector<std::string> many;
  for (int i = 0; i < 200; ++i)
    many.push_back("/a/fairly/long/protocol/name/" + std::to_string(i));
  Responder responder(many);
  (void)output_of(responder);
  ASSERT_TRUE(responder.receive(concat({message("/multistream/1.0.0"), message("ls")})));
  const Bytes answer = output_of(responder);
  MessageReader reader;
  reader.feed(answer);
  auto body = reader.next();
  ASSERT_TRUE(body.has_value()) << body.error().message;
  ASSERT_TRUE(body->has_value());
  EXPECT_LE((*body)->size() + 1, kMaxMessageLength);
  EXPECT_GT((*body)->size(), 900u);
}

TEST(MultistreamResponder, MatcherDecidesAndListIsSeparate) {
  Responder responder([](std::string_view protocol) { return protocol.starts_with("/kad/"); },
                      {"/kad/1.0.0"});
  (void)output_of(responder);
  ASSERT_TRUE(responder.receive(concat(
      {message("/multistream/1.0.0"), message("/other/1"), message("/kad/2.0.0"), raw("x")})));
  EXPECT_EQ(output_of(responder), concat({message("na"), message("/kad/2.0.0")}));
  EXPECT_EQ(responder.selected_protocol(), "/kad/2.0.0");
  EXPECT_EQ(responder.take_leftover(), raw("x"));
}

TEST(MultistreamResponder, ProposalWithAnInnerNewlineIsNotAvailable) {
  Responder responder([](std::string_view) { return true; }, {});
  (void)output_of(responder);
  Bytes proposal = {0x06, '/', 'a', '\n', '/', 'b', '\n'};
  ASSERT_TRUE(responder.receive(concat({message("/multistream/1.0.0"), proposal})));
  EXPECT_EQ(output_of(responder), message("na"));
  EXPECT_FALSE(responder.done());
}

TEST(MultistreamResponder, RejectsAnotherMultistreamVersion) {
  Responder responder({"/a"});
  auto result = responder.receive(concat({message("/multistream/2.0.0"), message("/a")}));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("/multistream/2.0.0"), std::string::npos);
  EXPECT_FALSE(responder.done());
  EXPECT_FALSE(responder.receive(message("/a")).has_value());
}

TEST(MultistreamResponder, GivesUpAfterTooManyProposals) {
  Responder responder({"/a"});
  (void)output_of(responder);
  Bytes input = message("/multistream/1.0.0");
  for (std::size_t i = 0; i < kMaxProposals; ++i) {
    const Bytes proposal = message(i % 2 ? "ls" : "/nope/" + std::to_string(i));
    input.insert(input.end(), proposal.begin(), proposal.end());
  }
  ASSERT_TRUE(responder.receive(input));
  auto result = responder.receive(message("/a"));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("more than 32 proposals"), std::string::npos);
}

TEST(MultistreamResponder, RejectsOversizedAndTruncatedMessages) {
  Responder oversized({"/a"});
  EXPECT_FALSE(oversized.receive(Bytes{0x81, 0x08}).has_value());

  Responder no_newline({"/a"});
  EXPECT_FALSE(no_newline.receive(concat({message("/multistream/1.0.0"), {0x02, '/', 'a'}})));

  // Truncated input is not an error, just not done: the stream may deliver the rest later.
  Responder truncated({"/a"});
  const Bytes whole = concat({message("/multistream/1.0.0"), message("/a")});
  ASSERT_TRUE(truncated.receive(ByteView(whole).first(whole.size() - 1)));
  EXPECT_FALSE(truncated.done());
}

// ---- Both sides together ----

// Runs an Initiator against a Responder, delivering each side's output to the other in slices
// of `chunk` bytes, until neither has anything to say.
void converse(Initiator& initiator, Responder& responder, std::size_t chunk) {
  for (int round = 0; round < 100; ++round) {
    Bytes to_responder = output_of(initiator);
    Bytes to_initiator = output_of(responder);
    if (to_responder.empty() && to_initiator.empty()) return;
    for (std::size_t i = 0; i < to_responder.size(); i += chunk) {
      const auto part = ByteView(to_responder).subspan(i, std::min(chunk, to_responder.size() - i));
      if (!responder.receive(part)) return;
    }
    for (std::size_t i = 0; i < to_initiator.size(); i += chunk) {
      const auto part = ByteView(to_initiator).subspan(i, std::min(chunk, to_initiator.size() - i));
      if (!initiator.receive(part)) return;
    }
  }
}

TEST(MultistreamEndToEnd, BothModesAndEveryChunkSizeAgree) {
  for (auto mode : {InitiatorMode::kOptimistic, InitiatorMode::kWaitForHeader}) {
    for (std::size_t chunk = 1; chunk <= 64; ++chunk) {
      auto initiator = make_initiator({"/x/2", "/x/1", "/ipfs/ping/1.0.0"}, mode);
      Responder responder({"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"});
      converse(initiator, responder, chunk);
      ASSERT_TRUE(initiator.done()) << chunk;
      ASSERT_TRUE(responder.done()) << chunk;
      EXPECT_EQ(initiator.selected_protocol(), "/ipfs/ping/1.0.0");
      EXPECT_EQ(responder.selected_protocol(), "/ipfs/ping/1.0.0");
      EXPECT_TRUE(initiator.take_leftover().empty());
      EXPECT_TRUE(responder.take_leftover().empty());
    }
  }
}

TEST(MultistreamEndToEnd, LazyDataAfterTheProposalReachesTheResponderApplication) {
  auto initiator = make_initiator({"/ipfs/ping/1.0.0"}, InitiatorMode::kOptimistic);
  Bytes wire = output_of(initiator);
  const Bytes ping(32, 0xab);
  wire.insert(wire.end(), ping.begin(), ping.end());
  Responder responder({"/ipfs/ping/1.0.0"});
  ASSERT_TRUE(responder.receive(wire));
  EXPECT_TRUE(responder.done());
  EXPECT_EQ(responder.take_leftover(), ping);
  // The responder's answer plus its echo reach the initiator in one read.
  Bytes answer = output_of(responder);
  answer.insert(answer.end(), ping.begin(), ping.end());
  ASSERT_TRUE(initiator.receive(answer));
  EXPECT_TRUE(initiator.done());
  EXPECT_EQ(initiator.take_leftover(), ping);
}

TEST(MultistreamEndToEnd, NoCommonProtocolFailsCleanly) {
  auto initiator = make_initiator({"/a/1", "/a/2"}, InitiatorMode::kOptimistic);
  Responder responder({"/b/1"});
  converse(initiator, responder, 7);
  EXPECT_FALSE(initiator.done());
  EXPECT_FALSE(responder.done());
  auto result = initiator.receive({});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message, "multistream: peer supports none of: /a/1, /a/2");
}

// ---- Hostile input ----

TEST(MultistreamHostile, RandomBytesNeverCrash) {
  std::mt19937 random(1234);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(0, 300);
  const Bytes header = message(kProtocolId);
  for (int round = 0; round < 3000; ++round) {
    Bytes input(length(random));
    for (auto& value : input)
      value = static_cast<std::uint8_t>(byte(random));
    // Half the inputs start with a valid header so that the later states are reached too.
    if (round % 2) input.insert(input.begin(), header.begin(), header.end());
    fuzz::multistream(input.data(), input.size());
  }
  // Structured garbage: many small messages, each a plausible proposal.
  for (int round = 0; round < 200; ++round) {
    Bytes input = {0x00};
    for (int i = 0; i < 50; ++i) {
      const Bytes part = message(i == 0 ? std::string(kProtocolId) : std::to_string(byte(random)));
      input.insert(input.end(), part.begin(), part.end());
    }
    fuzz::multistream(input.data(), input.size());
  }
}

}  // namespace
}  // namespace an::p2p::multistream
