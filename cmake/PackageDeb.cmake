# The Debian package: `bash scripts/dev.sh package` -> pyshim_<version>_amd64.deb.
#
# Generated here, at build time, from the built CLI so they cannot drift from
# it: the man pages (help2man over `pyshim --help` and `pyshim CMD --help`)
# and the bash completion (pyshim-docgen over the same CLI11 definition).
# Written at configure time: the machine-readable copyright file (from
# LICENSE) and the changelog. The install() rules that put these in place are
# in CMakeLists.txt; this file sets up what they install and the CPack
# settings.
#
# Why CPack's DEB generator and not debian/ + dpkg-buildpackage: the install
# layout is already written once, in CMakeLists.txt's install() rules, and
# CPack packages exactly that, with the version from project(); it runs
# dpkg-shlibdeps for Depends and writes md5sums; and it needs no source
# package, debhelper or fakeroot. What it does not do (man pages, completion,
# changelog, copyright) is generated below.

set(PYSHIM_DEB_MAINTAINER "The pyshim developers <pyshim@example.org>"
    CACHE STRING "Maintainer field of the Debian package: Name <address>")

find_program(PYSHIM_HELP2MAN help2man)
find_program(PYSHIM_GZIP gzip REQUIRED)
if(NOT PYSHIM_HELP2MAN)
  message(WARNING "help2man not found (Debian package help2man): no man pages; "
                  "`scripts/dev.sh package` installs it")
endif()

set(PYSHIM_DOC_DIR ${CMAKE_CURRENT_BINARY_DIR}/doc)
file(MAKE_DIRECTORY ${PYSHIM_DOC_DIR})

# A build-time helper that prints what the CLI defines; not installed.
add_executable(pyshim-docgen packaging/docgen.cpp)
target_link_libraries(pyshim-docgen PRIVATE pyshim_tool)
pyshim_warnings(pyshim-docgen)
if(CMAKE_CROSSCOMPILING)
  # Run under qemu-user at build time (cmake/aarch64-linux-gnu.cmake): static,
  # so it needs no target loader or libraries on the build machine.
  target_link_options(pyshim-docgen PRIVATE -static)
endif()

set(PYSHIM_COMPLETION ${PYSHIM_DOC_DIR}/bash-completion/pyshim)
add_custom_command(
  OUTPUT ${PYSHIM_COMPLETION}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PYSHIM_DOC_DIR}/bash-completion
  COMMAND ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:pyshim-docgen> bash-completion ${PYSHIM_COMPLETION}
  DEPENDS pyshim-docgen
  COMMENT "Generating the bash completion from the CLI's definition"
  VERBATIM)
set(PYSHIM_DOC_OUTPUTS ${PYSHIM_COMPLETION})

set(PYSHIM_MAN_DIR ${PYSHIM_DOC_DIR}/man)
if(PYSHIM_HELP2MAN)
  # One output stands for the folder: the script writes a page per
  # subcommand, whatever the subcommands are.
  add_custom_command(
    OUTPUT ${PYSHIM_MAN_DIR}/pyshim.1.gz
    COMMAND ${CMAKE_COMMAND} -DPYSHIM=$<TARGET_FILE:pyshim> -DDOCGEN=$<TARGET_FILE:pyshim-docgen>
            -DHELP2MAN=${PYSHIM_HELP2MAN} -DGZIP=${PYSHIM_GZIP} -DVERSION=${PROJECT_VERSION}
            -DOUT=${PYSHIM_MAN_DIR} -P ${CMAKE_CURRENT_SOURCE_DIR}/packaging/man.cmake
    DEPENDS pyshim pyshim-docgen ${CMAKE_CURRENT_SOURCE_DIR}/packaging/man.cmake
    COMMENT "Generating the man pages from pyshim --help"
    VERBATIM)
  list(APPEND PYSHIM_DOC_OUTPUTS ${PYSHIM_MAN_DIR}/pyshim.1.gz)
endif()

# Debian's compressed docs: -n keeps the name and time out of the .gz.
foreach(doc changelog README.md)
  if(doc STREQUAL "changelog")
    set(source ${PYSHIM_DOC_DIR}/changelog)
  else()
    set(source ${CMAKE_CURRENT_SOURCE_DIR}/${doc})
  endif()
  add_custom_command(
    OUTPUT ${PYSHIM_DOC_DIR}/${doc}.gz
    COMMAND ${PYSHIM_GZIP} -9nc ${source} > ${PYSHIM_DOC_DIR}/${doc}.gz
    DEPENDS ${source})
  list(APPEND PYSHIM_DOC_OUTPUTS ${PYSHIM_DOC_DIR}/${doc}.gz)
endforeach()
add_custom_target(pyshim-docs ALL DEPENDS ${PYSHIM_DOC_OUTPUTS})

# The changelog lintian asks for (a native package: changelog.gz). Its date
# follows SOURCE_DATE_EPOCH when set, for reproducible packages.
string(TIMESTAMP PYSHIM_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(packaging/changelog.in ${PYSHIM_DOC_DIR}/changelog @ONLY)

# The machine-readable copyright file (DEP-5), from LICENSE. Debian names
# this license text (the MIT license) "Expat".
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE)
file(READ ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE pyshim_license)
if(NOT pyshim_license MATCHES "Copyright \\(c\\) ([^\n]+)\n+(.*)$")
  message(FATAL_ERROR "LICENSE: no 'Copyright (c) ...' line followed by the license text")
endif()
set(pyshim_holder "${CMAKE_MATCH_1}")
string(STRIP "${CMAKE_MATCH_2}" pyshim_license_text)
string(REGEX REPLACE "\n\n" "\n.\n" pyshim_license_text "${pyshim_license_text}")
string(REGEX REPLACE "\n" "\n " pyshim_license_text "${pyshim_license_text}")
file(WRITE ${PYSHIM_DOC_DIR}/copyright
     "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
     "Upstream-Name: pyshim\n"
     "\n"
     "Files: *\n"
     "Copyright: ${pyshim_holder}\n"
     "License: Expat\n"
     " ${pyshim_license_text}\n")

# CPack: one package of everything installed, under /usr.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pyshim)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "static launcher that stands in for the Python interpreter")
# Read here rather than named as CPACK_PACKAGE_DESCRIPTION_FILE, which CPack
# reads XML-escaped ("environment&apos;s" in the control file).
file(READ ${CMAKE_CURRENT_SOURCE_DIR}/packaging/description.txt CPACK_DEBIAN_PACKAGE_DESCRIPTION)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${CMAKE_CURRENT_SOURCE_DIR}/packaging/description.txt)
set(CPACK_PACKAGE_CONTACT "${PYSHIM_DEB_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # pyshim_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${PYSHIM_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: the two executables are static and the restore library needs no
# library (CMakeLists.txt), so dpkg-shlibdeps finds nothing; what remains is
# the glibc floor of the interpreters it serves (README).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.17)")
if(PYSHIM_DEB_ARCH)
  # A cross build (cmake/aarch64-linux-gnu.cmake): dpkg-shlibdeps cannot read
  # the other architecture's libc6 on the build machine. The restore library
  # needs nothing newer than glibc 2.17 (tests/integration/test_glibc_floor.py).
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${PYSHIM_DEB_ARCH})
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.17)")
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_SOURCE_GENERATOR "")
