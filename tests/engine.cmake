# Tests of the semaphore, the engine, the saver and whole runs.
gf_unit_test(test_sem SOURCES unit/test_sem.c LIBS getflags_core)
gf_unit_test(test_saver SOURCES unit/test_saver.c LIBS getflags_core)
