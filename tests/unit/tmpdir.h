/* A scratch directory for each unit test that touches files: the cmocka
 * setup makes a new one under $TMPDIR (or /tmp), the teardown removes it
 * with everything inside, without following links out of it. */
#ifndef GF_TEST_TMPDIR_H
#define GF_TEST_TMPDIR_H

/* The current test's directory; empty outside a test. */
extern char test_dir[256];

/* cmocka setup and teardown: 0 on success. */
int tmpdir_setup(void **state);
int tmpdir_teardown(void **state);

/* test_dir/name, in one of four static buffers used in turn, so that a
 * call may take up to four paths at once. */
const char *test_path(const char *name);

/* How many entries test_dir holds, "." and ".." aside. */
int tmpdir_entries(void);

#endif
