// Windows helpers shared by the platform implementation files; see windows_support.h.
#include "daemon/windows/windows_support.h"

#include <io.h>
#include <sddl.h>

#include <cerrno>
#include <climits>
#include <system_error>
#include <vector>

namespace an::daemon::win {

std::string to_utf8(std::wstring_view text) {
  if (text.empty()) return {};
  if (text.size() > static_cast<std::size_t>(INT_MAX)) return {};
  const int wide_length = static_cast<int>(text.size());
  int length =
      ::WideCharToMultiByte(CP_UTF8, 0, text.data(), wide_length, nullptr, 0, nullptr, nullptr);
  if (length <= 0) return {};
  std::string result(static_cast<std::size_t>(length), '\0');
  ::WideCharToMultiByte(CP_UTF8, 0, text.data(), wide_length, result.data(), length, nullptr,
                        nullptr);
  return result;
}

std::wstring to_wide(std::string_view text) {
  if (text.empty()) return {};
  if (text.size() > static_cast<std::size_t>(INT_MAX)) return {};
  const int narrow_length = static_cast<int>(text.size());
  int length = ::MultiByteToWideChar(CP_UTF8, 0, text.data(), narrow_length, nullptr, 0);
  if (length <= 0) return {};
  std::wstring result(static_cast<std::size_t>(length), L'\0');
  ::MultiByteToWideChar(CP_UTF8, 0, text.data(), narrow_length, result.data(), length);
  return result;
}

std::string error_text(DWORD error) {
  wchar_t* buffer = nullptr;
  // FORMAT_MESSAGE_IGNORE_INSERTS: some messages contain %1 placeholders we cannot fill.
  DWORD length = ::FormatMessageW(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
      nullptr, error, 0, reinterpret_cast<wchar_t*>(&buffer), 0, nullptr);
  std::wstring text;
  if (length > 0 && buffer != nullptr) text.assign(buffer, length);
  if (buffer != nullptr) ::LocalFree(buffer);
  // System messages end in ".\r\n"; the caller's sentence continues after them.
  while (!text.empty() && (text.back() == L'\r' || text.back() == L'\n' || text.back() == L' ' ||
                           text.back() == L'.')) {
    text.pop_back();
  }
  std::string result = to_utf8(text);
  if (result.empty()) return "error " + std::to_string(error);
  return result + " (error " + std::to_string(error) + ")";
}

tl::unexpected<Error> fail_win(const std::string& what, DWORD error) {
  return fail(what + ": " + error_text(error),
              std::error_code(static_cast<int>(error), std::system_category()));
}

namespace {

// The current user's SID as text ("S-1-5-21-..."), empty on failure (GetLastError set).
std::wstring current_user_sid(std::vector<unsigned char>& token_user) {
  HANDLE raw_token = nullptr;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &raw_token)) return {};
  UniqueHandle token(raw_token);
  DWORD size = 0;
  ::GetTokenInformation(token.get(), TokenUser, nullptr, 0, &size);
  if (size == 0) return {};
  token_user.resize(size);
  if (!::GetTokenInformation(token.get(), TokenUser, token_user.data(), size, &size)) return {};
  auto* user = reinterpret_cast<TOKEN_USER*>(token_user.data());
  wchar_t* sid_text = nullptr;
  if (!::ConvertSidToStringSidW(user->User.Sid, &sid_text)) return {};
  std::wstring result(sid_text);
  ::LocalFree(sid_text);
  return result;
}

}  // namespace

OwnerOnlySecurity::OwnerOnlySecurity(bool directory) {
  std::vector<unsigned char> token_user;
  std::wstring sid = current_user_sid(token_user);
  if (sid.empty()) {
    error_ = ::GetLastError();
    return;
  }
  // "P": protected, so nothing is inherited from the parent directory. FA = full access; OICI
  // makes files and subdirectories created inside a private directory private as well.
  const std::wstring inherit = directory ? L"OICI" : L"";
  std::wstring sddl = L"D:P(A;" + inherit + L";FA;;;" + sid + L")(A;" + inherit + L";FA;;;SY)";
  if (!::ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1,
                                                              &descriptor_, nullptr)) {
    error_ = ::GetLastError();
    descriptor_ = nullptr;
    return;
  }
  attributes_.nLength = sizeof(attributes_);
  attributes_.lpSecurityDescriptor = descriptor_;
  attributes_.bInheritHandle = FALSE;
}

OwnerOnlySecurity::~OwnerOnlySecurity() {
  if (descriptor_ != nullptr) ::LocalFree(descriptor_);
}

std::wstring current_user_account() {
  std::vector<unsigned char> token_user;
  if (current_user_sid(token_user).empty()) return {};
  auto* user = reinterpret_cast<TOKEN_USER*>(token_user.data());
  wchar_t name[256];
  wchar_t domain[256];
  DWORD name_size = 256;
  DWORD domain_size = 256;
  SID_NAME_USE use;
  if (!::LookupAccountSidW(nullptr, user->User.Sid, name, &name_size, domain, &domain_size, &use)) {
    return {};
  }
  std::wstring account(domain, domain_size);
  if (!account.empty()) account += L'\\';
  account.append(name, name_size);
  return account;
}

Expected<void> install_standard_stream(int fd, HANDLE source, int open_flags) {
  static constexpr DWORD kStdIds[] = {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE};
  HANDLE duplicate = nullptr;
  // Inheritable, as standard handles are: children started with inheritance get them.
  if (!::DuplicateHandle(::GetCurrentProcess(), source, ::GetCurrentProcess(), &duplicate, 0, TRUE,
                         DUPLICATE_SAME_ACCESS)) {
    DWORD error = ::GetLastError();
    return fail_win("cannot duplicate a handle for standard stream " + std::to_string(fd), error);
  }
  int temp_fd = ::_open_osfhandle(reinterpret_cast<intptr_t>(duplicate), open_flags);
  if (temp_fd < 0) {
    ::CloseHandle(duplicate);
    return fail_errno("cannot attach a handle to the C runtime");
  }

  // _dup2 closes the handle `fd` had. When another standard descriptor shares that very handle
  // (a parent passed one handle as both stdout and stderr), closing it would leave the other
  // descriptor with a dangling value that the next DuplicateHandle may hand out again, and a
  // later _dup2 would then close an unrelated handle. Protecting it keeps it open until the
  // last descriptor using it lets go.
  HANDLE old = reinterpret_cast<HANDLE>(::_get_osfhandle(fd));
  bool shared = false;
  if (old != INVALID_HANDLE_VALUE && old != nullptr) {
    for (int other = 0; other <= 2; ++other) {
      if (other != fd && reinterpret_cast<HANDLE>(::_get_osfhandle(other)) == old) shared = true;
    }
  }
  if (shared) {
    ::SetHandleInformation(old, HANDLE_FLAG_PROTECT_FROM_CLOSE, HANDLE_FLAG_PROTECT_FROM_CLOSE);
  }
  int rc = ::_dup2(temp_fd, fd);
  int err = errno;
  if (shared) ::SetHandleInformation(old, HANDLE_FLAG_PROTECT_FROM_CLOSE, 0);
  ::_close(temp_fd);
  if (rc != 0) return fail_errno("cannot redirect standard stream " + std::to_string(fd), err);

  HANDLE installed = reinterpret_cast<HANDLE>(::_get_osfhandle(fd));
  if (!::SetStdHandle(kStdIds[fd], installed)) {
    DWORD error = ::GetLastError();
    return fail_win("cannot set standard handle " + std::to_string(fd), error);
  }
  return {};
}

}  // namespace an::daemon::win
