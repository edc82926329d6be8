/* The per-directory run lock: busy and wait against another process,
 * release on exit and on a crash, and the paths it refuses to follow. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "gf/lock.h"

#include "tmpdir.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long pid_in_lock_file(const char *lockdir)
{
    char p[600], buf[32] = "";
    snprintf(p, sizeof p, "%s/.getflags/lock", lockdir);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

/* Forks a child that takes the lock of d, tells us through a pipe, then
 * sleeps hold_ms and exits (or, with hold_ms < 0, waits to be killed). */
static pid_t child_holding(const char *d, int hold_ms)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct gf_lock lk;
        char err[256];
        close(fds[0]);
        if (gf_lock_acquire(d, 0, &lk, err, sizeof err) != 0)
            _exit(2);
        if (write(fds[1], "x", 1) != 1)
            _exit(3);
        if (hold_ms < 0)
            for (;;)
                pause();
        usleep((useconds_t)hold_ms * 1000);
        _exit(0); /* no release: the exit drops the lock */
    }
    close(fds[1]);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    return pid;
}

static void test_lock_creates_dirs_and_file(void **state)
{
    (void)state;
    struct gf_lock lk;
    char err[512] = "";
    mode_t old = umask(022);
    const char *out = test_path("out"); /* missing: created, one level */

    assert_int_equal(gf_lock_acquire(out, 0, &lk, err, sizeof err), 0);
    umask(old);
    assert_true(lk.fd >= 0);
    assert_true(fcntl(lk.fd, F_GETFD) & FD_CLOEXEC);

    struct stat st;
    assert_int_equal(lstat(test_path("out/.getflags"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(lstat(test_path("out/.getflags/lock"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(pid_in_lock_file(out), (long)getpid());

    gf_lock_release(&lk);
    assert_int_equal(lk.fd, -1);
    gf_lock_release(&lk); /* twice */
    gf_lock_release(NULL);
    /* The file stays, and the lock can be taken again. */
    assert_int_equal(lstat(test_path("out/.getflags/lock"), &st), 0);
    assert_int_equal(gf_lock_acquire(out, 0, &lk, err, sizeof err), 0);
    gf_lock_release(&lk);
}

/* flock belongs to the open file: a second acquire in this process is
 * refused like another run's would be. */
static void test_lock_busy_in_same_process(void **state)
{
    (void)state;
    struct gf_lock a, b;
    char err[512] = "", want[600];

    assert_int_equal(gf_lock_acquire(test_dir, 0, &a, err, sizeof err), 0);
    b.fd = 1234;
    assert_int_equal(gf_lock_acquire(test_dir, 0, &b, err, sizeof err), GF_LOCK_BUSY);
    assert_int_equal(b.fd, -1);
    snprintf(want, sizeof want,
             "another getflags run (pid %ld) is using %s (lock %s/.getflags/lock)", (long)getpid(),
             test_dir, test_dir);
    assert_string_equal(err, want);
    gf_lock_release(&b); /* harmless on a lock not held */
    gf_lock_release(&a);
    assert_int_equal(gf_lock_acquire(test_dir, 0, &b, NULL, 0), 0);
    gf_lock_release(&b);
}

static void test_lock_busy_then_wait_for_other_process(void **state)
{
    (void)state;
    struct gf_lock lk;
    char err[512] = "", pidtxt[32];

    pid_t child = child_holding(test_dir, 300);
    double t0 = now_s();
    assert_int_equal(gf_lock_acquire(test_dir, 0, &lk, err, sizeof err), GF_LOCK_BUSY);
    assert_true(now_s() - t0 < 0.1); /* at once, not after the holder */
    snprintf(pidtxt, sizeof pidtxt, "(pid %ld)", (long)child);
    assert_non_null(strstr(err, pidtxt));
    assert_non_null(strstr(err, test_dir));

    assert_int_equal(gf_lock_acquire(test_dir, 1, &lk, err, sizeof err), 0);
    double waited = now_s() - t0;
    assert_true(waited >= 0.2);
    assert_true(waited < 5);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(pid_in_lock_file(test_dir), (long)getpid());
    gf_lock_release(&lk);
}

/* A run killed while holding the lock leaves nothing stale behind. */
static void test_lock_freed_when_holder_is_killed(void **state)
{
    (void)state;
    struct gf_lock lk;
    char err[512];

    pid_t child = child_holding(test_dir, -1);
    assert_int_equal(gf_lock_acquire(test_dir, 0, &lk, err, sizeof err), GF_LOCK_BUSY);
    kill(child, SIGKILL);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(gf_lock_acquire(test_dir, 0, &lk, err, sizeof err), 0);
    gf_lock_release(&lk);
}

/* The pid in the file is named only while it is a process of this
 * program: a lock held by another program (flock(1)) over the pid a
 * killed run left is not said to be that run's. */
static void test_lock_busy_names_no_stale_pid(void **state)
{
    (void)state;
    struct gf_lock lk;
    char err[512] = "", want[600];

    pid_t child = child_holding(test_dir, -1);
    kill(child, SIGKILL);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_int_equal(pid_in_lock_file(test_dir), (long)child); /* left by the dead run */
    char p[600];
    snprintf(p, sizeof p, "%s/.getflags/lock", test_dir);
    int other = open(p, O_RDWR);
    assert_true(other >= 0);
    assert_int_equal(flock(other, LOCK_EX), 0);
    assert_int_equal(gf_lock_acquire(test_dir, 0, &lk, err, sizeof err), GF_LOCK_BUSY);
    snprintf(want, sizeof want,
             "another getflags run (or another program) is using %s (lock %s/.getflags/lock)",
             test_dir, test_dir);
    assert_string_equal(err, want);
    close(other);
    /* A release leaves no pid behind. */
    assert_int_equal(gf_lock_acquire(test_dir, 0, &lk, err, sizeof err), 0);
    assert_int_equal(pid_in_lock_file(test_dir), (long)getpid());
    gf_lock_release(&lk);
    assert_int_equal(pid_in_lock_file(test_dir), 0);
}

/* A child waiting in flock(LOCK_EX) gets the lock when we release it. */
static void test_lock_waiter_gets_it_on_release(void **state)
{
    (void)state;
    struct gf_lock lk;
    char err[512];
    assert_int_equal(gf_lock_acquire(test_dir, 0, &lk, err, sizeof err), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct gf_lock mine;
        char e[256];
        /* The inherited descriptor shares the parent's open file, and with
         * it the lock: drop it, or the parent's release frees nothing. */
        close(lk.fd);
        double t0 = now_s();
        int rc = gf_lock_acquire(test_dir, 1, &mine, e, sizeof e);
        /* 0 only if it really waited for the parent's release. */
        _exit(rc == 0 && now_s() - t0 >= 0.15 ? 0 : 1);
    }
    usleep(250 * 1000);
    gf_lock_release(&lk);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void expect_refused(const char *d, int want_err, const char *want_msg)
{
    struct gf_lock lk;
    char err[512] = "";
    lk.fd = 99;
    assert_int_equal(gf_lock_acquire(d, 0, &lk, err, sizeof err), want_err);
    assert_int_equal(lk.fd, -1);
    assert_string_equal(err, want_msg);
    gf_lock_release(&lk);
}

static void test_lock_refuses_symlinked_state_dir(void **state)
{
    (void)state;
    char msg[600];
    assert_int_equal(mkdir(test_path("elsewhere"), 0777), 0);
    assert_int_equal(symlink(test_path("elsewhere"), test_path(".getflags")), 0);
    snprintf(msg, sizeof msg, "cannot open %s/.getflags: it is a symbolic link (not followed)",
             test_dir);
    expect_refused(test_dir, -ELOOP, msg);
    assert_int_equal(access(test_path("elsewhere/lock"), F_OK), -1);
    /* A dangling link is no better. */
    assert_int_equal(unlink(test_path(".getflags")), 0);
    assert_int_equal(symlink(test_path("nowhere"), test_path(".getflags")), 0);
    expect_refused(test_dir, -ELOOP, msg);
    assert_int_equal(access(test_path("nowhere"), F_OK), -1);
}

static void test_lock_refuses_symlinked_lock_file(void **state)
{
    (void)state;
    char msg[600];
    assert_int_equal(mkdir(test_path(".getflags"), 0777), 0);
    assert_int_equal(symlink(test_path("victim"), test_path(".getflags/lock")), 0);
    snprintf(msg, sizeof msg, "cannot open %s/.getflags/lock: it is a symbolic link (not followed)",
             test_dir);
    expect_refused(test_dir, -ELOOP, msg);
    assert_int_equal(access(test_path("victim"), F_OK), -1);
}

static void test_lock_refuses_special_lock_file(void **state)
{
    (void)state;
    char msg[600];
    assert_int_equal(mkdir(test_path(".getflags"), 0777), 0);
    assert_int_equal(mkfifo(test_path(".getflags/lock"), 0666), 0);
    snprintf(msg, sizeof msg, "cannot use %s/.getflags/lock: it is not a regular file", test_dir);
    expect_refused(test_dir, UV_EINVAL, msg); /* and did not hang on the FIFO */

    assert_int_equal(unlink(test_path(".getflags/lock")), 0);
    assert_int_equal(mkdir(test_path(".getflags/lock"), 0777), 0);
    snprintf(msg, sizeof msg, "cannot open %s/.getflags/lock: %s", test_dir,
             uv_strerror(UV_EISDIR));
    expect_refused(test_dir, -EISDIR, msg);
}

static void test_lock_state_dir_not_a_directory(void **state)
{
    (void)state;
    char msg[600];
    FILE *f = fopen(test_path(".getflags"), "w");
    assert_non_null(f);
    fclose(f);
    snprintf(msg, sizeof msg, "cannot open %s/.getflags: it is not a directory", test_dir);
    expect_refused(test_dir, -ENOTDIR, msg);
}

static void test_lock_dir_problems(void **state)
{
    (void)state;
    char msg[600];
    FILE *f = fopen(test_path("file"), "w");
    assert_non_null(f);
    fclose(f);
    snprintf(msg, sizeof msg, "cannot open %s: it is not a directory", test_path("file"));
    expect_refused(test_path("file"), -ENOTDIR, msg);

    snprintf(msg, sizeof msg, "cannot create %s: %s", test_path("a/b"), uv_strerror(UV_ENOENT));
    expect_refused(test_path("a/b"), -ENOENT, msg);

    /* Permissions mean nothing to root, so this part needs a normal user. */
    if (geteuid() != 0) {
        assert_int_equal(mkdir(test_path("ro"), 0555), 0);
        snprintf(msg, sizeof msg, "cannot create %s/.getflags: %s", test_path("ro"),
                 uv_strerror(UV_EACCES));
        expect_refused(test_path("ro"), -EACCES, msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_creates_dirs_and_file, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_busy_in_same_process, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_busy_then_wait_for_other_process, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_freed_when_holder_is_killed, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_busy_names_no_stale_pid, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_waiter_gets_it_on_release, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_refuses_symlinked_state_dir, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_refuses_symlinked_lock_file, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_refuses_special_lock_file, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_state_dir_not_a_directory, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_lock_dir_problems, tmpdir_setup, tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
