// The pubsub RPC codec, message IDs and StrictSign signatures.
//
// How the byte vectors were derived: from go-libp2p-pubsub's pb/rpc.proto (the same field
// numbers in js and libp2p/specs pubsub/README.md) and protobuf's wire format: a field's key is
// (number << 3 | wire type), length-delimited fields (type 2) carry a varint length, bools and
// the PRUNE backoff are varints (type 0), fields in field-number order and optional fields
// written whenever they are set, as go's generated Marshal does.
//
// The cross-implementation vectors were produced by @libp2p/gossipsub 17.1.1 (js-libp2p) with the
// keys of libp2p/specs peer-ids.md (spec_key_vectors.h): its RPC.Message.encode of
// { from, data "hello from js", seqno 17f0a1b2c3d4e5f6, topic "agents/broadcast" }, signed over
// "libp2p-pubsub:" + that encoding by the key (as its buildRawMessage does), the key attached (js
// always attaches it), checked by its validateToRawMessage(StrictSign), and RPC.encode of
// { subscriptions: [{ subscribe: true, topic: "agents/broadcast" }], messages: [that message] }.
#include "p2p/pubsub/rpc.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "fuzz/harness/harness.h"
#include "p2p/crypto/key.h"
#include "support/hex.h"
#include "unit/p2p/crypto/spec_key_vectors.h"

