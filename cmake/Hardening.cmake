# Hardening: builds getflags and flagserver with the hardening flags
# Debian's dpkg-buildflags gives (fortified libc calls, stack protector,
# format-string checks, read-only relocations bound at load time), so that
# the binaries cpack puts into the Debian package are built the way Debian
# builds its own, and lintian finds them hardened.
#
#   -DGETFLAGS_HARDEN=OFF   turns it off
#
# The flags come from `DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags`
# when dpkg-dev is installed, otherwise from the fixed list below (the same
# flags on Debian 12). Optimisation, debug and path-mapping flags are left
# out: the build type decides those. So is a plain -Wformat, which, coming
# after the project's -Wformat=2, would lower it. _FORTIFY_SOURCE needs
# optimisation, so Debug builds go without it. Sanitizer and fuzzing builds
# are not hardened: fortified calls hide overflows from AddressSanitizer.
#
# Included from cmake/Packaging.cmake; adds to the gf_build_flags interface
# library, which every target of the project links.

option(GETFLAGS_HARDEN "Build with the hardening flags of dpkg-buildflags (as the Debian package wants)" ON)

set(GF_HARDEN_ACTIVE OFF)
if(GETFLAGS_HARDEN AND NOT GETFLAGS_SANITIZE AND NOT GETFLAGS_FUZZ)
  set(GF_HARDEN_ACTIVE ON)
  find_program(GF_DPKG_BUILDFLAGS dpkg-buildflags)
  mark_as_advanced(GF_DPKG_BUILDFLAGS)
  set(gf_flags_CPPFLAGS "-D_FORTIFY_SOURCE=2")
  set(gf_flags_CFLAGS -fstack-protector-strong -Werror=format-security)
  set(gf_flags_LDFLAGS -Wl,-z,relro -Wl,-z,now)
  set(gf_harden_from "a fixed list (dpkg-buildflags not found)")
  if(GF_DPKG_BUILDFLAGS)
    set(gf_harden_from "dpkg-buildflags")
    foreach(kind CPPFLAGS CFLAGS LDFLAGS)
      execute_process(
        COMMAND "${CMAKE_COMMAND}" -E env DEB_BUILD_MAINT_OPTIONS=hardening=+all
                "${GF_DPKG_BUILDFLAGS}" --get ${kind}
        WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
        OUTPUT_VARIABLE gf_out
        OUTPUT_STRIP_TRAILING_WHITESPACE
        RESULT_VARIABLE gf_rc)
      if(NOT gf_rc EQUAL 0)
        message(FATAL_ERROR "getflags: dpkg-buildflags --get ${kind} failed (${gf_rc}); "
                            "configure with -DGETFLAGS_HARDEN=OFF to build without hardening")
      endif()
      separate_arguments(gf_out UNIX_COMMAND "${gf_out}")
      set(gf_flags_${kind} "")
      foreach(flag IN LISTS gf_out)
        if(NOT flag MATCHES "^-(O|g)" AND NOT flag MATCHES "^-f(file|debug|macro)-prefix-map="
           AND NOT flag STREQUAL "-Wformat")
          list(APPEND gf_flags_${kind} "${flag}")
        endif()
      endforeach()
    endforeach()
  endif()

  set(gf_compile "")
  foreach(flag IN LISTS gf_flags_CPPFLAGS gf_flags_CFLAGS)
    if(flag MATCHES "^-D_FORTIFY_SOURCE")
      list(APPEND gf_compile "$<$<NOT:$<CONFIG:Debug>>:${flag}>")
    else()
      list(APPEND gf_compile "${flag}")
    endif()
  endforeach()
  target_compile_options(gf_build_flags INTERFACE ${gf_compile})
  target_link_options(gf_build_flags INTERFACE ${gf_flags_LDFLAGS})
  list(JOIN gf_flags_CPPFLAGS " " gf_out)
  list(JOIN gf_flags_CFLAGS " " gf_rc)
  list(JOIN gf_flags_LDFLAGS " " gf_compile)
  message(STATUS "getflags: hardening flags from ${gf_harden_from}: ${gf_out} ${gf_rc} ${gf_compile}")
  unset(gf_compile)
  unset(gf_out)
  unset(gf_rc)
  unset(gf_harden_from)
endif()
