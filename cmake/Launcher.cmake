# pyshim_launcher(<target> SOURCES <launcher sources>... CORE <libraries>...
#                 HOT_SOURCES <files>...)
#
# The launcher executable. Two things set it apart from the other targets.
#
# Size (target: under 1 MiB). It compiles its own copy of each of the CORE
# libraries (in dependency order: core, then os), for size (-Os), each copy
# seeing the include folders its library sees and no more (the layers are
# the same: a launcher source sees core and os, never tool), with fmt and
# toml++ built without std::locale: fmt with a fixed thousands separator
# (pyshim never formats with {:L}), toml++ parsing floats with
# std::from_chars instead of an istringstream. Either one alone pulls in
# libstdc++'s whole locale (every facet, with glibc's wide-char printf and
# scanf: about 430 KiB); the CLI keeps the usual build. It is linked
# stripped unless PYSHIM_LAUNCHER_SYMBOLS is ON (for perf record).
#
# The hot path (src/launcher/entry.cpp) runs from the ELF entry point, before
# the C library is initialised. HOT_SOURCES must not make the compiler reach
# into libc or thread-local storage behind their back: no stack protector
# (its canary is in TLS), no stack-clash probes (they touch every page of an
# alloca), no loop turned into a memcpy/memset call (IFUNCs, not resolved
# yet). These flags belong to the launcher's objects only: HOT_SOURCES are
# compiled in a library of their own (<target>_hot, seeing the first
# CORE library's headers only), so the CLI's plan.cpp and stamp.cpp keep the
# stack protector (a source file property would reach every target of the
# directory; tests/layers/check.sh reads the compile commands to prove it).
# pyshim_entry becomes the entry point, with the hot path's code and data
# laid out together (launcher-layout.ld), where that is safe: x86-64 and
# aarch64 Linux, an optimised build (at -O0 the compiler may call memcpy for
# a fixed-size copy). Elsewhere the launcher starts at glibc's _start as any
# program, and the general path does every launch.
# tests/integration/test_hot_path.py checks the result.
option(PYSHIM_LAUNCHER_SYMBOLS "Keep the symbol table in pyshim-launcher" OFF)

function(pyshim_launcher target)
  cmake_parse_arguments(ARG "" "" "SOURCES;CORE;HOT_SOURCES" ${ARGN})
  set(size_options -Os -ffunction-sections -fdata-sections)
  set(hot_options -fno-stack-protector -fno-stack-clash-protection
                  -fno-tree-loop-distribute-patterns)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    # At -Os GCC calls memset/memcpy (IFUNCs) for a struct of more than about
    # 100 bytes; optimised for speed it stores inline (up to 256 bytes), as
    # x86-64 does at -Os. Atomics inline too (the outline helpers read a flag
    # glibc sets at start-up).
    list(APPEND hot_options -O2 -mno-outline-atomics)
  endif()
  set(hot_paths)
  foreach(source ${ARG_HOT_SOURCES})
    get_filename_component(path ${source} ABSOLUTE BASE_DIR ${PROJECT_SOURCE_DIR})
    list(APPEND hot_paths ${path})
  endforeach()

  # One copy per CORE library, chained as the originals are (os links core).
  # Compile options stay PRIVATE: the hot objects must get theirs last.
  set(previous)
  set(first_copy)
  foreach(lib ${ARG_CORE})
    get_target_property(sources ${lib} SOURCES)
    get_target_property(includes ${lib} INCLUDE_DIRECTORIES)
    set(copy_sources)
    foreach(source ${sources})
      get_filename_component(path ${source} ABSOLUTE BASE_DIR ${PROJECT_SOURCE_DIR})
      if(NOT path IN_LIST hot_paths)
        list(APPEND copy_sources ${path})
      endif()
    endforeach()
    set(copy ${target}_${lib})
    add_library(${copy} STATIC ${copy_sources})
    target_include_directories(${copy} PUBLIC ${includes})
    target_link_libraries(${copy} PUBLIC ${previous} pyshim::deps)
    target_compile_definitions(${copy} PUBLIC FMT_STATIC_THOUSANDS_SEPARATOR=','
                                              TOML_FLOAT_CHARCONV=1
                                       PRIVATE PYSHIM_VERSION="${PROJECT_VERSION}")
    target_compile_options(${copy} PRIVATE ${size_options})
    pyshim_warnings(${copy})
    set(previous ${copy})
    if(NOT first_copy)
      set(first_copy ${copy})
    endif()
  endforeach()

  # The hot path's objects: the first (pure) layer's headers only. An
  # archive linked after the copies, as plan.cpp and stamp.cpp were members
  # of the core copy: inline code and constants they share with other
  # objects come from those, so only their own constants land in the hot
  # read-only section (launcher-layout.ld). pyshim_entry is pulled in by -u.
  set(hot ${target}_hot)
  add_library(${hot} STATIC ${ARG_HOT_SOURCES})
  target_link_libraries(${hot} PRIVATE ${first_copy})
  target_compile_definitions(${hot} PRIVATE PYSHIM_VERSION="${PROJECT_VERSION}")
  target_compile_options(${hot} PRIVATE ${size_options} ${hot_options})
  pyshim_warnings(${hot})

  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE ${previous} ${hot})
  target_compile_definitions(${target} PRIVATE PYSHIM_VERSION="${PROJECT_VERSION}")
  target_compile_options(${target} PRIVATE ${size_options})
  pyshim_warnings(${target})
  if(PYSHIM_STATIC)
    target_link_options(${target} PRIVATE -static -Wl,--gc-sections)
  endif()
  if(NOT PYSHIM_LAUNCHER_SYMBOLS)
    target_link_options(${target} PRIVATE -Wl,--strip-all)
  endif()

  if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|aarch64|arm64)$")
    set(layout ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/launcher-layout.ld)
    target_link_options(${target} PRIVATE
      -Wl,-u,pyshim_entry $<$<NOT:$<CONFIG:Debug>>:-Wl,-e,pyshim_entry -Wl,-T,${layout}>)
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${layout})
  endif()
endfunction()