namespace an::p2p::pubsub {
namespace {

using test::from_hex;

Bytes text(std::string_view value) {
  return Bytes(value.begin(), value.end());
}

const std::string kJsTopic = "agents/broadcast";
const Bytes kJsSeqno = from_hex("17f0a1b2c3d4e5f6");

constexpr std::string_view kJsEd25519Rpc =
    "0a14080112106167656e74732f62726f61646361737412bb010a260024080112201ed1e8fae2c4a144b8be8fd4b4"
    "7bf3d3b34b871c3cacf6010f0e42d474fce27e120d68656c6c6f2066726f6d206a731a0817f0a1b2c3d4e5f62210"
    "6167656e74732f62726f6164636173742a409c2dee7824fbb7749c8650b991fe41a0be75ef1f01ced60279662dca"
    "af3c94a20ae221e33659ffc6acd30c179f1dc54c2aab543ba0d6ab0079dc57e5ec98cb063224080112201ed1e8fa"
    "e2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
constexpr std::string_view kJsEd25519Signature =
    "9c2dee7824fbb7749c8650b991fe41a0be75ef1f01ced60279662dcaaf3c94a20ae221e33659ffc6acd30c179f1d"
    "c54c2aab543ba0d6ab0079dc57e5ec98cb06";
constexpr std::string_view kJsSecp256k1Rpc =
    "0a14080112106167656e74732f62726f61646361737412c4010a27002508021221037777e994e452c21604f91de0"
    "93ce415f5432f701dd8cd1a7a6fea0e630bfca99120d68656c6c6f2066726f6d206a731a0817f0a1b2c3d4e5f622"
    "106167656e74732f62726f6164636173742a473045022100b7943ca8761e1acc1792e2f09b8932966713c58dd6fc"
    "f1e72dc887b0b786110102204a2a750455a6daf31e17581d515ddef28fb1202a0688ef72a80372845a5bc27c3225"
    "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";
constexpr std::string_view kJsRsaSignature =
    "c17ce431e77fa9e7b01997fa126a3f534378eb0147b2d59f36ae8c970bfa3f4e20b71e42f5292c604c94bd1987c3"
    "6ae6480016dc5d50b174d32e09f28ccc4c7b34b86bec68df0d2f2dc276990e1d799f411936b5b64974e752e574ab"
    "4203eb0d02945fb633cc738d751f98e9f09762884cecd602a484eb5fb0dd8e720ae7c4f1ac5e2d805ef00067bb3c"
    "349049f6a2edf6131107bce085810dec11c405bbce8dd6b0d667bf3f4be31924659828c14fae8c826e50d6d5756e"
    "3bddc1431c2a7faa3fe344151702bd3c4556a4555c4d88833019fa533eb0beaeb519befa23dc8c0f02bf18f79877"
    "425fbbc240b1c265285c64afdeec1732f92ac0b1a3ccd79f86c256275a9c53a72d3219cdde46bdaf69c5fec15bd5"
    "bf55dae33a570f4e7f7aface9d96cd5994586f195f0f6303188a5186147dde9d0e276053abb9c7a8f526fdc426cb"
    "38c62647350eea0e27e6592ec9dde042cadd1b7c1fed1d82ff308157bb588b1c0a5c9258da6ebbff66f905f54ecb"
    "439f94ca325ef5d889e3fe40218147d45bd7b96180fb53f210b1c5dde66a910960f10660317269adc53e25deea65"
    "fe23230340ee20f67752907837870ec0111f469be8a318bd85527c1bb4dcb2c2c614ce91d35e92cd868937f055b0"
    "6dabea8b8b3c8bcbfbc08c1f72dfd5a79681dd03290dd2c988fcce91bba41e7081124020014f0219f94766679c06"
    "7745073a9554";

PrivateKey spec_key(std::string_view private_hex) {
  auto key = PrivateKey::from_protobuf(from_hex(private_hex));
  if (!key) std::abort();
  return *key;
}

// The message js signed, before signing.
Message js_message(const PrivateKey& key) {
  Message message;
  message.from = key.peer_id().bytes();
  message.data = text("hello from js");
  message.seqno = kJsSeqno;
  message.topic = kJsTopic;
  return message;
}

// One of every kind of entry, with hand-derived bytes below.
Rpc full_rpc() {
  Rpc rpc;
  rpc.subscriptions = {{true, "t"}};
  Message message;
  message.from = {0x01, 0x02};
  message.data = {0x03};
  message.seqno = from_hex("0000000000000005");
  message.topic = "t";
  message.signature = {0x09};
  rpc.publish = {message};
  ControlMessage control;
  control.ihave = {{"t", {{0xaa}}}};
  control.iwant = {{{{0xbb}}}};
  control.graft = {{"g"}};
  control.prune = {{"p", {{{0x01}, {}}}, 60}};
  control.idontwant = {{{{0xcc}}}};
  rpc.control = control;
  return rpc;
}

constexpr std::string_view kFullRpc =
    "0a050801120174"                                // SubOpts{subscribe 1, topic "t"}
    "12170a0201021201031a080000000000000005220174"  // Message from, data, seqno, topic
    "2a0109"                                        //   signature
    "1a23"                                          // ControlMessage of 35 bytes
    "0a060a01741201aa"                              //   IHAVE{topic "t", id aa}
    "12030a01bb"                                    //   IWANT{id bb}
    "1a030a0167"                                    //   GRAFT{topic "g"}
    "220a0a017012030a0101183c"                      //   PRUNE{"p", PeerInfo{01}, 60}
    "2a030a01cc";                                   //   IDONTWANT{id cc}

TEST(PubSubProtocol, IdsParseAndPrint) {
  for (auto protocol : {PeerProtocol::kFloodsub, PeerProtocol::kMeshsub10, PeerProtocol::kMeshsub11,
                        PeerProtocol::kMeshsub12}) {
    EXPECT_EQ(parse_protocol_id(protocol_id(protocol)), protocol);
  }
  EXPECT_EQ(protocol_id(PeerProtocol::kMeshsub11), "/meshsub/1.1.0");
  EXPECT_EQ(protocol_id(PeerProtocol::kFloodsub), "/floodsub/1.0.0");
  EXPECT_FALSE(parse_protocol_id("/meshsub/2.0.0"));
  EXPECT_FALSE(parse_protocol_id(""));
}

TEST(PubSubRpcEncode, EveryFieldAsHandDerived) {
  EXPECT_EQ(to_hex(encode_rpc(full_rpc())), kFullRpc);
  auto decoded = decode_rpc(from_hex(kFullRpc));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, full_rpc());
}

TEST(PubSubRpcEncode, EmptyRpcAndUnsubscribe) {
  EXPECT_TRUE(encode_rpc(Rpc{}).empty());
  Rpc rpc;
  rpc.subscriptions = {{false, "ab"}};
  // go writes subscribe=false as 08 00 (the field is set, not omitted).
  EXPECT_EQ(to_hex(encode_rpc(rpc)), "0a06080012026162");
  // An empty control message is still a field.
  Rpc with_control;
  with_control.control.emplace();
  EXPECT_EQ(to_hex(encode_rpc(with_control)), "1a00");
}

TEST(PubSubRpcEncode, EmptyDataIsWrittenUnlessItArrivedAbsent) {
  Rpc rpc;
  rpc.publish.emplace_back().topic = "t";
  EXPECT_EQ(to_hex(encode_rpc(rpc)), "12051200220174");
  rpc.publish[0].data_absent = true;
  EXPECT_EQ(to_hex(encode_rpc(rpc)), "1203220174");
  for (std::string_view hex : {"12051200220174", "1203220174"}) {
    auto decoded = decode_rpc(from_hex(hex));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(to_hex(encode_rpc(*decoded)), hex);
  }
}

TEST(PubSubRpcEncode, PruneWithoutBackoffAndWithARecord) {
  Rpc rpc;
  rpc.control.emplace().prune = {{"p", {{{0x01}, {0x02, 0x03}}}, std::nullopt}};
  // PRUNE{topic "p", PeerInfo{peerID 01, signedPeerRecord 0203}}, no backoff field.
  EXPECT_EQ(to_hex(encode_rpc(rpc)), "1a0e220c0a017012070a010112020203");
  auto decoded = decode_rpc(encode_rpc(rpc));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, rpc);
}

