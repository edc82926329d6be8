# Debian package of getflags: both programs, their man pages and bash
# completions, and the flag mirror in /usr/share/getflags/flags_data.
#
#   cmake -S . -B build && cmake --build build
#   cd build && cpack -G DEB           # getflags_0.1.0-1_amd64.deb
#
# The binaries are built with dpkg-buildflags' hardening flags
# (cmake/Hardening.cmake, -DGETFLAGS_HARDEN=OFF to turn it off), the
# package's changelog.Debian is packaging/changelog.Debian, and lintian finds
# no error in it (tests/integration/package_deb_test.sh checks that).
#
# Depends comes from dpkg-shlibdeps (package dpkg-dev) run on the staged
# binaries, with the bounds for libcurl and libuv raised to what the code
# needs; without dpkg-shlibdeps, or with "cpack -D GF_DPKG_SHLIBDEPS=OFF",
# a fixed list of Debian 12 package names is used instead.
#
# Included from the top-level CMakeLists.txt (include(cmake/Packaging.cmake)),
# after include(cmake/Docs.cmake).
#
# This file has a second role: cpack runs it again, as a pre-build script
# (CPACK_PRE_BUILD_SCRIPTS), once the files are staged, to work out the
# package's Depends from the staged binaries; see the end of the file.

