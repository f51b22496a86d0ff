// Helpers shared by the Windows implementation files of platform.h: handle conversion, UTF-8 <->
// UTF-16, error messages from Win32 error codes, an owning HANDLE and the owner-only security
// descriptor. Internal to src/daemon/windows; everything here is safe from any thread.
#pragma once

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/platform.h"

namespace an::daemon::win {

// INVALID_HANDLE_VALUE is (HANDLE)-1, the same bits as kInvalidHandle; NULL, which some APIs
// return instead, is folded into kInvalidHandle too so callers test one value only.
inline HANDLE to_handle(NativeHandle handle) {
  return handle == kInvalidHandle ? INVALID_HANDLE_VALUE : reinterpret_cast<HANDLE>(handle);
}
inline NativeHandle from_handle(HANDLE handle) {
  if (handle == nullptr || handle == INVALID_HANDLE_VALUE) return kInvalidHandle;
  return reinterpret_cast<NativeHandle>(handle);
}
inline void close_quietly(NativeHandle& handle) {
  if (handle != kInvalidHandle) {
    ::CloseHandle(to_handle(handle));
    handle = kInvalidHandle;
  }
}

// Owns one HANDLE for the length of a function; NULL and INVALID_HANDLE_VALUE both mean "none".
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(HANDLE handle) : handle_(from_handle(handle)) {}
  UniqueHandle(UniqueHandle&& other) noexcept
      : handle_(std::exchange(other.handle_, kInvalidHandle)) {}
  UniqueHandle& operator=(UniqueHandle&& other) noexcept {
    if (this != &other) {
      close_quietly(handle_);
      handle_ = std::exchange(other.handle_, kInvalidHandle);
    }
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  ~UniqueHandle() { close_quietly(handle_); }

  bool valid() const { return handle_ != kInvalidHandle; }
  HANDLE get() const { return to_handle(handle_); }
  NativeHandle release() { return std::exchange(handle_, kInvalidHandle); }

 private:
  NativeHandle handle_ = kInvalidHandle;
};

std::string to_utf8(std::wstring_view text);
std::wstring to_wide(std::string_view text);
// A path for messages, in UTF-8 whatever the ANSI code page (path::string() may throw).
inline std::string display(const std::filesystem::path& path) {
  return to_utf8(path.native());
}

// The system's text for a Win32 error code, in UTF-8, with the code appended.
std::string error_text(DWORD error);

// "what: <system text> (error N)" with the code kept. Take GetLastError() into a variable first:
// building `what` may run code that changes it.
tl::unexpected<Error> fail_win(const std::string& what, DWORD error);

// Security attributes that give access to the current user and SYSTEM only, not inherited from
// the parent directory: the Windows counterpart of mode 0600 (files) and 0700 (directories,
// whose entries inherit it). Null `get()` when it could not be built.
class OwnerOnlySecurity {
 public:
  explicit OwnerOnlySecurity(bool directory);
  OwnerOnlySecurity(const OwnerOnlySecurity&) = delete;
  OwnerOnlySecurity& operator=(const OwnerOnlySecurity&) = delete;
  ~OwnerOnlySecurity();

  SECURITY_ATTRIBUTES* get() { return descriptor_ != nullptr ? &attributes_ : nullptr; }
  DWORD error() const { return error_; }

 private:
  PSECURITY_DESCRIPTOR descriptor_ = nullptr;
  SECURITY_ATTRIBUTES attributes_{};
  DWORD error_ = ERROR_SUCCESS;
};

// Points C runtime descriptor `fd` (0, 1 or 2) and the matching Win32 standard handle at a
// duplicate of `source`, so that printf, std::cerr and GetStdHandle users all land there. The
// handle `fd` had before is closed. `open_flags` as for _open_osfhandle.
Expected<void> install_standard_stream(int fd, HANDLE source, int open_flags);

// The current user as "DOMAIN\name" for messages and commands; empty if it cannot be found.
std::wstring current_user_account();

}  // namespace an::daemon::win
