// The libp2p key encodings: PublicKey / PrivateKey protobuf messages (peer-ids spec), written
// and parsed by hand. Pure functions: any thread may call them; the caller owns every buffer.
#pragma once

#include <cstdint>
#include <string_view>

#include "p2p/crypto/ed25519.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p {

// Values of the protobuf KeyType enum.
enum class KeyType : std::uint8_t { kRsa = 0, kEd25519 = 1, kSecp256k1 = 2, kEcdsa = 3 };

// "RSA", "Ed25519", "Secp256k1", "ECDSA".
std::string_view key_type_name(KeyType type);

// The two fields of either message, `data` pointing into the parsed buffer.
struct KeyMessage {
  KeyType type = KeyType::kEd25519;
  ByteView data;
};

// Checks the message structure only (both fields present once, nothing else), whatever the key
// type: enough to hash a peer's public key into its peer ID. Errors start with "not a libp2p
// public key: " / "not a libp2p private key: ".
Expected<KeyMessage> parse_public_key_message(ByteView message);
Expected<KeyMessage> parse_private_key_message(ByteView message);

// Either message (they have the same layout): Type, then Data.
Bytes encode_key_message(KeyType type, ByteView data);

// The Ed25519-only forms, behind PublicKey / PrivateKey of key.h (which handle every type).
// 0x08 0x01 0x12 0x20 followed by the 32 key bytes.
Bytes encode_public_key(const Ed25519PublicKey& key);
// Other key types give "an RSA key where an Ed25519 key was expected" (etc.).
Expected<Ed25519PublicKey> decode_public_key(ByteView message);

// Data is the 32-byte seed followed by the 32-byte public key, as go-libp2p writes it. The
// result holds the secret: wipe it with secure_wipe when done.
Expected<Bytes> encode_private_key(const Ed25519PrivateKey& key);
// Accepts the 64-byte form and the legacy 96-byte form (seed, public key, public key) and
// checks that the stored public key is the one the seed derives ("corrupt key" otherwise).
Expected<Ed25519PrivateKey> decode_private_key(ByteView message);

// Overwrites the bytes in a way the compiler may not optimize out, then empties the buffer.
void secure_wipe(Bytes& secret);

}  // namespace an::p2p