if(DEFINED PROJECT_NAME)
  include(GNUInstallDirs)
  include("${CMAKE_CURRENT_LIST_DIR}/Hardening.cmake")
  # Read by the package test: whether lintian must find the binaries hardened.
  set(CPACK_GF_HARDENED ${GF_HARDEN_ACTIVE})

  # A packager building their own package puts their name here.
  set(GETFLAGS_DEB_MAINTAINER "The getflags developers <getflags@example.org>"
      CACHE STRING "Maintainer field of the Debian package: Name <address>")

  # The libraries' lowest versions the code needs, as the top-level
  # CMakeLists.txt asks pkg-config for them (libuv>=1.44, libcurl>=7.85).
  # dpkg-shlibdeps only sees symbols, and curl_easy_setopt options such as
  # CURLOPT_PROTOCOLS_STR (7.85) are not symbols, so its bounds are too low.
  set(CPACK_GF_DEB_MIN_VERSIONS "libcurl=7.85;libuv=1.44")
  # Used when dpkg-shlibdeps is not installed: Debian 12's package names.
  set(CPACK_GF_DEB_FALLBACK_DEPENDS
      "libc6 (>= 2.34), libcjson1 (>= 1.7.13), libcurl4 (>= 7.87), libhttp-parser2.9 (>= 2.1), libssl3 (>= 3.0.0), libuv1 (>= 1.44), zlib1g (>= 1:1.1.4)")

  set(CPACK_PACKAGE_NAME getflags)
  set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
  set(CPACK_PACKAGE_VENDOR "getflags developers")
  set(CPACK_PACKAGE_CONTACT "${GETFLAGS_DEB_MAINTAINER}")
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "concurrent downloader of country flags, with its test server")
  set(CPACK_PACKAGE_DESCRIPTION
      "getflags downloads country flag images from a web server, many requests at
once, on one libuv event loop driving libcurl. It behaves on the command line
as the flags2 scripts of the book Fluent Python do (same options, same
reports) and is meant for trying out and benchmarking concurrency settings.

flagserver, the companion test server, serves the bundled flag mirror of 194
countries locally, optionally with delays and errors, as the LOCAL, DELAY and
ERROR servers of getflags.")
  set(CPACK_GENERATOR DEB)
  set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
  set(CPACK_STRIP_FILES ON)
  set(CPACK_VERBATIM_VARIABLES ON)

  set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${GETFLAGS_DEB_MAINTAINER}")
  set(CPACK_DEBIAN_PACKAGE_SECTION net)
  set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
  # REMOTE is https: libcurl needs the system's CA certificates for it.
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS ca-certificates)

  # /usr/share/doc/getflags/changelog.Debian.gz, whose newest entry names the
  # package's version: its Debian revision is the package's.
  set(gf_changelog "${PROJECT_SOURCE_DIR}/packaging/changelog.Debian")
  set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${gf_changelog}")
  file(STRINGS "${gf_changelog}" gf_line LIMIT_COUNT 1)
  if(NOT gf_line MATCHES "^getflags \\(([^)]+)-([^-)]+)\\) ")
    message(FATAL_ERROR "${gf_changelog}: the first line is not 'getflags (VERSION-REVISION) ...'")
  endif()
  set(CPACK_DEBIAN_PACKAGE_RELEASE "${CMAKE_MATCH_2}")
  if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
    # Not fatal for a build; the package test fails on it.
    message(WARNING "${gf_changelog} has no entry for ${PROJECT_VERSION} (newest: ${CMAKE_MATCH_1}): "
                    "add one before building a package")
  endif()
  if(GF_GZIP)
    add_custom_command(
      OUTPUT "${PROJECT_BINARY_DIR}/doc/changelog.Debian.gz"
      COMMAND "${GF_GZIP}" -9 -n -c "${gf_changelog}" > changelog.Debian.gz
      DEPENDS "${gf_changelog}"
      WORKING_DIRECTORY "${PROJECT_BINARY_DIR}/doc"
      COMMENT "Compressing changelog.Debian")
    add_custom_target(getflags_changelog ALL DEPENDS "${PROJECT_BINARY_DIR}/doc/changelog.Debian.gz")
    install(FILES "${PROJECT_BINARY_DIR}/doc/changelog.Debian.gz" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
  else()
    message(STATUS "getflags: no gzip; changelog.Debian is packaged uncompressed, which lintian refuses")
    install(FILES "${gf_changelog}" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
  endif()
  unset(gf_changelog)
  unset(gf_line)
  # Tags lintian reports that do not apply to this package, each with why.
  install(FILES "${PROJECT_SOURCE_DIR}/packaging/lintian-overrides"
          DESTINATION "${CMAKE_INSTALL_DATADIR}/lintian/overrides" RENAME getflags)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS bash-completion)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
  # Depends is filled in by this file at cpack time; dpkg-shlibdeps is run
  # there directly rather than through CPACK_DEBIAN_PACKAGE_SHLIBDEPS, so
  # that its bounds can be raised to the ones above.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${CPACK_GF_DEB_FALLBACK_DEPENDS}")
  set(CPACK_PRE_BUILD_SCRIPTS "${CMAKE_CURRENT_LIST_FILE}")

  # Source packages (cpack --config CPackSourceConfig.cmake) leave out the
  # build trees and version control.
  set(CPACK_SOURCE_GENERATOR TGZ)
  set(CPACK_SOURCE_IGNORE_FILES "/\\.git/" "/build[^/]*/" "/__pycache__/" "/bench/results/")

  # /usr/share/doc/getflags/copyright: the project's licence, and the
  # sources and licences of the flag images and country names, whose MIT
  # notice must travel with every copy.
  set(gf_copyright "${PROJECT_BINARY_DIR}/doc/copyright")
  set(gf_text "getflags ${PROJECT_VERSION}: copyright and licences\n\n")
  string(APPEND gf_text "== getflags and flagserver (/usr/bin, /usr/share/man, "
         "/usr/share/bash-completion) ==\n\n")
  if(EXISTS "${PROJECT_SOURCE_DIR}/LICENSE")
    set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
                 "${PROJECT_SOURCE_DIR}/LICENSE")
    set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
    file(READ "${PROJECT_SOURCE_DIR}/LICENSE" gf_part)
    string(APPEND gf_text "${gf_part}\n")
  else()
    message(STATUS "getflags: no LICENSE file yet; the package's copyright file lacks the project's licence")
    string(APPEND gf_text "See the LICENSE file of the source distribution.\n\n")
  endif()
  string(APPEND gf_text "== The flag mirror (/usr/share/getflags/flags_data) ==\n\n")
  set(gf_readme "${PROJECT_SOURCE_DIR}/flags_data/README.md")
  set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${gf_readme}")
  file(READ "${gf_readme}" gf_part)
  string(FIND "${gf_part}" "## Sources and licences" gf_at)
  if(gf_at LESS 0)
    message(FATAL_ERROR "${gf_readme} has no '## Sources and licences' section")
  endif()
  string(SUBSTRING "${gf_part}" ${gf_at} -1 gf_part)
  # Up to the next section, if any.
  string(SUBSTRING "${gf_part}" 3 -1 gf_rest)
  string(FIND "${gf_rest}" "\n## " gf_at)
  if(gf_at GREATER_EQUAL 0)
    math(EXPR gf_at "${gf_at} + 3")
    string(SUBSTRING "${gf_part}" 0 ${gf_at} gf_part)
  endif()
  string(APPEND gf_text "${gf_part}\n"
         "On Debian systems the LGPL 2.1 is in /usr/share/common-licenses/LGPL-2.1.\n")
  file(WRITE "${gf_copyright}.tmp" "${gf_text}")
  file(COPY_FILE "${gf_copyright}.tmp" "${gf_copyright}" ONLY_IF_DIFFERENT)
  file(REMOVE "${gf_copyright}.tmp")
  install(FILES "${gf_copyright}" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
  unset(gf_text)
  unset(gf_part)
  unset(gf_rest)
  unset(gf_at)

  include(CPack)
  return()
endif()

# --- cpack time: CPACK_PRE_BUILD_SCRIPTS --------------------------------------
# The files are staged under CPACK_TEMPORARY_DIRECTORY; run dpkg-shlibdeps on
# every ELF file there, raise the bounds to CPACK_GF_DEB_MIN_VERSIONS, and
# set CPACK_DEBIAN_PACKAGE_DEPENDS, which CPack's DEB generator reads next.

if(NOT CPACK_GENERATOR STREQUAL "DEB")
  return()
endif()
find_program(GF_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(NOT GF_DPKG_SHLIBDEPS)
  message(STATUS "getflags: dpkg-shlibdeps not found or turned off (apt-get install dpkg-dev); "
                 "Depends: ${CPACK_DEBIAN_PACKAGE_DEPENDS}")
  return()
endif()

file(GLOB_RECURSE gf_staged LIST_DIRECTORIES false "${CPACK_TEMPORARY_DIRECTORY}/*")
set(gf_elves "")
foreach(f IN LISTS gf_staged)
  if(NOT IS_SYMLINK "${f}")
    file(READ "${f}" gf_magic LIMIT 4 HEX)
    if(gf_magic STREQUAL "7f454c46")
      list(APPEND gf_elves "${f}")
    endif()
  endif()
endforeach()
if(NOT gf_elves)
  message(FATAL_ERROR "getflags: no ELF file staged in ${CPACK_TEMPORARY_DIRECTORY}")
endif()

# dpkg-shlibdeps wants a debian/control; an empty one in a scratch dir will do.
set(gf_work "${CPACK_TOPLEVEL_DIRECTORY}/gf-shlibdeps")
file(MAKE_DIRECTORY "${gf_work}/debian")
file(TOUCH "${gf_work}/debian/control")
execute_process(
  COMMAND "${GF_DPKG_SHLIBDEPS}" -O ${gf_elves}
  WORKING_DIRECTORY "${gf_work}"
  OUTPUT_VARIABLE gf_out
  ERROR_VARIABLE gf_err
  RESULT_VARIABLE gf_rc)
file(REMOVE_RECURSE "${gf_work}")
string(REGEX MATCH "shlibs:Depends=([^\n]*)" gf_match "${gf_out}")
if(NOT gf_rc EQUAL 0 OR NOT gf_match)
  message(FATAL_ERROR "getflags: dpkg-shlibdeps failed (${gf_rc}): ${gf_err}")
endif()

set(gf_depends "")
string(REPLACE ", " ";" gf_items "${CMAKE_MATCH_1}")
foreach(item IN LISTS gf_items)
  # "libcurl4 (>= 7.16.3)" or "libcjson1"; alternatives ("a | b") are left as they are.
  if(item MATCHES "^([a-z0-9][a-z0-9.+-]*)( \\(>= ([^)]+)\\))?$")
    set(pkg "${CMAKE_MATCH_1}")
    set(ver "${CMAKE_MATCH_3}")
    foreach(min IN LISTS CPACK_GF_DEB_MIN_VERSIONS)
      string(REPLACE "=" ";" min "${min}")
      list(GET min 0 min_prefix)
      list(GET min 1 min_version)
      string(FIND "${pkg}" "${min_prefix}" gf_at)
      if(gf_at EQUAL 0 AND (ver STREQUAL "" OR ver VERSION_LESS min_version))
        set(ver "${min_version}")
      endif()
    endforeach()
    if(ver STREQUAL "")
      set(item "${pkg}")
    else()
      set(item "${pkg} (>= ${ver})")
    endif()
  endif()
  list(APPEND gf_depends "${item}")
endforeach()
list(JOIN gf_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
message(STATUS "getflags: Depends: ${CPACK_DEBIAN_PACKAGE_DEPENDS}")
