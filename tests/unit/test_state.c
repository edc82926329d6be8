/* DIR's state across runs, driven directly without a network: opening DIR
 * (parents, dangling links, the lock, stale temporary files), which names
 * a code may claim (renames, collisions, names kept across runs), files
 * damaged or removed between runs, and interrupted runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "gf/afile.h"
#include "gf/state.h"

#include "tmpdir.h"

static void write_file(const char *name, const char *data)
{
    FILE *f = fopen(test_path(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
    assert_int_equal(fclose(f), 0);
}

static int exists(const char *name)
{
    struct stat st;
    return lstat(test_path(name), &st) == 0;
}

static int open_state(struct gf_state *s, const char *d, int update, char *err, size_t errsz)
{
    struct gf_state_config cfg = {
        .dir = d, .base_url = "http://h/flags", .update = update, .quiet = 1};
    return gf_state_open(s, &cfg, err, errsz);
}

/* An item as the run leaves it: status, and for ok the file written with
 * data, its size and hash. */
static struct gf_item item(const char *cc, enum gf_status st, const char *file, const char *data)
{
    struct gf_item it = {.status = st, .file = (char *)file};
    snprintf(it.cc, sizeof it.cc, "%s", cc);
    if (st == GF_OK) {
        write_file(file, data);
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        assert_int_equal(EVP_Digest(data, strlen(data), d, &n, EVP_sha256(), NULL), 1);
        assert_int_equal(n, 32);
        for (unsigned i = 0; i < n; i++)
            snprintf(it.sha256 + 2 * i, 3, "%02x", d[i]);
        it.file_bytes = strlen(data);
        it.http_status = 200;
        it.image_etag = "\"e\"";
    }
    if (st == GF_ERROR)
        it.error = "HTTP error 500 - Internal Server Error";
    return it;
}

/* One run that saves AA as Xland.gif and BB as Yland.gif. */
static void first_run(void)
{
    struct gf_state s;
    char err[512];
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    assert_int_equal(gf_state_claim(&s, "AA", "Xland.gif"), 1);
    assert_int_equal(gf_state_claim(&s, "BB", "Yland.gif"), 1);
    struct gf_item a = item("AA", GF_OK, "Xland.gif", "image of AA");
    struct gf_item b = item("BB", GF_OK, "Yland.gif", "image of BB");
    assert_int_equal(gf_state_record(&s, &a), 0);
    assert_int_equal(gf_state_record(&s, &b), 0);
    assert_int_equal(gf_state_save(&s, "http://h/flags", err, sizeof err), 0);
    gf_state_close(&s);
}

static void test_state_creates_dir_with_parents(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    assert_int_equal(open_state(&s, test_path("a/b/c"), 0, err, sizeof err), 0);
    assert_true(gf_state_dirfd(&s) >= 0);
    gf_state_close(&s);
    assert_true(exists("a/b/c/.getflags/lock"));
    /* Closing twice is harmless. */
    gf_state_close(&s);
}

static void test_state_refuses_unusable_dirs(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512], want[700];
    assert_int_equal(symlink("nowhere", test_path("dangling")), 0);
    assert_int_equal(open_state(&s, test_path("dangling"), 0, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want,
             "the output directory %s is a dangling symbolic link (to nowhere): create its "
             "target or choose another -o",
             test_path("dangling"));
    assert_string_equal(err, want);
    assert_false(exists("nowhere"));

    write_file("plain", "x");
    assert_int_equal(open_state(&s, test_path("plain"), 0, err, sizeof err), -ENOTDIR);
    assert_non_null(strstr(err, "it is not a directory"));
    assert_int_equal(open_state(&s, test_path("plain/sub/dir"), 0, err, sizeof err), -ENOTDIR);
    snprintf(want, sizeof want,
             "cannot open the output directory %s: ", test_path("plain/sub/dir"));
    assert_memory_equal(err, want, strlen(want));
    /* A parent that cannot be made is named (a link into a missing
     * directory, so that even root cannot). */
    assert_int_equal(symlink("missing/x", test_path("dl")), 0);
    assert_int_equal(open_state(&s, test_path("dl/a/b"), 0, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want,
             "cannot create the output directory %s: cannot create %s: ", test_path("dl/a/b"),
             test_path("dl/a"));
    assert_memory_equal(err, want, strlen(want));
}

static void test_state_lock_busy_and_hard_link_refused(void **state)
{
    (void)state;
    struct gf_state a, b;
    char err[512];
    assert_int_equal(open_state(&a, test_dir, 0, err, sizeof err), 0);
    assert_int_equal(open_state(&b, test_dir, 0, err, sizeof err), GF_STATE_BUSY);
    assert_non_null(strstr(err, "another getflags run"));
    gf_state_close(&a);

    /* A lock that is a hard link to a file elsewhere is never written. */
    write_file("victim", "precious");
    assert_int_equal(unlink(test_path(".getflags/lock")), 0);
    assert_int_equal(link(test_path("victim"), test_path(".getflags/lock")), 0);
    assert_int_equal(open_state(&a, test_dir, 0, err, sizeof err), -EMLINK);
    assert_non_null(strstr(err, "more than one link"));
    FILE *f = fopen(test_path("victim"), "r");
    char buf[16] = "";
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "precious");
}

