# Remote-like tests: a CDN-like nginx (tests/integration/cdn.py: TLS through
# an intermediate CA, HTTP/2 and HTTP/1.1, 301, 429, GOAWAY, idle closes,
# few streams) and rttproxy, a TCP proxy adding a round trip
# (tests/tools/rttproxy.c; bench/ uses it too).
add_executable(rttproxy tools/rttproxy.c)
target_link_libraries(rttproxy PRIVATE PkgConfig::LIBUV gf_build_flags)

gf_integration_test(rttproxy_delay rttproxy_delay.py)
set_property(TEST rttproxy_delay APPEND PROPERTY ENVIRONMENT "RTTPROXY=$<TARGET_FILE:rttproxy>")

# getflags over HTTPS with HTTP/2 and HTTP/1.1, through the round trip of
# rttproxy, and against python3 -m http.server.
gf_integration_test(getflags_cdn getflags_cdn.py)
set_tests_properties(getflags_cdn PROPERTIES TIMEOUT 900)
set_property(TEST getflags_cdn APPEND PROPERTY ENVIRONMENT
             "RTTPROXY=$<TARGET_FILE:rttproxy>")

# getflags against an HTTP/2 server that breaks the protocol on purpose
# (tests/integration/h2rogue.py, on Debian's python3 with python3-h2).
gf_integration_test(getflags_h2rogue getflags_h2rogue.py)