TEST(PubSubRpcDecode, SkipsUnknownFieldsAndMergesControl) {
  // An unknown varint field 15 at the top and in a message, then two control fields.
  const Bytes body = from_hex(
      "7801"
      "1207"
      "220174"
      "780f"
      "7801"
      "1a05"
      "1a030a0167"  // GRAFT "g"
      "1a05"
      "12030a01bb");  // IWANT bb
  auto decoded = decode_rpc(body);
  ASSERT_TRUE(decoded) << decoded.error().message;
  ASSERT_EQ(decoded->publish.size(), 1u);
  EXPECT_EQ(decoded->publish[0].topic, "t");
  ASSERT_TRUE(decoded->control);
  EXPECT_EQ(decoded->control->graft, (std::vector<ControlGraft>{{"g"}}));
  ASSERT_EQ(decoded->control->iwant.size(), 1u);
  EXPECT_EQ(decoded->control->iwant[0].message_ids, (std::vector<MessageId>{{0xbb}}));
}

TEST(PubSubRpcDecode, RefusesTruncatedInput) {
  const Bytes whole = from_hex(kFullRpc);
  // Cutting inside the control field (the last one) always leaves a length past the end.
  for (std::size_t cut = whole.size() - 37 + 1; cut < whole.size(); ++cut) {
    EXPECT_FALSE(decode_rpc(ByteView(whole).first(cut))) << cut;
  }
  // Cuts anywhere either fail or decode something else; never the whole RPC.
  for (std::size_t cut = 0; cut < whole.size(); ++cut) {
    auto decoded = decode_rpc(ByteView(whole).first(cut));
    if (decoded) {
      EXPECT_NE(*decoded, full_rpc()) << cut;
    }
  }
}