static void test_state_sweeps_stale_temporaries(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    first_run();
    write_file(".getflags-tmp-999999-3", "half an image");
    write_file(".getflags/.getflags-tmp-999999-4", "{");
    write_file(".getflags-tmp-notes", "not one of ours");
    /* A killed run whose pid is this one's again (as init in containers). */
    char mine[64];
    snprintf(mine, sizeof mine, ".getflags-tmp-%ld-1", (long)getpid());
    write_file(mine, "half an image");
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    assert_int_equal(s.swept, 3);
    assert_false(exists(mine));
    gf_state_close(&s);
    assert_false(exists(".getflags-tmp-999999-3"));
    assert_false(exists(".getflags/.getflags-tmp-999999-4"));
    assert_true(exists(".getflags-tmp-notes"));
    assert_true(exists("Xland.gif"));
}

/* AA is renamed Yland, BB's name: BB keeps Yland.gif, AA takes Yland_AA.gif;
 * a code new to the run cannot take either. */
static void test_state_names_belong_to_their_codes(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    first_run();
    assert_int_equal(open_state(&s, test_dir, 1, err, sizeof err), 0);
    assert_int_equal(gf_state_claim(&s, "AA", "Yland.gif"), 0);
    assert_int_equal(gf_state_claim(&s, "AA", "Yland_AA.gif"), 1);
    assert_int_equal(gf_state_claim(&s, "CC", "Yland.gif"), 0);
    assert_int_equal(gf_state_claim(&s, "CC", "Xland.gif"), 0);
    assert_int_equal(gf_state_claim(&s, "CC", "Yland_AA.gif"), 0); /* AA's in this run */
    assert_int_equal(gf_state_claim(&s, "BB", "Yland.gif"), 1);
    assert_int_equal(gf_state_claim(&s, "AA", "Xland.gif"), 1); /* its old file, to remove */
    gf_state_close(&s);
}

/* Two codes, one name: each keeps the name it had, whichever asks first. */
static void test_state_names_are_stable_across_runs(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    assert_int_equal(gf_state_claim(&s, "BR", "Brazil.gif"), 1);
    assert_int_equal(gf_state_claim(&s, "PT", "Brazil.gif"), 0);
    assert_int_equal(gf_state_claim(&s, "PT", "Brazil_PT.gif"), 1);
    struct gf_item br = item("BR", GF_OK, "Brazil.gif", "BR");
    struct gf_item pt = item("PT", GF_OK, "Brazil_PT.gif", "PT");
    assert_int_equal(gf_state_record(&s, &br), 0);
    assert_int_equal(gf_state_record(&s, &pt), 0);
    assert_int_equal(gf_state_save(&s, "http://h/flags", err, sizeof err), 0);
    gf_state_close(&s);

    /* Next night PT asks first: it keeps its _PT name. */
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    assert_int_equal(gf_state_claim(&s, "PT", "Brazil.gif"), 0);
    assert_int_equal(gf_state_claim(&s, "PT", "Brazil_PT.gif"), 1);
    assert_int_equal(gf_state_claim(&s, "BR", "Brazil.gif"), 1);
    gf_state_close(&s);
}

/* A file truncated, changed or removed between runs: nothing vouches for
 * it any more, --update gets no validators for it, and the manifest stops
 * calling it ok. */
