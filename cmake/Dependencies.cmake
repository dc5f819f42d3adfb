# Dependencies come from Debian packages. spdlog, fmt and toml++ are used
# header-only: Debian ships them as shared libraries only, and the launcher
# must be a static binary.
find_package(fmt 9 REQUIRED)
find_package(spdlog 1.10 REQUIRED)
find_package(tomlplusplus 3 REQUIRED)
find_package(Threads REQUIRED)
find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)

add_library(pyshim_deps INTERFACE)
add_library(pyshim::deps ALIAS pyshim_deps)
target_compile_definitions(pyshim_deps INTERFACE FMT_HEADER_ONLY=1 SPDLOG_FMT_EXTERNAL=1
                                                 SPDLOG_NO_THREAD_ID=1 TOML_HEADER_ONLY=1
                                                 TOML_EXCEPTIONS=0)
get_target_property(_spdlog_inc spdlog::spdlog_header_only INTERFACE_INCLUDE_DIRECTORIES)
get_target_property(_fmt_inc fmt::fmt-header-only INTERFACE_INCLUDE_DIRECTORIES)
target_include_directories(pyshim_deps SYSTEM INTERFACE ${_fmt_inc} ${_spdlog_inc}
                                                        ${CLI11_INCLUDE_DIR})
target_link_libraries(pyshim_deps INTERFACE Threads::Threads)