TEST(PubSubRpcDecode, RefusesWrongWireTypesAndBadFieldKeys) {
  EXPECT_FALSE(decode_rpc(from_hex("0801")));          // subscriptions as a varint
  EXPECT_FALSE(decode_rpc(from_hex("0a020a00")));      // SubOpts.subscribe length-delimited
  EXPECT_FALSE(decode_rpc(from_hex("12020801")));      // Message.from as a varint
  EXPECT_FALSE(decode_rpc(from_hex("1a040a020801")));  // IHAVE topic as a varint
  EXPECT_FALSE(decode_rpc(from_hex("1a0422021a00")));  // PRUNE backoff length-delimited
  EXPECT_FALSE(decode_rpc(from_hex("0001")));          // field number 0
  EXPECT_FALSE(decode_rpc(from_hex("0b")));            // a group
  EXPECT_FALSE(decode_rpc(from_hex("0aff")));          // truncated length
}

TEST(PubSubRpcDecode, RefusesAFrameOverTheSizeLimit) {
  Rpc rpc;
  rpc.publish.emplace_back().data.assign(kMaxRpcSize, 0x61);
  const Bytes body = encode_rpc(rpc);
  ASSERT_GT(body.size(), kMaxRpcSize);
  EXPECT_FALSE(decode_rpc(body));
  rpc.publish[0].data.resize(kMaxDataSize);
  auto fits = decode_rpc(encode_rpc(rpc));
  ASSERT_TRUE(fits) << fits.error().message;
  EXPECT_EQ(fits->publish[0].data.size(), kMaxDataSize);
}

TEST(PubSubRpcDecode, RefusesTopicsOverTheLimitWhereverTheyAre) {
  const std::string longest(kMaxTopicLength, 'x');
  const std::string over(kMaxTopicLength + 1, 'x');
  auto with_topic = [](int where, const std::string& topic) {
    Rpc rpc;
    switch (where) {
      case 0:
        rpc.subscriptions = {{true, topic}};
        break;
      case 1:
        rpc.publish.emplace_back().topic = topic;
        break;
      case 2:
        rpc.control.emplace().ihave = {{topic, {}}};
        break;
      case 3:
        rpc.control.emplace().graft = {{topic}};
        break;
      default:
        rpc.control.emplace().prune = {{topic, {}, std::nullopt}};
        break;
    }
    return encode_rpc(rpc);
  };
  for (int where = 0; where < 5; ++where) {
    EXPECT_TRUE(decode_rpc(with_topic(where, longest))) << where;
    auto refused = decode_rpc(with_topic(where, over));
    ASSERT_FALSE(refused) << where;
    EXPECT_NE(refused.error().message.find("topic"), std::string::npos);
  }
}

TEST(PubSubRpcDecode, RefusesRpcsOverEachCountLimit) {
  RpcLimits limits;
  limits.max_subscriptions = 3;
  limits.max_messages = 2;
  limits.max_control_entries = 4;
  limits.max_message_ids = 5;
  limits.max_prune_peers = 2;

  Rpc subs;
  subs.subscriptions.assign(3, SubOpts{true, "t"});
  EXPECT_TRUE(decode_rpc(encode_rpc(subs), limits));
  subs.subscriptions.push_back({false, "u"});
  EXPECT_FALSE(decode_rpc(encode_rpc(subs), limits));

  Rpc messages;
  messages.publish.assign(2, Message{});
  EXPECT_TRUE(decode_rpc(encode_rpc(messages), limits));
  messages.publish.emplace_back();
  EXPECT_FALSE(decode_rpc(encode_rpc(messages), limits));

  // Entries of all five kinds count together.
  Rpc entries;
  auto& control = entries.control.emplace();
  control.graft = {{"a"}, {"b"}};
  control.ihave = {{"a", {}}};
  control.idontwant = {{}};
  EXPECT_TRUE(decode_rpc(encode_rpc(entries), limits));
  control.iwant = {{}};
  EXPECT_FALSE(decode_rpc(encode_rpc(entries), limits));

  // IDs of IHAVE, IWANT and IDONTWANT count together.
  Rpc ids;
  auto& id_control = ids.control.emplace();
  id_control.ihave = {{"a", {{1}, {2}}}};
  id_control.iwant = {{{{3}, {4}}}};
  id_control.idontwant = {{{{5}}}};
  EXPECT_TRUE(decode_rpc(encode_rpc(ids), limits));
  id_control.idontwant[0].message_ids.push_back({6});
  EXPECT_FALSE(decode_rpc(encode_rpc(ids), limits));

  // PX peers over all PRUNEs.
  Rpc prunes;
  auto& prune_control = prunes.control.emplace();
  prune_control.prune = {{"a", {{{1}, {}}}, 1}, {"b", {{{2}, {}}}, 1}};
  EXPECT_TRUE(decode_rpc(encode_rpc(prunes), limits));
  prune_control.prune[1].peers.push_back({{3}, {}});
  EXPECT_FALSE(decode_rpc(encode_rpc(prunes), limits));

  // The defaults refuse go's IHAVE flood beyond MaxIHaveLength.
  Rpc flood;
  flood.control.emplace().ihave.push_back({"t", {}});
  for (int i = 0; i < 5001; ++i)
    flood.control->ihave[0].message_ids.push_back({static_cast<std::uint8_t>(i)});
  EXPECT_FALSE(decode_rpc(encode_rpc(flood)));
  flood.control->ihave[0].message_ids.pop_back();
  EXPECT_TRUE(decode_rpc(encode_rpc(flood)));
}

