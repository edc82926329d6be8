/* The threadpool saver, on a real loop and a scratch directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gf/saver.h"

#include "tmpdir.h"

static int tmp_files(void)
{
    int n = 0;
    DIR *d = opendir(test_dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, ".getflags-tmp-", 14) == 0)
            n++;
    closedir(d);
    return n;
}

static char *slurp(const char *name, size_t *len)
{
    static char buf[4096];
    FILE *f = fopen(test_path(name), "rb");
    if (!f)
        return NULL;
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static int called, last_err;
static const char *last_step;

static void on_saved(struct gf_save *req, int err, const char *step)
{
    (void)req;
    called++;
    last_err = err;
    last_step = step;
}

static char last_sha[65];

/* libuv's threadpool, set to this size in main() before its first use. */
enum { POOL = 4 };
static uv_sem_t gate;
static uv_work_t blockers[POOL];

static void on_block(uv_work_t *w)
{
    (void)w;
    uv_sem_wait(&gate);
}

static void after_block(uv_work_t *w, int status)
{
    (void)w;
    assert_int_equal(status, 0);
}

/* Occupies every thread of the pool until unblock_pool(), so that saves
 * queued meanwhile are certainly not started: the queue is first in,
 * first out. */
static void block_pool(uv_loop_t *loop)
{
    assert_int_equal(uv_sem_init(&gate, 0), 0);
    for (int i = 0; i < POOL; i++)
        assert_int_equal(uv_queue_work(loop, &blockers[i], on_block, after_block), 0);
}

static void unblock_pool(void)
{
    for (int i = 0; i < POOL; i++)
        uv_sem_post(&gate);
}

/* Saves one file through a fresh saver and loop, removing replaces (may be
 * NULL) once it is in place; returns the error. */
