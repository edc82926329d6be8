# getflags tests are registered here.
gf_unit_test(test_codes SOURCES unit/test_codes.c LIBS getflags_core)