// The entries of `parts`, flattened in order, as the original RPC holds them.
struct Flattened {
  std::vector<Message> publish;
  std::vector<SubOpts> subscriptions;
  std::vector<ControlGraft> graft;
  std::vector<ControlPrune> prune;
  std::vector<std::pair<std::string, MessageId>> ihave;
  std::vector<MessageId> iwant;
  std::vector<MessageId> idontwant;
  bool operator==(const Flattened&) const = default;
};

Flattened flatten(const std::vector<Rpc>& parts) {
  Flattened out;
  for (const auto& rpc : parts) {
    out.publish.insert(out.publish.end(), rpc.publish.begin(), rpc.publish.end());
    out.subscriptions.insert(out.subscriptions.end(), rpc.subscriptions.begin(),
                             rpc.subscriptions.end());
    if (!rpc.control) continue;
    out.graft.insert(out.graft.end(), rpc.control->graft.begin(), rpc.control->graft.end());
    out.prune.insert(out.prune.end(), rpc.control->prune.begin(), rpc.control->prune.end());
    for (const auto& ihave : rpc.control->ihave) {
      for (const auto& id : ihave.message_ids)
        out.ihave.emplace_back(ihave.topic, id);
    }
    for (const auto& iwant : rpc.control->iwant)
      out.iwant.insert(out.iwant.end(), iwant.message_ids.begin(), iwant.message_ids.end());
    for (const auto& idontwant : rpc.control->idontwant) {
      out.idontwant.insert(out.idontwant.end(), idontwant.message_ids.begin(),
                           idontwant.message_ids.end());
    }
  }
  return out;
}

TEST(PubSubRpcSplit, ASmallRpcStaysWhole) {
  auto parts = split_rpc(full_rpc(), 1000);
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0], full_rpc());
  // Exactly the size fits.
  auto exact = split_rpc(full_rpc(), encode_rpc(full_rpc()).size());
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->size(), 1u);
}

TEST(PubSubRpcSplit, MessagesGoIntoAsManyRpcsAsNeeded) {
  Rpc rpc;
  for (int i = 0; i < 10; ++i) {
    Message message;
    message.topic = "t";
    message.data.assign(100, static_cast<std::uint8_t>(i));
    rpc.publish.push_back(message);
  }
  rpc.subscriptions = {{true, "t"}};
  // One message is 2 + 105 bytes: two fit in 250.
  auto parts = split_rpc(rpc, 250);
  ASSERT_TRUE(parts) << parts.error().message;
  EXPECT_EQ(parts->size(), 5u);
  for (const auto& part : *parts)
    EXPECT_LE(encode_rpc(part).size(), 250u);
  EXPECT_EQ(flatten(*parts), flatten({rpc}));
}

