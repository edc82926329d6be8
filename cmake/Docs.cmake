# Man pages and bash completions of getflags and flagserver.
#
# Included from the top-level CMakeLists.txt (include(cmake/Docs.cmake)).
# The man pages are written in roff by hand (doc/*.1) and need no generator;
# the installed copies get PROJECT_VERSION in their .TH line and are
# gzipped, as Debian wants, when gzip is available.
#
#   share/man/man1/getflags.1.gz, flagserver.1.gz
#   share/bash-completion/completions/getflags, flagserver

set(GF_MAN_PAGES getflags.1 flagserver.1)
set(GF_MAN_BINARY_DIR "${PROJECT_BINARY_DIR}/doc")

find_program(GF_GZIP gzip)
mark_as_advanced(GF_GZIP)

set(gf_man_outputs "")
foreach(page IN LISTS GF_MAN_PAGES)
  set(src "${PROJECT_SOURCE_DIR}/doc/${page}")
  set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${src}")
  file(READ "${src}" gf_man_text)
  # .TH NAME 1 DATE "getflags X.Y.Z" ...: the footer names the release.
  string(REGEX REPLACE "(\n\\.TH [^\n]*\"getflags )[^\"\n]*\"" "\\1${PROJECT_VERSION}\""
         gf_man_text "${gf_man_text}")
  # Written only when changed, so the gzip step reruns only then.
  set(gf_man_old "")
  if(EXISTS "${GF_MAN_BINARY_DIR}/${page}")
    file(READ "${GF_MAN_BINARY_DIR}/${page}" gf_man_old)
  endif()
  if(NOT gf_man_old STREQUAL gf_man_text)
    file(WRITE "${GF_MAN_BINARY_DIR}/${page}" "${gf_man_text}")
  endif()

  if(GF_GZIP)
    # -n: no name or time stamp in the header, so builds are reproducible.
    add_custom_command(
      OUTPUT "${GF_MAN_BINARY_DIR}/${page}.gz"
      COMMAND "${GF_GZIP}" -9 -n -f -k "${page}"
      DEPENDS "${GF_MAN_BINARY_DIR}/${page}"
      WORKING_DIRECTORY "${GF_MAN_BINARY_DIR}"
      COMMENT "Compressing man page ${page}"
      VERBATIM)
    list(APPEND gf_man_outputs "${GF_MAN_BINARY_DIR}/${page}.gz")
  else()
    list(APPEND gf_man_outputs "${GF_MAN_BINARY_DIR}/${page}")
  endif()
endforeach()
unset(gf_man_text)
unset(gf_man_old)

add_custom_target(getflags_man ALL DEPENDS ${gf_man_outputs})
install(FILES ${gf_man_outputs} DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")

# bash-completion looks a command's completion up by the command's name.
foreach(cmd getflags flagserver)
  install(FILES "${PROJECT_SOURCE_DIR}/completion/${cmd}.bash"
          DESTINATION "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
          RENAME "${cmd}")
endforeach()
