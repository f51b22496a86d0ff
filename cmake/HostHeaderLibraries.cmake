# Cross builds (MinGW-w64) have no target packages of tl-expected, fmt, spdlog and
# nlohmann_json, but all four work header-only. This takes the build machine's headers
# (AN_HOST_INCLUDE_DIR, /usr/include by default) through a directory holding links to just those
# four, so that no other host header can shadow the target's C library headers, and defines the
# same imported targets find_package would.
set(AN_HOST_INCLUDE_DIR /usr/include CACHE PATH "Where the header-only libraries are found for cross builds")
set(host_headers_dir ${CMAKE_BINARY_DIR}/host-headers)
file(MAKE_DIRECTORY ${host_headers_dir})
foreach(library tl fmt spdlog nlohmann)
  if(NOT IS_DIRECTORY ${AN_HOST_INCLUDE_DIR}/${library})
    message(FATAL_ERROR "${AN_HOST_INCLUDE_DIR}/${library} not found: install libexpected-dev, "
                        "libfmt-dev, libspdlog-dev and nlohmann-json3-dev")
  endif()
  file(CREATE_LINK ${AN_HOST_INCLUDE_DIR}/${library} ${host_headers_dir}/${library} SYMBOLIC)
endforeach()

add_library(an_host_headers INTERFACE)
target_include_directories(an_host_headers SYSTEM INTERFACE ${host_headers_dir})

add_library(tl::expected INTERFACE IMPORTED)
target_link_libraries(tl::expected INTERFACE an_host_headers)
add_library(fmt::fmt INTERFACE IMPORTED)
target_link_libraries(fmt::fmt INTERFACE an_host_headers)
target_compile_definitions(fmt::fmt INTERFACE FMT_HEADER_ONLY)
add_library(spdlog::spdlog INTERFACE IMPORTED)
target_link_libraries(spdlog::spdlog INTERFACE fmt::fmt)
target_compile_definitions(spdlog::spdlog INTERFACE SPDLOG_HEADER_ONLY SPDLOG_FMT_EXTERNAL)
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
target_link_libraries(nlohmann_json::nlohmann_json INTERFACE an_host_headers)

# GoogleTest from the sources Debian ships in `googletest`.
set(AN_GOOGLETEST_SOURCE_DIR /usr/src/googletest CACHE PATH "GoogleTest sources for cross builds")