TEST(PubSubRpcSplit, LongIdListsAreCutAndIHavesKeepTheirTopic) {
  Rpc rpc;
  auto& control = rpc.control.emplace();
  control.graft = {{"g"}};
  control.ihave.push_back({"topic-a", {}});
  control.iwant.emplace_back();
  for (int i = 0; i < 300; ++i) {
    control.ihave[0].message_ids.push_back(Bytes(20, static_cast<std::uint8_t>(i)));
    control.iwant[0].message_ids.push_back(Bytes(20, static_cast<std::uint8_t>(i + 1)));
  }
  control.idontwant = {{{Bytes(20, 7)}}};
  auto parts = split_rpc(rpc, 1000);
  ASSERT_TRUE(parts) << parts.error().message;
  EXPECT_GT(parts->size(), 10u);
  for (const auto& part : *parts) {
    EXPECT_LE(encode_rpc(part).size(), 1000u);
    ASSERT_TRUE(part.control);
    for (const auto& ihave : part.control->ihave)
      EXPECT_EQ(ihave.topic, "topic-a");
  }
  EXPECT_EQ(flatten(*parts), flatten({rpc}));
}

TEST(PubSubRpcSplit, RefusesAMessageThatCannotFitAlone) {
  Rpc rpc;
  rpc.publish.emplace_back().data.assign(300, 1);
  EXPECT_FALSE(split_rpc(rpc, 200));
  Rpc id;
  id.control.emplace().iwant = {{{Bytes(300, 1)}}};
  EXPECT_FALSE(split_rpc(id, 200));
}

TEST(PubSubRpcSplit, RandomRpcsSplitIntoPartsThatFitAndKeepEverything) {
  std::mt19937 random(11);
  auto below = [&](int bound) { return static_cast<int>(random() % static_cast<unsigned>(bound)); };
  auto bytes = [&](int max_length) {
    Bytes out(static_cast<std::size_t>(below(max_length + 1)));
    for (auto& byte : out)
      byte = static_cast<std::uint8_t>(random());
    return out;
  };
  for (int round = 0; round < 200; ++round) {
    Rpc rpc;
    for (int i = below(5); i > 0; --i)
      rpc.subscriptions.push_back({below(2) == 1, std::string(below(30), 's')});
    for (int i = below(6); i > 0; --i) {
      Message message;
      message.from = bytes(38);
      message.data = bytes(120);
      message.seqno = bytes(8);
      message.topic = std::string(below(20), 'm');
      message.signature = bytes(64);
      rpc.publish.push_back(message);
    }
    if (below(4) != 0) {
      auto& control = rpc.control.emplace();
      for (int i = below(4); i > 0; --i) {
        control.ihave.push_back({std::string(below(20), 'h'), {}});
        for (int j = below(40); j > 0; --j)
          control.ihave.back().message_ids.push_back(bytes(46));
      }
      for (int i = below(3); i > 0; --i) {
        control.iwant.emplace_back();
        for (int j = below(40); j > 0; --j)
          control.iwant.back().message_ids.push_back(bytes(46));
      }
      for (int i = below(3); i > 0; --i)
        control.graft.push_back({std::string(below(20), 'g')});
      for (int i = below(3); i > 0; --i)
        control.prune.push_back({"p", {{bytes(38), bytes(30)}}, 60});
      for (int i = below(2); i > 0; --i) {
        control.idontwant.emplace_back();
        for (int j = below(40); j > 0; --j)
          control.idontwant.back().message_ids.push_back(bytes(46));
      }
    }
    const std::size_t max_size = 260 + static_cast<std::size_t>(below(2000));
    auto parts = split_rpc(rpc, max_size);
    ASSERT_TRUE(parts) << parts.error().message;
    for (const auto& part : *parts) {
      EXPECT_LE(encode_rpc(part).size(), max_size);
      EXPECT_FALSE(part.empty() && parts->size() > 1);
    }
    EXPECT_EQ(flatten(*parts), flatten({rpc})) << round;
  }
}