static void test_state_damaged_files_are_not_trusted(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    first_run();
    assert_int_equal(truncate(test_path("Xland.gif"), 0), 0);
    assert_int_equal(unlink(test_path("Yland.gif")), 0);
    assert_int_equal(open_state(&s, test_dir, 1, err, sizeof err), 0);
    gf_cc codes[2] = {"AA", "BB"};
    int nomem;
    const struct gf_prev *const *prev = gf_state_prevs(&s, codes, 2, &nomem);
    assert_non_null(prev);
    assert_null(prev[0]);
    assert_null(prev[1]);
    const struct gf_manifest *m = gf_state_manifest(&s);
    const struct gf_manifest_entry *a = gf_manifest_find(m, "AA");
    const struct gf_manifest_entry *b = gf_manifest_find(m, "BB");
    assert_int_equal(a->status, GF_ERROR);
    assert_string_equal(a->file, "Xland.gif"); /* still AA's: no one else writes it */
    assert_string_equal(a->sha256, "");
    assert_null(a->image.etag);
    assert_string_equal(a->error, "its file Xland.gif changed since the last run");
    assert_int_equal(b->status, GF_ERROR);
    assert_null(b->file);
    assert_string_equal(b->error, "its file Yland.gif was removed since the last run");
    /* BB's old name is free again; AA's is not. */
    assert_int_equal(gf_state_claim(&s, "CC", "Yland.gif"), 1);
    assert_int_equal(gf_state_claim(&s, "CC", "Xland.gif"), 0);
    gf_state_close(&s);

    /* An intact file is vouched for. */
    first_run();
    assert_int_equal(open_state(&s, test_dir, 1, err, sizeof err), 0);
    prev = gf_state_prevs(&s, codes, 2, &nomem);
    assert_non_null(prev[0]);
    assert_string_equal(prev[0]->file, "Xland.gif");
    assert_string_equal(prev[0]->image_etag, "\"e\"");
    gf_state_close(&s);

    /* Without --update: the file, which a new name replaces, and no
     * validators. */
    first_run();
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    prev = gf_state_prevs(&s, codes, 2, &nomem);
    assert_non_null(prev);
    assert_non_null(prev[0]);
    assert_string_equal(prev[0]->file, "Xland.gif");
    assert_null(prev[0]->image_etag);
    assert_null(prev[0]->meta_etag);
    assert_null(prev[0]->image_last_modified);
    assert_null(prev[0]->meta_last_modified);
    gf_state_close(&s);
}

/* Two runs in one process (--sweep): the second starts from what the first
 * recorded, its files checked again, with the first run's claims gone. */
static void test_state_next_run_starts_from_the_last(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    first_run();
    assert_int_equal(open_state(&s, test_dir, 1, err, sizeof err), 0);
    gf_cc codes[3] = {"AA", "BB", "CC"};
    int nomem;
    const struct gf_prev *const *prev = gf_state_prevs(&s, codes, 3, &nomem);
    assert_string_equal(prev[0]->image_etag, "\"e\"");
    /* The first run: AA gets a new image and name, CC is new, BB fails. */
    assert_int_equal(gf_state_claim(&s, "AA", "Zland.gif"), 1);
    assert_int_equal(gf_state_claim(&s, "CC", "Cland.gif"), 1);
    struct gf_item a = item("AA", GF_OK, "Zland.gif", "new image of AA");
    a.image_etag = "\"e2\"";
    struct gf_item b = item("BB", GF_ERROR, NULL, NULL);
    struct gf_item c = item("CC", GF_OK, "Cland.gif", "image of CC");
    assert_int_equal(unlink(test_path("Xland.gif")), 0); /* as the saver does */
    assert_int_equal(gf_state_record(&s, &a), 0);
    assert_int_equal(gf_state_record(&s, &b), 0);
    assert_int_equal(gf_state_record(&s, &c), 0);
    assert_int_equal(gf_state_save(&s, "http://h/flags", err, sizeof err), 0);
    /* Between the runs, BB's file is damaged. */
    write_file("Yland.gif", "not BB's image");
    assert_int_equal(gf_state_next_run(&s, err, sizeof err), 0);
    prev = gf_state_prevs(&s, codes, 3, &nomem);
    assert_non_null(prev);
    assert_non_null(prev[0]);
    assert_string_equal(prev[0]->file, "Zland.gif");
    assert_string_equal(prev[0]->image_etag, "\"e2\"");
    assert_int_equal(prev[0]->bytes, strlen("new image of AA"));
    assert_null(prev[1]);
    assert_non_null(prev[2]);
    assert_string_equal(prev[2]->file, "Cland.gif");
    const struct gf_manifest_entry *eb = gf_manifest_find(gf_state_manifest(&s), "BB");
    assert_string_equal(eb->file, "Yland.gif"); /* still BB's, vouched for by nothing */
    assert_string_equal(eb->sha256, "");
    /* The first run's claims are gone, the files' owners are not: AA's old
     * name is free, CC's is CC's. */
    assert_int_equal(gf_state_claim(&s, "DD", "Xland.gif"), 1);
    assert_int_equal(gf_state_claim(&s, "DD", "Cland.gif"), 0);
    assert_int_equal(gf_state_claim(&s, "AA", "Zland.gif"), 1);
    gf_state_close(&s);
}

/* An interrupted run: codes that did not finish are errors for
 * --retry-failed, and keep the file an earlier run saved. */
