# Man pages, bash completions and the Debian package (cmake/Docs.cmake,
# cmake/Packaging.cmake). ctest -L packaging runs them all.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(gf_pkg_scripts "${CMAKE_CURRENT_SOURCE_DIR}/integration")

# Every option of --help is in the man page's OPTIONS and SYNOPSIS, and is
# offered by the bash completion; and nothing else is.
add_test(NAME package_manpage_getflags
         COMMAND "${Python3_EXECUTABLE}" "${gf_pkg_scripts}/package_manpage_check.py" options
                 "$<TARGET_FILE:getflags>" "${PROJECT_SOURCE_DIR}/doc/getflags.1"
                 "${PROJECT_SOURCE_DIR}/completion/getflags.bash")
set(gf_pkg_tests package_manpage_getflags)
if(TARGET flagserver)
  add_test(NAME package_manpage_flagserver
           COMMAND "${Python3_EXECUTABLE}" "${gf_pkg_scripts}/package_manpage_check.py" options
                   "$<TARGET_FILE:flagserver>" "${PROJECT_SOURCE_DIR}/doc/flagserver.1"
                   "${PROJECT_SOURCE_DIR}/completion/flagserver.bash")
  list(APPEND gf_pkg_tests package_manpage_flagserver)
endif()

# groff -ww and man --warnings find nothing to say; skipped without groff/man.
add_test(NAME package_manpage_lint
         COMMAND "${Python3_EXECUTABLE}" "${gf_pkg_scripts}/package_manpage_check.py" lint
                 "${PROJECT_SOURCE_DIR}/doc/getflags.1" "${PROJECT_SOURCE_DIR}/doc/flagserver.1")
set_tests_properties(package_manpage_lint PROPERTIES SKIP_RETURN_CODE 77)

add_test(NAME package_completion
         COMMAND bash "${gf_pkg_scripts}/package_completion_test.sh"
                 "${PROJECT_SOURCE_DIR}/completion")
list(APPEND gf_pkg_tests package_manpage_lint package_completion)

# cpack -G DEB, dpkg -x, and the extracted programs run against each other.
if(TARGET flagserver)
  add_test(NAME package_deb
           COMMAND bash "${gf_pkg_scripts}/package_deb_test.sh" "${PROJECT_BINARY_DIR}"
                   "${PROJECT_SOURCE_DIR}" "${CMAKE_CPACK_COMMAND}")
  set_tests_properties(package_deb PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77)
  list(APPEND gf_pkg_tests package_deb)
endif()

set_tests_properties(${gf_pkg_tests} PROPERTIES LABELS packaging
                     ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
set_tests_properties(package_manpage_getflags package_manpage_lint package_completion
                     PROPERTIES TIMEOUT 120)
if(TARGET flagserver)
  set_tests_properties(package_manpage_flagserver PROPERTIES TIMEOUT 120)
endif()
unset(gf_pkg_tests)
unset(gf_pkg_scripts)