TEST(PubSubMessageId, IsFromThenSeqno) {
  Message message;
  message.from = {0x00, 0x24, 0x08};
  message.seqno = from_hex("0000000000000001");
  EXPECT_EQ(to_hex(default_message_id(message)), "0024080000000000000001");
}

TEST(PubSubSign, Ed25519SignatureIsJsSignatureAndVerifies) {
  const PrivateKey key = spec_key(spec_vectors::kEd25519Private);
  Message message = js_message(key);
  auto signed_ok = sign_message(message, key);
  ASSERT_TRUE(signed_ok) << signed_ok.error().message;
  // Ed25519 signatures are deterministic: the same bytes signed give js's signature.
  EXPECT_EQ(to_hex(message.signature), kJsEd25519Signature);
  EXPECT_EQ(message.from, key.peer_id().bytes());
  EXPECT_TRUE(message.key.empty());  // inlined in the peer ID: go leaves the key out
  auto author = verify_message(message);
  ASSERT_TRUE(author) << author.error().message;
  EXPECT_EQ(*author, key.peer_id());
}

TEST(PubSubSign, AnyChangedBitFailsVerification) {
  const PrivateKey key = spec_key(spec_vectors::kEd25519Private);
  Message message = js_message(key);
  ASSERT_TRUE(sign_message(message, key));
  for (Bytes Message::*field : {&Message::data, &Message::seqno, &Message::signature}) {
    Message changed = message;
    (changed.*field)[0] ^= 0x01;
    EXPECT_FALSE(verify_message(changed));
  }
  Message topic = message;
  topic.topic[0] ^= 0x01;
  EXPECT_FALSE(verify_message(topic));
  Message absent = message;
  absent.data.clear();
  EXPECT_FALSE(verify_message(absent));
}

TEST(PubSubSign, VerifiesJsEd25519AndSecp256k1Rpcs) {
  for (auto [rpc_hex, private_hex] :
       {std::pair{kJsEd25519Rpc, spec_vectors::kEd25519Private},
        std::pair{kJsSecp256k1Rpc, spec_vectors::kSecp256k1Private}}) {
    const PrivateKey key = spec_key(private_hex);
    auto rpc = decode_rpc(from_hex(rpc_hex));
    ASSERT_TRUE(rpc) << rpc.error().message;
    EXPECT_EQ(rpc->subscriptions, (std::vector<SubOpts>{{true, kJsTopic}}));
    ASSERT_EQ(rpc->publish.size(), 1u);
    const Message& message = rpc->publish[0];
    EXPECT_EQ(message.data, text("hello from js"));
    EXPECT_EQ(message.key, key.public_key().protobuf());  // js attaches it even when inlined
    auto author = verify_message(message);
    ASSERT_TRUE(author) << author.error().message;
    EXPECT_EQ(*author, key.peer_id());
    // Re-encoded byte for byte, so that what we forward verifies at go and js peers.
    EXPECT_EQ(to_hex(encode_rpc(*rpc)), rpc_hex);
  }
}

TEST(PubSubSign, Secp256k1AuthorsSignAndVerify) {
  const PrivateKey key = spec_key(spec_vectors::kSecp256k1Private);
  Message message = js_message(key);
  ASSERT_TRUE(sign_message(message, key));
  EXPECT_TRUE(message.key.empty());  // 16Uiu2... IDs inline the key
  auto author = verify_message(message);
  ASSERT_TRUE(author) << author.error().message;
  EXPECT_EQ(*author, key.peer_id());
  message.data.back() ^= 0x80;
  EXPECT_FALSE(verify_message(message));
}