static int save_replacing(const char *name, const char *data, const char *replaces)
{
    uv_loop_t loop;
    struct gf_saver s;
    struct gf_save req = {.replaces = replaces};
    int dfd = open(test_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(gf_saver_init(&s, &loop, dfd), 0);
    called = 0;
    gf_save_start(&s, &req, name, data, strlen(data), on_saved);
    assert_int_equal(s.pending, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(called, 1);
    assert_int_equal(s.pending, 0);
    memcpy(last_sha, req.sha256, sizeof last_sha);
    gf_saver_close(&s);
    close(dfd);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return last_err;
}

static int save_one(const char *name, const char *data)
{
    return save_replacing(name, data, NULL);
}

static void test_saver_writes_file(void **state)
{
    (void)state;
    size_t len;
    assert_int_equal(save_one("Brazil.gif", "GIF89a-brazil"), 0);
    char *got = slurp("Brazil.gif", &len);
    assert_non_null(got);
    assert_int_equal(len, 13);
    assert_memory_equal(got, "GIF89a-brazil", 13);
    assert_int_equal(tmp_files(), 0);
}

static void test_saver_replaces_existing_file(void **state)
{
    (void)state;
    size_t len;
    assert_int_equal(save_one("Chile.gif", "old contents, longer than the new"), 0);
    struct stat before;
    assert_int_equal(stat(test_path("Chile.gif"), &before), 0);
    assert_int_equal(save_one("Chile.gif", "new"), 0);
    struct stat after;
    assert_int_equal(stat(test_path("Chile.gif"), &after), 0);
    /* Replaced by rename: a new inode, never truncated in place. */
    assert_true(before.st_ino != after.st_ino);
    char *got = slurp("Chile.gif", &len);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "new", 3);
}

static void test_saver_sha256_of_what_was_written(void **state)
{
    (void)state;
    assert_int_equal(save_one("Abc.gif", "abc"), 0);
    assert_string_equal(last_sha,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* A body written as it arrived, in pieces, is committed by the saver; a
 * cancelled one leaves no temporary file. */
static void test_saver_streamed_body(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct gf_saver s;
    struct gf_afile a, b;
    struct gf_save req = {0}, req2 = {0};
    int dfd = open(test_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(gf_saver_init(&s, &loop, dfd), 0);
    assert_int_equal(gf_afile_open(&a, dfd), 0);
    assert_int_equal(gf_afile_write(&a, "a", 1), 0);
    assert_int_equal(gf_afile_write(&a, "bc", 2), 0);
    assert_int_equal(tmp_files(), 1); /* on disk, not in memory */
    assert_int_equal(gf_afile_open(&b, dfd), 0);
    assert_int_equal(gf_afile_write(&b, "xyz", 3), 0);
    called = 0;
    block_pool(&loop);
    gf_save_start_stream(&s, &req, "Streamed.gif", &a, on_saved);
    gf_save_start_stream(&s, &req2, "Cancelled.gif", &b, on_saved);
    gf_save_cancel(&req2);
    unblock_pool();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(called, 2);
    assert_string_equal(req.sha256,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    gf_saver_close(&s);
    close(dfd);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    size_t len;
    const char *got = slurp("Streamed.gif", &len);
    assert_non_null(got);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "abc", 3);
    assert_null(slurp("Cancelled.gif", &len));
    assert_int_equal(tmp_files(), 0);
}

/* Temporary names carry the pid of the process that writes them, also in
 * a child forked after the parent wrote one: the sweep of a later run
 * tells a live run's files from a dead one's by it. */
static void test_afile_temporary_names_carry_the_writer_pid(void **state)
{
    (void)state;
    struct gf_afile a;
    char want[64];
    int dfd = open(test_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    assert_int_equal(gf_afile_open(&a, dfd), 0);
    snprintf(want, sizeof want, ".getflags-tmp-%ld-", (long)getpid());
    assert_int_equal(strncmp(a.tmp, want, strlen(want)), 0);
    gf_afile_abort(&a);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct gf_afile c;
        snprintf(want, sizeof want, ".getflags-tmp-%ld-", (long)getpid());
        int ok = gf_afile_open(&c, dfd) == 0 && strncmp(c.tmp, want, strlen(want)) == 0;
        gf_afile_abort(&c);
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(tmp_files(), 0);
    close(dfd);
}

static void test_saver_removes_replaced_file_only_on_success(void **state)
{
    (void)state;
    size_t len;
    assert_int_equal(save_one("Old_Name.gif", "old"), 0);
    assert_int_equal(save_replacing("New_Name.gif", "new", "Old_Name.gif"), 0);
    assert_null(slurp("Old_Name.gif", &len));
    assert_non_null(slurp("New_Name.gif", &len));
    /* A failed save leaves the old file where it was. */
    assert_int_equal(save_one("Kept.gif", "kept"), 0);
    assert_int_equal(mkdir(test_path("Blocked.gif"), 0755), 0);
    assert_true(save_replacing("Blocked.gif", "x", "Kept.gif") < 0);
    assert_non_null(slurp("Kept.gif", &len));
    /* Replacing a file by itself removes nothing. */
    assert_int_equal(save_replacing("Kept.gif", "again", "Kept.gif"), 0);
    assert_non_null(slurp("Kept.gif", &len));
}

static void test_saver_directory_at_target_is_an_error(void **state)
{
    (void)state;
    assert_int_equal(mkdir(test_path("Peru.gif"), 0755), 0);
    int before = tmpdir_entries();
    int err = save_one("Peru.gif", "data");
    assert_true(err < 0);
    assert_string_equal(last_step, "rename");
    assert_int_equal(tmpdir_entries(), before);
    assert_int_equal(tmp_files(), 0);
}

static void test_saver_symlink_at_target_is_replaced_not_followed(void **state)
{
    (void)state;
    char victim[300];
    snprintf(victim, sizeof victim, "%s-victim", test_dir);
    FILE *f = fopen(victim, "w");
    fputs("precious", f);
    fclose(f);
    assert_int_equal(symlink(victim, test_path("Cuba.gif")), 0);
    assert_int_equal(save_one("Cuba.gif", "GIF89a"), 0);
    struct stat st;
    assert_int_equal(lstat(test_path("Cuba.gif"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    size_t len;
    f = fopen(victim, "r");
    char buf[16] = {0};
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    unlink(victim);
    assert_int_equal(len, 8);
    assert_string_equal(buf, "precious");
}

static void test_saver_fifo_at_target_does_not_block(void **state)
{
    (void)state;
    assert_int_equal(mkfifo(test_path("Fiji.gif"), 0644), 0);
    assert_int_equal(save_one("Fiji.gif", "GIF89a"), 0);
    struct stat st;
    assert_int_equal(lstat(test_path("Fiji.gif"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

static void test_saver_mode_follows_umask(void **state)
{
    (void)state;
    mode_t old = umask(027);
    int err = save_one("Oman.gif", "GIF89a");
    umask(old);
    assert_int_equal(err, 0);
    struct stat st;
    assert_int_equal(stat(test_path("Oman.gif"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

static struct gf_save *cancelled_req;
static int cancelled_calls, cancelled_err;

static void on_saved_note(struct gf_save *req, int err, const char *step)
{
    if (req == cancelled_req) {
        cancelled_calls++;
        cancelled_err = err;
    }
    on_saved(req, err, step);
}

/* One save of ten, cancelled before any thread took it, reports
 * UV_ECANCELED from the loop and writes nothing; the other nine are
 * saved. */
static void test_saver_cancels_one_queued_save(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct gf_saver s;
    static struct gf_save reqs[10];
    static char names[10][32];
    int dfd = open(test_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(gf_saver_init(&s, &loop, dfd), 0);
    called = cancelled_calls = 0;
    cancelled_req = &reqs[4];
    block_pool(&loop);
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof names[i], "b%d.gif", i);
        gf_save_start(&s, &reqs[i], names[i], "GIF89a", 6, on_saved_note);
    }
    assert_int_equal(s.pending, 10);
    gf_save_cancel(&reqs[4]);
    assert_int_equal(called, 0); /* never from within a call */
    unblock_pool();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(called, 10);
    assert_int_equal(cancelled_calls, 1);
    assert_int_equal(cancelled_err, UV_ECANCELED);
    assert_int_equal(s.pending, 0);
    gf_saver_close(&s);
    close(dfd);
    assert_int_equal(uv_loop_close(&loop), 0);
    size_t len;
    for (int i = 0; i < 10; i++)
        assert_true((slurp(names[i], &len) != NULL) == (i != 4));
    assert_int_equal(tmp_files(), 0);
}

/* Cancelling a save that already ran changes nothing: it reported its
 * own result once and its file stays. */
static void test_saver_cancel_after_the_write_is_harmless(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct gf_saver s;
    struct gf_save req = {0};
    int dfd = open(test_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(gf_saver_init(&s, &loop, dfd), 0);
    called = cancelled_calls = 0;
    cancelled_req = &req;
    gf_save_start(&s, &req, "Done.gif", "GIF89a", 6, on_saved_note);
    uv_run(&loop, UV_RUN_DEFAULT);
    gf_save_cancel(&req);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(called, 1);
    assert_int_equal(cancelled_err, 0);
    gf_saver_close(&s);
    close(dfd);
    assert_int_equal(uv_loop_close(&loop), 0);
    size_t len;
    assert_non_null(slurp("Done.gif", &len));
}

static void test_saver_cancel_before_start(void **state)
{
    (void)state;
    /* Fill the threadpool's queue so later requests are still queued
     * when cancelled: a cancelled save reports UV_ECANCELED and leaves no
     * file at all. */
    uv_loop_t loop;
    struct gf_saver s;
    static struct gf_save reqs[64]; /* zeroed: replaces is NULL */
    static char names[64][32];
    int dfd = open(test_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(gf_saver_init(&s, &loop, dfd), 0);
    called = 0;
    for (int i = 0; i < 64; i++) {
        snprintf(names[i], sizeof names[i], "c%02d.gif", i);
        gf_save_start(&s, &reqs[i], names[i], "GIF89a", 6, on_saved);
    }
    for (int i = 0; i < 64; i++)
        gf_save_cancel(&reqs[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(called, 64);
    assert_int_equal(s.pending, 0);
    gf_saver_close(&s);
    close(dfd);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* Whatever ran is complete; whatever was cancelled left nothing. */
    assert_int_equal(tmp_files(), 0);
}

static int on_tmpfs(const char *dir)
{
    struct statfs sf;
    assert_int_equal(statfs(dir, &sf), 0);
    return sf.f_type == TMPFS_MAGIC;
}

/* One thread for saves into memory, four on a disk, whichever parent of a
 * DIR still to be made decides; never more threads than codes. */
static void test_saver_threads_follow_the_file_system(void **state)
{
    (void)state;
    /* /dev/shm is a tmpfs on every Linux this runs on (POSIX shared
     * memory lives there); the build tree is on a disk. */
    assert_true(on_tmpfs("/dev/shm"));
    char disk[4096];
    assert_non_null(getcwd(disk, sizeof disk));
    if (on_tmpfs(disk))
        snprintf(disk, sizeof disk, "/var/tmp");
    assert_false(on_tmpfs(disk));

    assert_int_equal(gf_saver_threads("/dev/shm", 194), 1);
    assert_int_equal(gf_saver_threads("/dev/shm/gf-no-such/a/b/", 194), 1);
    assert_int_equal(gf_saver_threads(disk, 194), 4);
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/gf-no-such/a", disk);
    assert_int_equal(gf_saver_threads(missing, 194), 4);
    assert_int_equal(gf_saver_threads(disk, 2), 2);
    assert_int_equal(gf_saver_threads(disk, 0), 1);
    assert_int_equal(gf_saver_threads("/dev/shm", 0), 1);

    /* A relative DIR, missing: the working directory decides. */
    assert_int_equal(chdir("/dev/shm"), 0);
    int in_shm = gf_saver_threads("gf-no-such/x", 10);
    assert_int_equal(chdir(disk), 0);
    int on_disk = gf_saver_threads("gf-no-such", 10);
    assert_int_equal(in_shm, 1);
    assert_int_equal(on_disk, 4);
}

int main(void)
{
    /* Read by libuv when its threadpool starts; block_pool() relies on it. */
    char pool[16];
    snprintf(pool, sizeof pool, "%d", POOL);
    setenv("UV_THREADPOOL_SIZE", pool, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_saver_writes_file, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_saver_threads_follow_the_file_system),
        cmocka_unit_test_setup_teardown(test_afile_temporary_names_carry_the_writer_pid,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_replaces_existing_file, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_sha256_of_what_was_written, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_streamed_body, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_removes_replaced_file_only_on_success,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_directory_at_target_is_an_error, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_symlink_at_target_is_replaced_not_followed,
                                        tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_fifo_at_target_does_not_block, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_mode_follows_umask, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_cancels_one_queued_save, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_cancel_after_the_write_is_harmless, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_saver_cancel_before_start, tmpdir_setup,
                                        tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
