#include "node/identity.h"

#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "daemon/platform.h"
#include "p2p/crypto/keys.h"

namespace an::node {
namespace {

std::string describe(const std::filesystem::path& path) {
  return path.string();
}

tl::unexpected<Error> fail_code(const std::string& what, std::error_code code) {
  return fail(what + ": " + code.message(), code);
}

// Keeps a buffer that held a secret from outliving its use in readable memory.
struct WipedOnExit {
  p2p::Bytes& secret;
  ~WipedOnExit() { p2p::secure_wipe(secret); }
};

std::string_view as_text(const p2p::Bytes& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Expected<p2p::Bytes> read_key_file(const std::filesystem::path& key_file) {
  const std::string name = describe(key_file);
  std::error_code error;
  const auto status = std::filesystem::status(key_file, error);
  if (error) {
    if (error == std::errc::no_such_file_or_directory) {
      return fail("key file " + name + " does not exist", error);
    }
    return fail_code("cannot read key file " + name, error);
  }
  if (status.type() == std::filesystem::file_type::not_found) {
    return fail("key file " + name + " does not exist",
                std::make_error_code(std::errc::no_such_file_or_directory));
  }
  if (status.type() == std::filesystem::file_type::directory) {
    return fail("key file " + name + " is a directory, not a file");
  }
  if (status.type() != std::filesystem::file_type::regular) {
    return fail("key file " + name + " is not a regular file");
  }
  // Before reading a single byte: a key others can read may already be someone else's.
  if (const std::string loose = daemon::describe_loose_permissions(key_file); !loose.empty()) {
    return fail("refusing to use key file " + name + ": " + loose +
                "; a private key must be readable by its owner only. Fix it with: " +
                daemon::private_permissions_fix(key_file));
  }
  const auto size = std::filesystem::file_size(key_file, error);
  if (error) return fail_code("cannot read key file " + name, error);
  if (size > kMaxKeyFileSize) {
    return fail("key file " + name + " is " + std::to_string(size) +
                " bytes, too large for a key (at most " + std::to_string(kMaxKeyFileSize) +
                "): is it the right file?");
  }

  std::ifstream stream(key_file, std::ios::binary);
  if (!stream) return fail_errno("cannot read key file " + name);
  // Read one byte past the cap, in case the file grew since it was measured.
  p2p::Bytes content(static_cast<std::size_t>(kMaxKeyFileSize) + 1);
  stream.read(reinterpret_cast<char*>(content.data()),
              static_cast<std::streamsize>(content.size()));
  if (stream.bad()) {
    p2p::secure_wipe(content);
    return fail("cannot read key file " + name + ": read error");
  }
  content.resize(static_cast<std::size_t>(stream.gcount()));
  if (content.size() > kMaxKeyFileSize) {
    p2p::secure_wipe(content);
    return fail("key file " + name + " is larger than " + std::to_string(kMaxKeyFileSize) +
                " bytes, too large for a key: is it the right file?");
  }
  return content;
}

Expected<Identity> identity_from_key(p2p::PrivateKey key) {
  p2p::PeerId peer_id = key.peer_id();
  return Identity{std::move(key), std::move(peer_id)};
}

// A fresh key and the file content that stores it.
struct NewKey {
  Identity identity;
  p2p::Bytes encoded;
};

Expected<NewKey> new_key(p2p::KeyType type, unsigned rsa_bits) {
  auto key = p2p::PrivateKey::generate(type, rsa_bits);
  if (!key) return tl::unexpected(key.error());
  auto encoded = key->to_protobuf();
  if (!encoded) return tl::unexpected(encoded.error());
  auto identity = identity_from_key(std::move(*key));
  if (!identity) return tl::unexpected(identity.error());
  return NewKey{std::move(*identity), std::move(*encoded)};
}

Expected<void> make_parent_directory(const std::filesystem::path& key_file) {
  const auto parent = key_file.parent_path();
  if (parent.empty()) return {};
  std::error_code error;
  if (std::filesystem::is_directory(parent, error)) return {};
  auto made = daemon::make_directory(parent, /*owner_only=*/true);
  if (!made) {
    return fail("cannot create the directory of key file " + describe(key_file) + ": " +
                    made.error().message,
                made.error().code);
  }
  return {};
}

bool exists_or_unknown(const std::filesystem::path& path, std::error_code& error) {
  const auto status = std::filesystem::symlink_status(path, error);
  if (error == std::errc::no_such_file_or_directory) error.clear();
  return !error && status.type() != std::filesystem::file_type::not_found;
}

}  // namespace

Expected<Identity> load_identity(const std::filesystem::path& key_file) {
  auto content = read_key_file(key_file);
  if (!content) return tl::unexpected(content.error());
  WipedOnExit wipe{*content};
  if (content->empty()) {
    return fail("key file " + describe(key_file) + " is empty (was it truncated?)");
  }
  auto key = p2p::PrivateKey::from_protobuf(*content);
  if (!key) return fail("key file " + describe(key_file) + ": " + key.error().message);
  return identity_from_key(std::move(*key));
}

Expected<std::pair<Identity, bool>> load_or_create_identity(const std::filesystem::path& key_file) {
  std::error_code error;
  if (exists_or_unknown(key_file, error) || error) {
    // Also when the check itself failed: load_identity then explains why the file is unusable.
    auto identity = load_identity(key_file);
    if (!identity) return tl::unexpected(identity.error());
    return std::pair<Identity, bool>{std::move(*identity), false};
  }

  if (auto made = make_parent_directory(key_file); !made) return tl::unexpected(made.error());
  auto fresh = new_key(p2p::KeyType::kEd25519, p2p::kDefaultRsaBits);
  if (!fresh) return tl::unexpected(fresh.error());
  WipedOnExit wipe{fresh->encoded};
  auto created =
      daemon::create_file_exclusively(key_file, as_text(fresh->encoded), /*owner_only=*/true);
  if (!created) {
    return fail("cannot create key file " + describe(key_file) + ": " + created.error().message,
                created.error().code);
  }
  if (created->already_exists) {
    // Another process or thread won the race: its key is the node's key.
    auto identity = load_identity(key_file);
    if (!identity) return tl::unexpected(identity.error());
    return std::pair<Identity, bool>{std::move(*identity), false};
  }
  return std::pair<Identity, bool>{std::move(fresh->identity), true};
}

Expected<Identity> generate_identity(const std::filesystem::path& key_file, bool force,
                                     p2p::KeyType type, unsigned rsa_bits) {
  const std::string name = describe(key_file);
  std::error_code error;
  const bool exists = exists_or_unknown(key_file, error);
  if (error) return fail_code("cannot check key file " + name, error);

  std::filesystem::path backup = key_file;
  backup += ".bak";
  if (exists) {
    if (std::filesystem::is_directory(std::filesystem::symlink_status(key_file, error))) {
      return fail("key file " + name + " is a directory, not a file; not replacing it");
    }
    if (!force) {
      auto current = load_identity(key_file);
      const std::string what = current
                                   ? "it holds the identity of peer " + current->peer_id.to_string()
                                   : "it is unusable (" + current.error().message + ")";
      return fail("key file " + name + " already exists; " + what +
                  ". Use -force to replace it (the old file is kept as " + backup.string() + ")");
    }
  } else if (auto made = make_parent_directory(key_file); !made) {
    return tl::unexpected(made.error());
  }

  auto fresh = new_key(type, rsa_bits);
  if (!fresh) return tl::unexpected(fresh.error());
  WipedOnExit wipe{fresh->encoded};

  if (!exists) {
    auto created =
        daemon::create_file_exclusively(key_file, as_text(fresh->encoded), /*owner_only=*/true);
    if (!created) {
      return fail("cannot create key file " + name + ": " + created.error().message,
                  created.error().code);
    }
    if (created->already_exists) {
      return fail("key file " + name +
                  " was created by someone else meanwhile; use -force to replace it");
    }
    return std::move(fresh->identity);
  }

  std::filesystem::rename(key_file, backup, error);
  if (error) {
    return fail_code("cannot keep the old key file " + name + " as " + backup.string(), error);
  }
  auto written =
      daemon::write_file_atomically(key_file, as_text(fresh->encoded), /*owner_only=*/true);
  if (!written) {
    // Put the old key back rather than leave the node without one.
    std::error_code restore_error;
    std::filesystem::rename(backup, key_file, restore_error);
    return fail("cannot write key file " + name + ": " + written.error().message +
                    (restore_error ? "; the old key is in " + backup.string()
                                   : "; the old key was left in place"),
                written.error().code);
  }
  return std::move(fresh->identity);
}

}  // namespace an::node
