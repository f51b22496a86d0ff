#include "p2p/wire/protobuf.h"

#include <gtest/gtest.h>

namespace an::p2p::pb {
namespace {

TEST(ProtobufTest, WritesAndReadsEveryWireType) {
  Bytes message;
  Writer writer(message);
  writer.varint_field(1, 150);
  writer.string_field(2, "testing");
  writer.bytes_field(300, Bytes{1, 2, 3});
  // The classic example from the protobuf encoding guide: field 1 = 150 is 08 96 01.
  ASSERT_GE(message.size(), 3u);
  EXPECT_EQ(message[0], 0x08);
  EXPECT_EQ(message[1], 0x96);
  EXPECT_EQ(message[2], 0x01);
  message.insert(message.end(), {0x25, 0x01, 0x02, 0x03, 0x04});  // field 4, fixed32

  Reader reader(message);
  auto first = reader.next();
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->number, 1u);
  EXPECT_EQ((*first)->varint, 150u);
  auto second = reader.next();
  ASSERT_TRUE(second && second->has_value());
  EXPECT_EQ(as_string((*second)->bytes), "testing");
  auto third = reader.next();
  ASSERT_TRUE(third && third->has_value());
  EXPECT_EQ((*third)->number, 300u);
  EXPECT_EQ((*third)->bytes.size(), 3u);
  auto fourth = reader.next();
  ASSERT_TRUE(fourth && fourth->has_value());
  EXPECT_EQ((*fourth)->type, WireType::kFixed32);
  EXPECT_EQ((*fourth)->varint, 0x04030201u);
  auto end = reader.next();
  ASSERT_TRUE(end.has_value());
  EXPECT_FALSE(end->has_value());
}

TEST(ProtobufTest, RejectsMalformedMessages) {
  const Bytes cases[] = {
      {0x08},              // varint missing
      {0x12, 0x05, 0x01},  // length beyond the message
      {0x00, 0x01},        // field number 0
      {0x0b},              // group start (wire type 3)
      {0x0c},              // group end (wire type 4)
      {0x25, 0x01},        // truncated fixed32
      {0x09, 1, 2, 3},     // truncated fixed64
      {0x80},              // truncated key
  };
  for (const auto& bytes : cases) {
    Reader reader(bytes);
    auto field = reader.next();
    EXPECT_FALSE(field.has_value());
  }
}

}  // namespace
}  // namespace an::p2p::pb
