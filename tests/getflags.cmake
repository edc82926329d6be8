# getflags tests are registered here.
gf_unit_test(test_codes SOURCES unit/test_codes.c LIBS getflags_core)
gf_unit_test(test_cli SOURCES unit/test_cli.c LIBS getflags_core)
gf_unit_test(test_names SOURCES unit/test_names.c LIBS getflags_core)
gf_unit_test(test_report SOURCES unit/test_report.c LIBS getflags_core)
