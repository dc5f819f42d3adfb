# pyshim_launcher(<target> SOURCES <launcher sources>... CORE <libraries>...
#                 HOT_SOURCES <files>...)
#
# The launcher executable. Two things set it apart from the other targets.
#
# Size (target: under 1 MiB). It compiles its own copy of
# the CORE libraries' sources (the layers are the same: core and os only),
# for size (-Os), with fmt and toml++ built without std::locale: fmt with a
# fixed thousands separator (pyshim never formats with {:L}), toml++ parsing
# floats with std::from_chars instead of an istringstream. Either one alone
# pulls in libstdc++'s whole locale (every facet, with glibc's wide-char
# printf and scanf: about 430 KiB); the CLI keeps the usual build. It is
# linked stripped unless PYSHIM_LAUNCHER_SYMBOLS is ON (for perf record).
#
# The hot path (src/launcher/entry.cpp) runs from the ELF entry point, before
# the C library is initialised. HOT_SOURCES must not make the compiler reach
# into libc or thread-local storage behind their back: no stack protector
# (its canary is in TLS), no stack-clash probes (they touch every page of an
# alloca), no loop turned into a memcpy/memset call (IFUNCs, not resolved
# yet). pyshim_entry becomes the entry point, with the hot path's code and
# data laid out together (launcher-layout.ld), where that is safe: x86-64 and aarch64
# Linux, an optimised build (at -O0 the compiler may call memcpy for a
# fixed-size copy). Elsewhere the launcher starts at glibc's _start as any
# program, and the general path does every launch.
# tests/integration/test_hot_path.py checks the result.
option(PYSHIM_LAUNCHER_SYMBOLS "Keep the symbol table in pyshim-launcher" OFF)

function(pyshim_launcher target)
  cmake_parse_arguments(ARG "" "" "SOURCES;CORE;HOT_SOURCES" ${ARGN})
  set(core_sources)
  foreach(lib ${ARG_CORE})
    get_target_property(sources ${lib} SOURCES)
    list(APPEND core_sources ${sources})
  endforeach()
  set(base ${target}_base)
  add_library(${base} STATIC ${core_sources})
  target_include_directories(${base} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${base} PUBLIC pyshim::deps)
  target_compile_definitions(${base} PUBLIC FMT_STATIC_THOUSANDS_SEPARATOR=','
                                            TOML_FLOAT_CHARCONV=1
                                     PRIVATE PYSHIM_VERSION="${PROJECT_VERSION}")
  target_compile_options(${base} PUBLIC -Os -ffunction-sections -fdata-sections)
  pyshim_warnings(${base})

  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE ${base})
  target_compile_definitions(${target} PRIVATE PYSHIM_VERSION="${PROJECT_VERSION}")
  pyshim_warnings(${target})
  if(PYSHIM_STATIC)
    target_link_options(${target} PRIVATE -static -Wl,--gc-sections)
  endif()
  if(NOT PYSHIM_LAUNCHER_SYMBOLS)
    target_link_options(${target} PRIVATE -Wl,--strip-all)
  endif()

  set(hot_options -fno-stack-protector -fno-stack-clash-protection
                  -fno-tree-loop-distribute-patterns)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    # At -Os GCC calls memset/memcpy (IFUNCs) for a struct of more than about
    # 100 bytes; optimised for speed it stores inline (up to 256 bytes), as
    # x86-64 does at -Os. Atomics inline too (the outline helpers read a flag
    # glibc sets at start-up).
    list(APPEND hot_options -O2 -mno-outline-atomics)
  endif()
  set_source_files_properties(${ARG_HOT_SOURCES} PROPERTIES COMPILE_OPTIONS "${hot_options}")
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|aarch64|arm64)$")
    set(layout ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/launcher-layout.ld)
    target_link_options(${target} PRIVATE
      $<$<NOT:$<CONFIG:Debug>>:-Wl,-e,pyshim_entry -Wl,-T,${layout}>)
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${layout})
  endif()
endfunction()