TEST(PubSubSign, RsaAuthorsAttachTheirKey) {
  const PrivateKey key = spec_key(spec_vectors::kRsaPrivate);
  Message message = js_message(key);
  ASSERT_TRUE(sign_message(message, key));
  // PKCS#1 v1.5 is deterministic: js's signature of the same bytes.
  EXPECT_EQ(to_hex(message.signature), kJsRsaSignature);
  EXPECT_EQ(to_hex(message.key), spec_vectors::kRsaPublic);
  auto author = verify_message(message);
  ASSERT_TRUE(author) << author.error().message;
  EXPECT_EQ(*author, key.peer_id());

  Message without_key = message;
  without_key.key.clear();  // a hashed ID inlines no key
  EXPECT_FALSE(verify_message(without_key));

  // A key that verifies the signature but is not the author's: refused.
  const PrivateKey other = spec_key(spec_vectors::kEd25519Private);
  Message impostor = js_message(other);
  ASSERT_TRUE(sign_message(impostor, other));
  impostor.key = key.public_key().protobuf();
  auto refused = verify_message(impostor);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("does not match"), std::string::npos);
  Message garbage_key = message;
  garbage_key.key = {0x08, 0x00, 0x12, 0x01, 0x00};
  EXPECT_FALSE(verify_message(garbage_key));
}

TEST(PubSubSign, StrictSignRefusesIncompleteMessages) {
  const PrivateKey key = spec_key(spec_vectors::kEd25519Private);
  Message message = js_message(key);
  ASSERT_TRUE(sign_message(message, key));

  Message no_from = message;
  no_from.from.clear();
  EXPECT_FALSE(verify_message(no_from));
  Message bad_from = message;
  bad_from.from = {0x12, 0x03, 0x01};
  EXPECT_FALSE(verify_message(bad_from));
  Message no_seqno = message;
  no_seqno.seqno.clear();
  EXPECT_FALSE(verify_message(no_seqno));
  Message short_seqno = message;
  short_seqno.seqno.pop_back();
  EXPECT_FALSE(verify_message(short_seqno));
  Message unsigned_message = message;
  unsigned_message.signature.clear();
  EXPECT_FALSE(verify_message(unsigned_message));

  Message no_seqno_to_sign = js_message(key);
  no_seqno_to_sign.seqno.clear();
  EXPECT_FALSE(sign_message(no_seqno_to_sign, key));
}

TEST(PubSubSign, AbsentDataIsSignedAsAbsent) {
  const PrivateKey key = spec_key(spec_vectors::kEd25519Private);
  Message message = js_message(key);
  message.data.clear();
  message.data_absent = true;
  ASSERT_TRUE(sign_message(message, key));
  Rpc rpc;
  rpc.publish = {message};
  auto decoded = decode_rpc(encode_rpc(rpc));
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(decoded->publish[0].data_absent);
  EXPECT_TRUE(verify_message(decoded->publish[0]));
  // The same message with an empty data field is other bytes.
  Message present = decoded->publish[0];
  present.data_absent = false;
  EXPECT_FALSE(verify_message(present));
}

TEST(PubSubRpcHostile, MutatedAndRandomRpcsNeverCrash) {
  std::mt19937 random(29);
  const PrivateKey key = spec_key(spec_vectors::kEd25519Private);
  Rpc rpc = full_rpc();
  Message signed_message = js_message(key);
  ASSERT_TRUE(sign_message(signed_message, key));
  rpc.publish.push_back(signed_message);
  const Bytes valid = encode_rpc(rpc);
  for (int round = 0; round < 5000; ++round) {
    Bytes input = valid;
    for (int flips = 1 + round % 5; flips > 0; --flips)
      input[random() % input.size()] = static_cast<std::uint8_t>(random());
    if (round % 4 == 0) input.resize(random() % input.size());
    fuzz::pubsub_rpc(input.data(), input.size());
  }
  for (int round = 0; round < 2000; ++round) {
    Bytes input(random() % 200);
    for (auto& byte : input)
      byte = static_cast<std::uint8_t>(random());
    fuzz::pubsub_rpc(input.data(), input.size());
  }
  fuzz::pubsub_rpc(nullptr, 0);
}

}  // namespace
}  // namespace an::p2p::pubsub