static void test_state_interrupted_codes_are_failed(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    first_run();
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    struct gf_item a = item("AA", GF_PENDING, NULL, NULL);
    struct gf_item c = item("CC", GF_PENDING, NULL, NULL);
    struct gf_item d = item("DD", GF_OK, "Dland.gif", "DD");
    assert_int_equal(gf_state_record(&s, &a), 0);
    assert_int_equal(gf_state_record(&s, &c), 0);
    assert_int_equal(gf_state_record(&s, &d), 0);
    assert_int_equal(gf_state_save(&s, "http://h/flags", err, sizeof err), 0);
    gf_state_close(&s);

    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    gf_cc codes[8];
    size_t n = 99;
    gf_state_select_failed(&s, codes, &n, 8);
    assert_int_equal(n, 2);
    assert_string_equal(codes[0], "AA");
    assert_string_equal(codes[1], "CC");
    const struct gf_manifest_entry *e = gf_manifest_find(gf_state_manifest(&s), "AA");
    assert_string_equal(e->error, "the run was interrupted before this code finished");
    assert_string_equal(e->file, "Xland.gif");
    assert_int_equal(gf_state_claim(&s, "BB", "Xland.gif"), 0);
    gf_state_close(&s);
}

/* The journal written as the run starts: the run's codes are unfinished
 * in the file, the state itself is unchanged. */
static void test_state_begin_journal(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    first_run();
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    gf_cc codes[3] = {"CC", "AA", "CC"};
    assert_int_equal(gf_state_begin(&s, codes, 3, "http://h/flags", err, sizeof err), 0);
    const struct gf_manifest_entry *a = gf_manifest_find(gf_state_manifest(&s), "AA");
    assert_int_equal(a->status, GF_OK);
    assert_null(gf_manifest_find(gf_state_manifest(&s), "CC"));
    gf_state_close(&s); /* killed: nothing more is written */

    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    const struct gf_manifest *m = gf_state_manifest(&s);
    assert_int_equal(m->n, 3);
    a = gf_manifest_find(m, "AA");
    assert_int_equal(a->status, GF_ERROR);
    assert_string_equal(a->file, "Xland.gif");
    assert_int_equal(gf_manifest_find(m, "BB")->status, GF_OK);
    assert_int_equal(gf_manifest_find(m, "CC")->status, GF_ERROR);
    /* AA's file still matches: --update may still vouch for it. */
    int nomem;
    gf_state_close(&s);
    struct gf_state u;
    assert_int_equal(open_state(&u, test_dir, 1, err, sizeof err), 0);
    const struct gf_prev *const *prev = gf_state_prevs(&u, codes, 2, &nomem);
    assert_non_null(prev);
    assert_null(prev[0]);
    assert_non_null(prev[1]);
    gf_state_close(&u);
}

/* No two entries name one file: a code that takes a file takes it from
 * the entry that had it. */
static void test_state_one_file_one_entry(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    first_run();
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    struct gf_item c = item("CC", GF_OK, "Yland.gif", "CC took it");
    assert_int_equal(gf_state_record(&s, &c), 0);
    const struct gf_manifest_entry *b = gf_manifest_find(gf_state_manifest(&s), "BB");
    assert_null(b->file);
    assert_int_equal(b->status, GF_ERROR);
    assert_string_equal(b->error, "its file Yland.gif was given to CC");
    gf_state_close(&s);
}

/* A manifest of getflags 1.x (version 1, with timings) is read. */
static void test_state_reads_version_1(void **state)
{
    (void)state;
    struct gf_state s;
    char err[512];
    write_file("Brazil.gif", "BR");
    assert_int_equal(mkdir(test_path(".getflags"), 0777), 0);
    write_file(".getflags/manifest.json",
               "{\"version\": 1, \"run_time\": null, \"base_url\": \"http://h/flags\", "
               "\"entries\": [{\"cc\": \"BR\", \"status\": \"ok\", \"http_status\": 200, "
               "\"file\": \"Brazil.gif\", \"bytes\": 2, \"sha256\": "
               "\"e6a4a3ee5ee6fd9e2e3e5fd53e5fa49a25e1b9fb3bb9d9a2c3a1d2a4c6e7cbdd\", "
               "\"meta\": {\"etag\": null, \"last_modified\": null, \"timings\": {\"dns\": 0}}, "
               "\"image\": null, \"error\": null}]}");
    assert_int_equal(open_state(&s, test_dir, 0, err, sizeof err), 0);
    const struct gf_manifest_entry *e = gf_manifest_find(gf_state_manifest(&s), "BR");
    assert_non_null(e);
    /* The hash above is not that of "BR": the entry is no longer ok. */
    assert_int_equal(e->status, GF_ERROR);
    assert_int_equal(gf_state_claim(&s, "PT", "Brazil.gif"), 0);
    gf_state_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_creates_dir_with_parents, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_refuses_unusable_dirs, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_lock_busy_and_hard_link_refused, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_sweeps_stale_temporaries, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_names_belong_to_their_codes, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_names_are_stable_across_runs, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_damaged_files_are_not_trusted, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_interrupted_codes_are_failed, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_next_run_starts_from_the_last, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_one_file_one_entry, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_begin_journal, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_state_reads_version_1, tmpdir_setup, tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
